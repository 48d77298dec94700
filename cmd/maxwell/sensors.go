package main

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/meter"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/telemetry"
)

// sensorsReport is what `maxwell sensors --json` prints.
type sensorsReport struct {
	Inventory sensors.Inventory `json:"inventory"`
	// Energy and Temperature are the sources Maxwell would use, models
	// included.
	Energy      sensors.Source `json:"energy"`
	Temperature sensors.Source `json:"temperature"`
	Estimated   bool           `json:"estimated"`
	// FreedMemory is the Landauer meter: what counts the memory each cell
	// frees, for Landauer's tax.
	FreedMemory meter.Source `json:"freed_memory"`
}

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
			e, t := tel.Sources()
			log, err := a.logger(io.Discard)
			if err != nil {
				return err
			}
			m := economy.OpenMeter(a.sysRoot, a.cgroupRoot, log)
			ms := m.Source()
			m.Close()
			rep := sensorsReport{Inventory: tel.Inventory, Energy: e, Temperature: t, Estimated: tel.Estimated(), FreedMemory: ms}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, rep)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tQUANTITY\tNAME\tTIER\tREADABLE\tVALUE\tPATH")
			for _, f := range rep.Inventory.Found {
				val := "-"
				if f.Readable {
					val = fmt.Sprintf("%.3f", f.Value)
				} else if f.Err != "" {
					val = "error: " + f.Err
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%v\t%s\t%s\n", f.Kind, f.Quantity, f.Name, f.Tier, f.Readable, val, f.Path)
			}
			tw.Flush()
			if len(rep.Inventory.Found) == 0 {
				fmt.Fprintf(out, "no hardware power or temperature sensor found under %s, %s, %s\n", a.sysRoot, a.devRoot, a.procRoot)
			}
			for _, e := range rep.Inventory.Errors {
				fmt.Fprintln(out, "note:", e)
			}
			fmt.Fprintf(out, "\nenergy:      %s (%s)\n", rep.Energy, rep.Energy.Label())
			fmt.Fprintf(out, "temperature: %s (%s)\n", rep.Temperature, rep.Temperature.Label())
			fmt.Fprintf(out, "freed memory (Landauer meter): %s\n", rep.FreedMemory)
			if rep.Estimated {
				fmt.Fprintln(out, "figures from a model are estimates, not measurements; every output labels them \"estimated\".")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
