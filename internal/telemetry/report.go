package telemetry

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/maxwellhq/maxwell/internal/meter"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

// Report is what `maxwell sensors` shows: every source found, the ones
// Maxwell would use, and the Landauer meter.
type Report struct {
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

// Report describes t, with the Landauer meter's source m.
func (t *Telemetry) Report(m meter.Source) Report {
	e, temp := t.Sources()
	return Report{Inventory: t.Inventory, Energy: e, Temperature: temp, Estimated: t.Estimated(), FreedMemory: m}
}

// WriteText prints the report: a table of the sources found under roots,
// then the sources in use.
func (r Report) WriteText(w io.Writer, roots sensors.Roots) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tQUANTITY\tNAME\tTIER\tREADABLE\tVALUE\tPATH")
	for _, f := range r.Inventory.Found {
		val := "-"
		if f.Readable {
			val = fmt.Sprintf("%.3f", f.Value)
		} else if f.Err != "" {
			val = "error: " + f.Err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%v\t%s\t%s\n", f.Kind, f.Quantity, f.Name, f.Tier, f.Readable, val, f.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Inventory.Found) == 0 {
		fmt.Fprintf(w, "no hardware power or temperature sensor found under %s, %s, %s\n", roots.Sys, roots.Dev, roots.Proc)
	}
	for _, e := range r.Inventory.Errors {
		fmt.Fprintln(w, "note:", e)
	}
	fmt.Fprintf(w, "\nenergy:      %s (%s)\n", r.Energy, r.Energy.Label())
	fmt.Fprintf(w, "temperature: %s (%s)\n", r.Temperature, r.Temperature.Label())
	fmt.Fprintf(w, "freed memory (Landauer meter): %s\n", r.FreedMemory)
	if r.Estimated {
		fmt.Fprintln(w, "figures from a model are estimates, not measurements; every output labels them \"estimated\".")
	}
	return nil
}
