package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/record"
)

func newBaselineCmd(a *app) *cobra.Command {
	var (
		duration time.Duration
		cpus     string
		out      string
		asJSON   bool
		cellKind string
	)
	cmd := &cobra.Command{
		Use:   "baseline",
		Short: "Run the control experiment: Scientist and Miner under plain Linux scheduling",
		Long: `Run the Scientist (finds primes) and the Miner (burns cycles, churns memory)
under plain Linux scheduling, each in its own cell, pinned to the same CPUs so
that they compete, with nothing of Maxwell's economy acting on them. The run
samples temperature, power, per-cell CPU share, work counters and energy at
the configured interval, writes a run directory (CSV series, events,
summary.json) and prints the summary.

Energy and temperature come from the host's sensors where it has them, else
from the power model and thermal twin; the summary says which.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if err := durationFlag(cmd, duration, &cfg.Baseline.Duration); err != nil {
				return err
			}
			if !cmd.Flags().Changed("cpus") {
				cpus = cfg.Baseline.CPUs
			}
			cpuList, err := runCPUs(cpus)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("runs", "baseline-"+time.Now().Format("20060102-150405"))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.ErrOrStderr(), "baseline: %v on CPUs %s, run directory %s\n", cfg.Baseline.Duration, cpuset.Format(cpuList), out)
			sum, err := runPlain(ctx, a, cmd.ErrOrStderr(), cfg, "baseline", cellKind, cpuList, cfg.Baseline.Duration, out, "scientist", "miner")
			if asJSON {
				if perr := printJSON(cmd.OutOrStdout(), sum); perr != nil {
					return perr
				}
			} else {
				printSummary(cmd.OutOrStdout(), sum, out)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", 0, "how long to run (default: the configuration's baseline.duration, 5m)")
	f.StringVar(&cpus, "cpus", "", `CPU list to pin both agents to, e.g. "0-1" (default: every CPU Maxwell may use)`)
	f.StringVar(&out, "out", "", "run directory to create (default runs/baseline-TIMESTAMP)")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON (the summary.json object)")
	f.StringVar(&cellKind, "cell", cellProcess, "cell backend for the agents: process or oci (runc containers)")
	return cmd
}

// runPlain runs the named agents under plain Linux scheduling (no economy)
// for d: the baseline, or the Scientist alone.
func runPlain(ctx context.Context, a *app, stderr io.Writer, cfg config.Config, kind, cellKind string, cpus []int, d time.Duration, dir string, names ...string) (record.Summary, error) {
	env, err := newRunEnv(ctx, a, stderr, cfg, kind, cellKind, cpus, d, dir)
	if err != nil {
		return record.Summary{}, err
	}
	defer env.Close()
	for _, ag := range env.agents(false) {
		if slices.Contains(names, ag.Name) {
			env.run.Agents = append(env.run.Agents, ag)
		}
	}
	return env.run.Execute(ctx)
}

// runCPUs parses a CPU list and checks that this process may use every CPU
// in it; an empty list means all it may use.
func runCPUs(list string) ([]int, error) {
	allowed, err := cpuset.Allowed()
	if err != nil {
		return nil, err
	}
	cpus, err := cpuset.Parse(list)
	if err != nil {
		return nil, fmt.Errorf("--cpus: %w", err)
	}
	if len(cpus) == 0 {
		return allowed, nil
	}
	if c, ok := cpuset.Subset(cpus, allowed); !ok {
		return nil, fmt.Errorf("--cpus: CPU %d is not available to this process (allowed: %s)", c, cpuset.Format(allowed))
	}
	return cpus, nil
}

func printSummary(w io.Writer, s record.Summary, dir string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s (%s)\n", s.Kind, dir)
	fmt.Fprintf(tw, "duration\t%.1f s (%d samples, %d events)\n", s.DurationSeconds, s.Samples, s.Events)
	fmt.Fprintf(tw, "energy\t%.1f J %s\t%s\n", s.EnergyJoules, s.EnergySource, s.EnergySourceDetail)
	if s.DynamicEnergyJoules != nil {
		fmt.Fprintf(tw, "dynamic energy\t%.1f J %s (above %.2f W idle)\n", *s.DynamicEnergyJoules, s.EnergySource, s.IdlePowerWatts)
	}
	fmt.Fprintf(tw, "mean power\t%.2f W %s\n", s.MeanPowerWatts, s.EnergySource)
	fmt.Fprintf(tw, "primes\t%d\n", s.Primes)
	fmt.Fprintf(tw, "primes per joule\t%.1f (%s energy)\n", s.PrimesPerJoule, s.EnergySource)
	if s.PrimesPerDynamicJoule != nil {
		fmt.Fprintf(tw, "primes per dynamic joule\t%.1f\n", *s.PrimesPerDynamicJoule)
	}
	fmt.Fprintf(tw, "temperature\tmean %.1f °C, max %.1f °C %s\t%s\n", s.TemperatureMeanCelsius, s.TemperatureMaxCelsius, s.TemperatureSource, s.TemperatureSourceDetail)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tCPU SHARE\tCPU s\tENERGY J\tCOUNTERS")
	for _, ag := range s.Agents {
		fmt.Fprintf(tw, "%s\t%.1f%%\t%.1f\t%.1f\t%v\n", ag.Name, 100*ag.CPUShare, ag.CPUSeconds, ag.EnergyJoules, ag.Counters)
	}
	tw.Flush()
}
