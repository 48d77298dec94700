package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/calibrate"
)

func newCalibrateCmd(a *app) *cobra.Command {
	var (
		o      calibrate.HostOptions
		asJSON bool
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
			o.Roots, o.Config, o.Progress = a.roots(), cfg, cmd.ErrOrStderr()
			ctx, stop := signalContext(cmd)
			defer stop()
			res, err := calibrate.Host(ctx, o)
			if errors.Is(err, calibrate.ErrProfileNotStored) {
				return fmt.Errorf(`%w (--profile PATH stores it elsewhere, --profile "" stores none)`, err)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return res.WriteText(cmd.OutOrStdout(), o.ProfilePath)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.Idle, "idle", 5*time.Second, "how long to record before the step")
	f.DurationVar(&o.Step, "step", 20*time.Second, "how long the load runs (cover θ + 3τ at least)")
	f.DurationVar(&o.Interval, "interval", 100*time.Millisecond, "sampling interval")
	f.DurationVar(&o.TauC, "tau-c", 0, "desired closed-loop time constant τc for SIMC (0: τc = θ, at least τ/10 and the interval)")
	f.IntVar(&o.Threads, "threads", 0, "busy threads in the step (0: one per CPU Maxwell may use)")
	f.StringVar(&o.ProfilePath, "profile", calibrate.DefaultProfilePath(), `where to store the host profile (JSON); "" stores none`)
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
