package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/lab"
)

func newCompareCmd(a *app) *cobra.Command {
	var (
		duration, alone time.Duration
		rf              runFlags
		asJSON          bool
	)
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Run the baseline and Maxwell back to back and compare useful work per Joule",
		Long: `Run the baseline (plain Linux scheduling), then Maxwell's economy, with the
same duration, agents and CPUs, then the Scientist alone (its throughput without
competition, over the same stretch of its work), and print one table: useful
work (the Scientist's primes), energy (total, and dynamic above idle where idle
is known), useful work per Joule and the ratio Maxwell/baseline, temperatures,
the time to the Miner's apoptosis and the Scientist's throughput before and
after it. Writes the three run directories and their plots under --out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if err := durationFlag(cmd, duration, &cfg.Demo.Duration); err != nil {
				return err
			}
			env, err := a.lab(cmd, rf, cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out := rf.dir("compare")
			o := lab.CompareOptions{Duration: cfg.Demo.Duration, Alone: alone, Dir: out, Story: cmd.ErrOrStderr()}
			fmt.Fprintf(cmd.ErrOrStderr(), "compare: baseline, then Maxwell, %v each, then the Scientist alone, on CPUs %s\n", o.Duration, cpuset.Format(env.CPUs))
			ctx, stop := signalContext(cmd)
			defer stop()
			c, err := env.Compare(ctx, o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), c)
			}
			return c.WriteText(cmd.OutOrStdout(), out)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", 0, "length of the baseline and of the Maxwell run, with a unit, e.g. 60s (default: demo.duration)")
	f.DurationVar(&alone, "alone-duration", 0, "length of the Scientist-alone run, with a unit (default: --duration)")
	rf.register(f)
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
