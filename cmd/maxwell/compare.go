package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/plot"
	"github.com/maxwellhq/maxwell/internal/record"
)

// comparison is what `maxwell compare --json` prints.
type comparison struct {
	Baseline record.Summary `json:"baseline"`
	Maxwell  demoResult     `json:"maxwell"`
	// Alone is the Scientist by itself under plain scheduling: the
	// throughput the Scientist reaches when nothing competes with it.
	Alone record.Summary `json:"alone"`
	// Ratio is Maxwell's primes per Joule over the baseline's, on total
	// energy and on dynamic energy above idle (where idle is known).
	Ratio        float64  `json:"primes_per_joule_ratio"`
	DynamicRatio *float64 `json:"primes_per_dynamic_joule_ratio,omitempty"`
	// AloneRate is the Scientist's throughput alone over the same stretch
	// of its work as it did after the Miner's apoptosis under Maxwell: the
	// first (duration − time of apoptosis) seconds (it had done next to
	// nothing before, outbid), since a sieve's primes per second fall as
	// the numbers grow.
	AloneRate *float64 `json:"scientist_alone_primes_per_second,omitempty"`
	// AfterVsAlone is the Scientist's throughput after the Miner's
	// apoptosis over AloneRate.
	AfterVsAlone *float64 `json:"scientist_after_vs_alone,omitempty"`
	Plots        []string `json:"plots"`
}

func newCompareCmd(a *app) *cobra.Command {
	var (
		duration, alone time.Duration
		cpus, out       string
		asJSON          bool
	)
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Run the baseline and Maxwell back to back and compare primes per Joule",
		Long: `Run the baseline (plain Linux scheduling), then Maxwell's economy, with the
same duration, agents and CPUs, then the Scientist alone (its throughput without
competition, over the same stretch of its work), and print one table: primes, energy
(total, and dynamic above idle where idle is known), primes per Joule and the
ratio Maxwell/baseline, temperatures, the time to the Miner's apoptosis and
the Scientist's throughput before and after it. Writes the three run
directories and their plots under --out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if err := durationFlag(cmd, duration, &cfg.Demo.Duration); err != nil {
				return err
			}
			d := cfg.Demo.Duration
			if alone <= 0 {
				alone = d
			}
			cpuList, err := runCPUs(cpus)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("runs", "compare-"+time.Now().Format("20060102-150405"))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			stderr := cmd.ErrOrStderr()
			var c comparison
			fmt.Fprintf(stderr, "compare: baseline, then Maxwell, %v each, then the Scientist alone for %v, on CPUs %s\n", d, alone, cpuset.Format(cpuList))
			if c.Baseline, err = runPlain(ctx, a, stderr, cfg, "baseline", cellProcess, cpuList, d, filepath.Join(out, "baseline"), "scientist", "miner"); err != nil {
				return fmt.Errorf("baseline run: %w", err)
			}
			story := stderr
			if !asJSON {
				story = cmd.OutOrStdout()
			}
			if c.Maxwell, err = runDemo(ctx, a, stderr, story, cfg, cellProcess, cpuList, filepath.Join(out, "maxwell"), false); err != nil {
				return fmt.Errorf("maxwell run: %w", err)
			}
			if c.Alone, err = runPlain(ctx, a, stderr, cfg, "alone", cellProcess, cpuList, alone, filepath.Join(out, "alone"), "scientist"); err != nil {
				return fmt.Errorf("scientist-alone run: %w", err)
			}
			if r, err := record.ReadRun(filepath.Join(out, "alone")); err == nil {
				window := time.Duration(c.Alone.DurationSeconds * float64(time.Second))
				if died := c.Maxwell.Economy.MinerDiedAtSeconds; died != nil {
					window = d - time.Duration(*died*float64(time.Second))
				}
				if v, ok := record.CounterRate(r, "scientist", "primes", 0, window); ok {
					c.AloneRate = &v
				}
			}
			c.ratios()
			if c.Plots, err = plot.Run([]string{filepath.Join(out, "baseline"), filepath.Join(out, "maxwell")}, filepath.Join(out, "plots")); err != nil {
				fmt.Fprintln(stderr, "compare: plots:", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), c)
			}
			printComparison(cmd.OutOrStdout(), c, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", 0, "length of the baseline and of the Maxwell run (default: demo.duration)")
	f.DurationVar(&alone, "alone-duration", 0, "length of the Scientist-alone run (default: --duration)")
	f.StringVar(&cpus, "cpus", "", "CPU list the agents share (default: every CPU Maxwell may use)")
	f.StringVar(&out, "out", "", "directory for the three runs and the plots (default runs/compare-TIMESTAMP)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// ratios fills in the comparison's ratios.
func (c *comparison) ratios() {
	b, m := c.Baseline, c.Maxwell.Summary
	if b.PrimesPerJoule > 0 {
		c.Ratio = m.PrimesPerJoule / b.PrimesPerJoule
	}
	if b.PrimesPerDynamicJoule != nil && m.PrimesPerDynamicJoule != nil && *b.PrimesPerDynamicJoule > 0 {
		r := *m.PrimesPerDynamicJoule / *b.PrimesPerDynamicJoule
		c.DynamicRatio = &r
	}
	if after := c.Maxwell.Economy.ScientistPrimesPerSecondAfter; after != nil && c.AloneRate != nil && *c.AloneRate > 0 {
		r := *after / *c.AloneRate
		c.AfterVsAlone = &r
	}
}

func printComparison(w io.Writer, c comparison, dir string) {
	b, m := c.Baseline, c.Maxwell.Summary
	opt := func(p *float64, format string) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf(format, *p)
	}
	fmt.Fprintf(w, "\ncomparison (%s); energy and temperature %s, %s\n", dir, b.EnergySource, b.TemperatureSource)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tbaseline\tmaxwell\tmaxwell/baseline\t")
	fmt.Fprintf(tw, "primes\t%d\t%d\t%.2f\t\n", b.Primes, m.Primes, float64(m.Primes)/max(float64(b.Primes), 1))
	fmt.Fprintf(tw, "energy (J)\t%.1f\t%.1f\t%.2f\t\n", b.EnergyJoules, m.EnergyJoules, m.EnergyJoules/max(b.EnergyJoules, 1e-9))
	fmt.Fprintf(tw, "dynamic energy (J)\t%s\t%s\t\t\n", opt(b.DynamicEnergyJoules, "%.1f"), opt(m.DynamicEnergyJoules, "%.1f"))
	fmt.Fprintf(tw, "primes per J\t%.0f\t%.0f\t%.2f\t\n", b.PrimesPerJoule, m.PrimesPerJoule, c.Ratio)
	fmt.Fprintf(tw, "primes per dynamic J\t%s\t%s\t%s\t\n", opt(b.PrimesPerDynamicJoule, "%.0f"), opt(m.PrimesPerDynamicJoule, "%.0f"), opt(c.DynamicRatio, "%.2f"))
	fmt.Fprintf(tw, "mean temperature (°C)\t%.1f\t%.1f\t\t\n", b.TemperatureMeanCelsius, m.TemperatureMeanCelsius)
	fmt.Fprintf(tw, "max temperature (°C)\t%.1f\t%.1f\t\t\n", b.TemperatureMaxCelsius, m.TemperatureMaxCelsius)
	fmt.Fprintf(tw, "miner apoptosis (s)\t-\t%s\t\t\n", opt(c.Maxwell.Economy.MinerDiedAtSeconds, "%.1f"))
	fmt.Fprintf(tw, "scientist primes/s before\t%.0f\t%s\t\t\n", float64(b.Primes)/max(b.DurationSeconds, 1e-9), opt(c.Maxwell.Economy.ScientistPrimesPerSecondBefore, "%.0f"))
	fmt.Fprintf(tw, "scientist primes/s after\t\t%s\t\t\n", opt(c.Maxwell.Economy.ScientistPrimesPerSecondAfter, "%.0f"))
	fmt.Fprintf(tw, "scientist alone primes/s (same stretch)\t\t%s\t\t\n", opt(c.AloneRate, "%.0f"))
	fmt.Fprintf(tw, "after / alone\t\t%s\t\t\n", opt(c.AfterVsAlone, "%.2f"))
	tw.Flush()
	for _, p := range c.Plots {
		fmt.Fprintln(w, "plot:", p)
	}
}
