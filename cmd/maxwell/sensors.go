package main

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"io"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/telemetry"
)

func newSensorsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sensors",
		Short: "List every power and temperature source found, its tier, and which Maxwell would use",
		Long: `List every power and temperature source found on this host (powercap RAPL,
MSRs, hwmon, thermal zones), with its tier (1 calibrated sensor, 2 sensor,
3 model), whether it could be read, and which source Maxwell would use. Where
the host has no sensor, Maxwell uses a model and says which.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			tel, err := telemetry.Open(a.roots(), cfg, clock.System())
			if err != nil {
				return err
			}
			log, err := a.logger(io.Discard)
			if err != nil {
				return err
			}
			m := economy.OpenMeter(a.sysRoot, a.cgroupRoot, log)
			rep := tel.Report(m.Source())
			m.Close()
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			return rep.WriteText(cmd.OutOrStdout(), a.roots())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
