package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/lab"
)

func newBaselineCmd(a *app) *cobra.Command {
	var (
		duration time.Duration
		rf       runFlags
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "baseline",
		Short: "Run the control experiment: Scientist and Miner under plain Linux scheduling",
		Long: `Run the Scientist (finds primes) and the Miner (burns cycles, churns memory)
under plain Linux scheduling, each in its own cell, pinned to the same CPUs so
that they compete: the economy measures them as it would govern them, but
governs nothing. The run samples temperature, power, per-cell CPU share, work
counters and energy at the configured interval, writes a run directory (CSV
series, events, summary.json) and prints the summary.

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
				rf.cpus = cfg.Baseline.CPUs
			}
			env, err := a.lab(cmd, rf, cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out := rf.dir("baseline")
			fmt.Fprintf(cmd.ErrOrStderr(), "baseline: %v on CPUs %s, run directory %s\n", cfg.Baseline.Duration, cpuset.Format(env.CPUs), out)
			ctx, stop := signalContext(cmd)
			defer stop()
			sum, err := env.Baseline(ctx, "baseline", cfg.Baseline.Duration, out, lab.Scientist, lab.Miner)
			if asJSON {
				if perr := printJSON(cmd.OutOrStdout(), sum); perr != nil {
					return perr
				}
				return err
			}
			if werr := lab.WriteSummary(cmd.OutOrStdout(), sum, out); werr != nil {
				return werr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", 0, "how long to run, with a unit, e.g. 90s or 5m (default: the configuration's baseline.duration, 5m)")
	rf.register(f)
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON (the summary.json object)")
	return cmd
}
