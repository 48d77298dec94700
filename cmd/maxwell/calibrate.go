package main

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/calibrate"
	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/model"
	"github.com/maxwellhq/maxwell/internal/telemetry"
)

func newCalibrateCmd(a *app) *cobra.Command {
	var (
		idle, step, interval, tauC time.Duration
		threads                    int
		profilePath                string
		asJSON                     bool
	)
	cmd := &cobra.Command{
		Use:   "calibrate",
		Short: "Identify the host's thermal plant with a load step and tune the price controller",
		Long: `Apply a load step with real busy threads, record the temperature response,
fit a first-order-plus-dead-time model (gain K in K/W, time constant τ, dead
time θ), tune a PI controller with the SIMC rules (Kc = τ/(K(τc+θ)),
τI = min(τ, 4(τc+θ))) and store the result as a host profile.

On a host without a thermometer the response is the thermal twin's, and the
output shows the twin's true τ = R·C beside the fit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if threads == 0 {
				cpus, err := cpuset.Allowed()
				if err != nil {
					return err
				}
				threads = len(cpus)
			}
			if threads < 0 {
				return fmt.Errorf("--threads %d must be positive", threads)
			}
			tel, err := telemetry.Open(a.roots(), cfg, clock.System())
			if err != nil {
				return err
			}
			var twinTau time.Duration
			if tel.Temp.Source().Estimated() {
				twinTau = model.TwinParams{R: cfg.ThermalTwin.ResistanceKPerW, C: cfg.ThermalTwin.CapacitanceJPerK}.Tau()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.ErrOrStderr(), "calibrate: %v idle, then %d busy threads for %v; temperature from %s\n", idle, threads, step, tel.Temp.Source())
			res, err := calibrate.Run(ctx, calibrate.Config{Idle: idle, Step: step, Interval: interval, Threads: threads, TauC: tauC},
				tel.Energy, tel.Temp, twinTau, &calibrate.BusyLoad{}, clock.System())
			if err != nil {
				return err
			}
			if profilePath != "" {
				if err := os.MkdirAll(filepath.Dir(profilePath), 0o755); err != nil {
					return err
				}
				if err := res.Profile.Save(profilePath); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, res)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			label := res.TemperatureSource.Label()
			fmt.Fprintf(tw, "temperature\t%s (%s)\n", res.TemperatureSource, label)
			fmt.Fprintf(tw, "power step\t%.2f W (%s: %s)\n", res.PowerStepWatts, res.EnergySource.Label(), res.EnergySource.Name)
			fmt.Fprintf(tw, "K\t%.3f K/W\n", res.K)
			fmt.Fprintf(tw, "τ\t%.3f s\n", res.TauSeconds)
			if res.TwinTauSeconds != nil {
				fmt.Fprintf(tw, "twin τ = R·C\t%.3f s (fit off by %.1f%%)\n", *res.TwinTauSeconds, 100*(res.TauSeconds-*res.TwinTauSeconds)/(*res.TwinTauSeconds))
			}
			fmt.Fprintf(tw, "θ\t%.3f s\n", res.ThetaSeconds)
			fmt.Fprintf(tw, "SIMC Kc\t%.3f W/K\n", res.Kc)
			fmt.Fprintf(tw, "SIMC τI\t%.3f s\n", res.TauISeconds)
			if profilePath != "" {
				fmt.Fprintf(tw, "profile\t%s\n", profilePath)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.DurationVar(&idle, "idle", 5*time.Second, "how long to record before the step")
	f.DurationVar(&step, "step", 20*time.Second, "how long the load runs (cover θ + 3τ at least)")
	f.DurationVar(&interval, "interval", 100*time.Millisecond, "sampling interval")
	f.DurationVar(&tauC, "tau-c", 0, "desired closed-loop time constant τc for SIMC (0: τc = θ, at least τ/10 and the interval)")
	f.IntVar(&threads, "threads", 0, "busy threads in the step (0: one per CPU Maxwell may use)")
	f.StringVar(&profilePath, "profile", filepath.Join(filepath.Dir(ledger.DefaultPath()), "profile.json"), `where to store the host profile (JSON); "" stores none`)
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
