package main

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/record"
)

// demoResult is what `maxwell demo --json` prints.
type demoResult struct {
	Summary record.Summary `json:"summary"`
	Economy demoEconomy    `json:"economy"`
}

// demoEconomy is the demo's story in figures.
type demoEconomy struct {
	EndowmentCredits int64   `json:"endowment_credits"`
	SlotEnergyJoules float64 `json:"slot_energy_joules"`
	Rule             string  `json:"rule"`
	TaxPJPerByte     uint64  `json:"landauer_tax_picojoules_per_byte"`
	// LandauerFloorPJPerByte is kT·ln 2 per bit at 300 K, per byte, and
	// TaxOverFloor the tax's multiple of it: the physics beside the policy.
	LandauerFloorPJPerByte float64 `json:"landauer_floor_picojoules_per_byte"`
	TaxOverFloor           float64 `json:"tax_over_landauer_floor"`
	MeterSource            string  `json:"meter_source"`
	// MinerDiedAtSeconds is when the Miner's apoptosis happened, if it did.
	MinerDiedAtSeconds *float64 `json:"miner_died_at_seconds,omitempty"`
	// ScientistPrimesPerSecondBefore/After are the Scientist's throughput
	// before and after the Miner's apoptosis.
	ScientistPrimesPerSecondBefore *float64 `json:"scientist_primes_per_second_before,omitempty"`
	ScientistPrimesPerSecondAfter  *float64 `json:"scientist_primes_per_second_after,omitempty"`
	ScientistSurvived              bool     `json:"scientist_survived"`
	LedgerOK                       bool     `json:"ledger_ok"`
	LedgerMintedCredits            int64    `json:"ledger_minted_credits"`
	LedgerBurnedCredits            int64    `json:"ledger_burned_credits"`
}

func newDemoCmd(a *app) *cobra.Command {
	var (
		duration time.Duration
		cpus     string
		out      string
		asJSON   bool
		headless bool
		cellKind string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the Scientist and the Miner under Maxwell's economy and tell the story",
		Long: `Launch the Scientist (finds primes) and the Miner (burns cycles, churns
memory) with equal wallets and no income, under Maxwell's economy: every
tick the host sells its CPUs in an auction whose reserve price follows the
temperature, winners pay, freeing memory pays Landauer's tax, and an agent
whose balance falls below zero dies. The demo tells what happens as it
happens, records a run directory (with the ledger), and prints the summary.

Energy and temperature come from the host's sensors where it has them, else
from the power model and thermal twin, and are labelled so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if err := durationFlag(cmd, duration, &cfg.Demo.Duration); err != nil {
				return err
			}
			cpuList, err := runCPUs(cpus)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("runs", "demo-"+time.Now().Format("20060102-150405"))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			story := cmd.OutOrStdout()
			if asJSON || headless {
				story = cmd.ErrOrStderr()
			}
			// On a terminal, unless told otherwise, the story is told by the
			// dashboard; the summary follows when it closes.
			f, isFile := cmd.OutOrStdout().(*os.File)
			dashboard := !asJSON && !headless && isFile && isTerminal(f)
			if dashboard {
				story = io.Discard
			}
			res, err := runDemo(ctx, a, cmd.ErrOrStderr(), story, cfg, cellKind, cpuList, out, dashboard)
			if asJSON {
				if perr := printJSON(cmd.OutOrStdout(), res); perr != nil {
					return perr
				}
			} else {
				printSummary(cmd.OutOrStdout(), res.Summary, out)
				printEconomy(cmd.OutOrStdout(), res.Economy)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", 0, "how long to run (default: the configuration's demo.duration, 60s)")
	f.StringVar(&cpus, "cpus", "", `CPU list the agents share, e.g. "0-1" (default: every CPU Maxwell may use)`)
	f.StringVar(&out, "out", "", "run directory to create (default runs/demo-TIMESTAMP)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON; the story goes to stderr")
	f.StringVar(&cellKind, "cell", cellProcess, "cell backend for the agents: process or oci (runc containers)")
	f.BoolVar(&headless, "headless", false, "no dashboard: tell the story as lines (the story goes to stderr)")
	return cmd
}

// runDemo runs the economy on the Scientist and the Miner for the demo's
// duration and returns the result.
func runDemo(ctx context.Context, a *app, stderr, story io.Writer, cfg config.Config, cellKind string, cpus []int, dir string, dashboard bool) (demoResult, error) {
	var res demoResult
	d := cfg.Demo.Duration
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	env, err := newRunEnv(ctx, a, stderr, cfg, "maxwell", cellKind, cpus, d, dir)
	if err != nil {
		return res, err
	}
	defer env.Close()
	ec, err := economy.EngineConfig(cfg, len(cpus))
	if err != nil {
		return res, err
	}
	core, err := engine.NewCore(ec)
	if err != nil {
		return res, err
	}
	l, err := ledger.Open(ctx, filepath.Join(dir, "ledger.db"), ledger.Options{})
	if err != nil {
		return res, err
	}
	defer l.Close()
	lg := economy.Ledger{L: l}
	endow := economy.DemoEndowment(cfg, len(cpus), d)
	for _, name := range []string{"scientist", "miner"} {
		w := engine.Wallet{Balance: endow, Endowment: endow}
		if err := core.Admit(name, w); err != nil {
			return res, err
		}
		if err := lg.OpenWallet(ctx, name, w); err != nil {
			return res, err
		}
	}
	m := economy.OpenMeter(a.sysRoot, a.cgroupRoot, env.log)
	defer m.Close()
	floor := landauerFloorPJPerByte(300)
	res.Economy = demoEconomy{
		EndowmentCredits: endow, SlotEnergyJoules: ec.SlotEnergy.Joules(), Rule: cfg.Engine.Rule,
		TaxPJPerByte: ec.TaxPicojoulesPerByte, MeterSource: m.Source().String(),
		LandauerFloorPJPerByte: floor, TaxOverFloor: float64(ec.TaxPicojoulesPerByte) / floor,
	}
	journal, err := engine.CreateJournal(filepath.Join(dir, "engine.jsonl"))
	if err != nil {
		return res, err
	}
	defer func() {
		if err := journal.Close(); err != nil {
			env.log.Error("engine journal", "err", err)
		}
	}()
	driver := &engine.Driver{
		Core: core, Temp: env.tel.Temp, Meter: m, Ledger: lg,
		Auction: economy.Auctioneer{H: env.hub, Log: env.log},
		Clock:   clock.System(), Log: env.log, Journal: journal.Write,
	}
	run := env.run
	run.Agents = env.agents(true)
	run.Governor = driver
	n := &narrator{w: story, start: time.Now()}
	run.OnEvent = n.event
	e, t := env.tel.Sources()
	fmt.Fprintf(story, "maxwell demo: the Scientist and the Miner under the economy for %v on CPUs %s, in %s cells\n", d, cpuset.Format(cpus), cellKind)
	fmt.Fprintf(story, "  each wallet: %.1f J of credits (1 credit = 1 µJ), no income; a slot (one CPU for %v) costs %.3f J at base price; %s auction\n",
		float64(endow)/1e6, ec.Tick, ec.SlotEnergy.Joules(), cfg.Engine.Rule)
	fmt.Fprintf(story, "  heat: the price rises above %.0f °C; Landauer's tax: %d pJ per freed byte (%.2g × the Landauer floor of %.2g pJ/B at 300 K), metered by %s (%s)\n",
		cfg.Engine.SetpointCelsius, ec.TaxPicojoulesPerByte, res.Economy.TaxOverFloor, floor, m.Source().Kind, m.Source().Label())
	fmt.Fprintf(story, "  energy %s (%s), temperature %s (%s)\n", e.Label(), e.Name, t.Label(), t.Name)

	statusCtx, stopStatus := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.status(statusCtx, driver, env.tel.Temp)
	}()
	var (
		sum    record.Summary
		runErr error
	)
	if dashboard {
		done := make(chan struct{})
		dd := &demoDash{driver: driver, ledger: lg, temp: env.tel.Temp, energy: env.tel.Energy,
			setpoint: cfg.Engine.SetpointCelsius, tick: ec.Tick, start: time.Now(), done: done}
		driver.OnDecision = dd.decided
		run.OnEvent = func(e record.Event) { n.event(e); dd.event(e) }
		runCtx, stopRun := context.WithCancel(ctx)
		go func() {
			defer close(done)
			sum, runErr = run.Execute(runCtx)
		}()
		if err := dd.show(ctx, stopRun); err != nil {
			env.log.Error("dashboard", "err", err)
		}
		<-done
		stopRun()
	} else {
		sum, runErr = run.Execute(ctx)
	}
	stopStatus()
	wg.Wait()
	res.Summary = sum

	rep, verr := l.Verify(context.WithoutCancel(ctx))
	res.Economy.LedgerOK = verr == nil && rep.OK
	res.Economy.LedgerMintedCredits, res.Economy.LedgerBurnedCredits = int64(rep.Minted), int64(rep.Burned)
	if full, err := record.ReadRun(dir); err == nil {
		fillStory(&res.Economy, full, sum)
	}
	return res, runErr
}

// landauerFloorPJPerByte is Landauer's bound kT·ln 2 per erased bit, for a
// byte, in picojoules, at temperature kelvin.
func landauerFloorPJPerByte(kelvin float64) float64 {
	const boltzmann = 1.380649e-23 // J/K, exact in the 2019 SI
	return boltzmann * kelvin * math.Ln2 * 8 * 1e12
}

// fillStory works out the demo's figures from the run: when the Miner died
// and the Scientist's throughput before and after.
func fillStory(e *demoEconomy, r record.Run, sum record.Summary) {
	end := time.Duration(sum.DurationSeconds * float64(time.Second))
	for _, a := range sum.Agents {
		switch a.Name {
		case "miner":
			e.MinerDiedAtSeconds = a.DiedAtSeconds
		case "scientist":
			e.ScientistSurvived = a.DiedAtSeconds == nil
		}
	}
	if e.MinerDiedAtSeconds == nil {
		if v, ok := record.CounterRate(r, "scientist", "primes", 0, end); ok {
			e.ScientistPrimesPerSecondBefore = &v
		}
		return
	}
	died := time.Duration(*e.MinerDiedAtSeconds * float64(time.Second))
	if v, ok := record.CounterRate(r, "scientist", "primes", 0, died); ok {
		e.ScientistPrimesPerSecondBefore = &v
	}
	if v, ok := record.CounterRate(r, "scientist", "primes", died, end); ok {
		e.ScientistPrimesPerSecondAfter = &v
	}
}

func printEconomy(w io.Writer, e demoEconomy) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "economy\t%s auction, endowment %.1f J each, slot %.3f J at base price\n", e.Rule, float64(e.EndowmentCredits)/1e6, e.SlotEnergyJoules)
	fmt.Fprintf(tw, "Landauer's tax\t%d pJ/B = %.2g × the Landauer floor (kT·ln 2 per bit at 300 K = %.2g pJ/B)\n", e.TaxPJPerByte, e.TaxOverFloor, e.LandauerFloorPJPerByte)
	fmt.Fprintf(tw, "meter\t%s\n", e.MeterSource)
	if e.MinerDiedAtSeconds != nil {
		fmt.Fprintf(tw, "miner\tdied at %.1f s\n", *e.MinerDiedAtSeconds)
	} else {
		fmt.Fprintf(tw, "miner\tsurvived the run\n")
	}
	fmt.Fprintf(tw, "scientist\tsurvived: %v\n", e.ScientistSurvived)
	if e.ScientistPrimesPerSecondBefore != nil {
		fmt.Fprintf(tw, "scientist throughput before\t%.0f primes/s\n", *e.ScientistPrimesPerSecondBefore)
	}
	if e.ScientistPrimesPerSecondAfter != nil {
		fmt.Fprintf(tw, "scientist throughput after\t%.0f primes/s\n", *e.ScientistPrimesPerSecondAfter)
	}
	fmt.Fprintf(tw, "ledger\tminted %.3f J = balances + burned %.3f J: invariant ok %v\n", float64(e.LedgerMintedCredits)/1e6, float64(e.LedgerBurnedCredits)/1e6, e.LedgerOK)
	tw.Flush()
}
