package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/lab"
	"github.com/maxwellhq/maxwell/internal/scenario"
	"github.com/maxwellhq/maxwell/scenarios"
)

func newStudyCmd(a *app) *cobra.Command {
	var (
		policies string
		repeats  int
		duration time.Duration
		rf       runFlags
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "study [SCENARIO…]",
		Short: "Run scenarios under every policy, repeated, and compare useful work per Joule",
		Long: `Run each SCENARIO (a YAML file, or one of the shipped scenarios: ` + strings.Join(scenarios.Names(), ", ") + `;
default ` + scenarios.Default + `) under each of --policies, --repeats times, interleaved (every
policy, then every policy in the opposite order, so that a drift of the host
cancels), and print per scenario and policy: useful work per Joule (total and
above idle), the ratio to cfs and to the oracle, mean and max temperature,
the share of time above the setpoint + 1 K, false apoptoses (useful agents
killed), the time to each apoptosis and a service's p99 latency, each as a
median with its spread (and a 95 % interval with 5 repeats or more), and the
scenario's bound on this host. Writes every run directory, study.json and a
plot per scenario under --out. docs/SCENARIOS.md describes the format.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{scenarios.Default}
			}
			var o lab.StudyOptions
			for _, arg := range args {
				s, err := scenario.Find(arg)
				if err != nil {
					return err
				}
				o.Scenarios = append(o.Scenarios, s)
			}
			for _, p := range strings.Split(policies, ",") {
				sp, err := lab.ParseStudyPolicy(strings.TrimSpace(p))
				if err != nil {
					return fmt.Errorf("--policies: %w", err)
				}
				o.Policies = append(o.Policies, sp)
			}
			if cmd.Flags().Changed("duration") && duration <= 0 {
				return fmt.Errorf("--duration %v must be positive (give a unit: 90s, 5m)", duration)
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			env, err := a.lab(cmd, rf, cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o.Repeats, o.Duration, o.Dir, o.Progress = repeats, duration, rf.dir("study"), cmd.ErrOrStderr()
			ctx, stop := signalContext(cmd)
			defer stop()
			res, err := env.Study(ctx, o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return res.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	names := make([]string, len(lab.StudyPolicies))
	for i, p := range lab.StudyPolicies {
		names[i] = string(p)
	}
	f.StringVar(&policies, "policies", strings.Join(names, ","), "policies to compare, comma-separated ("+string(lab.StudyAlone)+": the useful agents alone, a reference)")
	f.IntVar(&repeats, "repeats", 3, "runs of each scenario under each policy")
	f.DurationVar(&duration, "duration", 0, "length of every run, with a unit (default: each scenario's)")
	rf.register(f)
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
