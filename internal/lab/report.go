package lab

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/maxwellhq/maxwell/internal/record"
)

// WriteSummary prints a run's summary as two tables: the run, and one row
// per agent with its counters by name.
func WriteSummary(w io.Writer, s record.Summary, dir string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s (%s)\n", s.Kind, dir)
	fmt.Fprintf(tw, "duration\t%.1f s (%d samples, %d events)\n", s.DurationSeconds, s.Samples, s.Events)
	fmt.Fprintf(tw, "energy\t%.1f J %s\n", s.EnergyJoules, s.EnergySource)
	if s.DynamicEnergyJoules != nil {
		fmt.Fprintf(tw, "dynamic energy\t%.1f J %s (above %.2f W idle)\n", *s.DynamicEnergyJoules, s.EnergySource, s.IdlePowerWatts)
	}
	fmt.Fprintf(tw, "mean power\t%.2f W %s\n", s.MeanPowerWatts, s.EnergySource)
	for _, u := range s.Useful {
		fmt.Fprintf(tw, "useful work\t%d %s (%s)\n", u.Work, plural(u.Unit), strings.Join(u.Agents, ", "))
		fmt.Fprintf(tw, "%s per joule\t%.1f (%s energy)\n", plural(u.Unit), u.PerJoule, s.EnergySource)
		if u.PerDynamicJoule != nil {
			fmt.Fprintf(tw, "%s per dynamic joule\t%.1f\n", plural(u.Unit), *u.PerDynamicJoule)
		}
	}
	if len(s.Useful) == 0 {
		fmt.Fprintf(tw, "useful work\tnone declared by any agent\n")
	}
	fmt.Fprintf(tw, "temperature\tmean %.1f °C, max %.1f °C %s\n", s.TemperatureMeanCelsius, s.TemperatureMaxCelsius, s.TemperatureSource)
	if err := tw.Flush(); err != nil {
		return err
	}
	defer func() {
		fmt.Fprintf(w, "\nenergy from: %s\ntemperature from: %s\n", wrap(s.EnergySourceDetail, 2), wrap(s.TemperatureSourceDetail, 2))
	}()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tCPU SHARE\tCPU s\tENERGY J\tUSEFUL WORK")
	for _, a := range s.Agents {
		useful := "-"
		if a.Useful != nil {
			useful = fmt.Sprintf("%d %s", a.Useful.Work, plural(a.Useful.Unit))
		}
		died := ""
		if a.DiedAtSeconds != nil {
			died = fmt.Sprintf(" (died at %.1f s)", *a.DiedAtSeconds)
		}
		fmt.Fprintf(tw, "%s%s\t%.1f%%\t%.1f\t%.1f\t%s\n", a.Name, died, 100*a.CPUShare, a.CPUSeconds, a.EnergyJoules, useful)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\ncounters, as each agent last reported them:")
	for _, a := range s.Agents {
		fmt.Fprintf(w, "  %s: %s\n", a.Name, wrap(counters(a.Counters), 4+len(a.Name)))
	}
	return nil
}

// counters lists counters as "name=value", sorted by name.
func counters(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// wrap breaks text into lines of at most 78 columns, the lines after the
// first indented by indent spaces.
func wrap(text string, indent int) string {
	var b strings.Builder
	col := 0
	for i, word := range strings.Fields(text) {
		if i > 0 && col+1+len(word) > 78 {
			b.WriteString("\n" + strings.Repeat(" ", indent))
			col = indent
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}

// plural names a unit in the plural, roughly: "prime" → "primes".
func plural(unit string) string {
	if unit == "" || strings.HasSuffix(unit, "s") {
		return unit
	}
	return unit + "s"
}

// WriteText prints the demo's summary and its story in figures.
func (r DemoResult) WriteText(w io.Writer, dir string) error {
	if err := WriteSummary(w, r.Summary, dir); err != nil {
		return err
	}
	e := r.Economy
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "economy\t%s auction; %.1f J each; a slot is %.3f J at base price\n", e.Rule, e.EndowmentCredits.Joules(), e.SlotEnergyJoules)
	fmt.Fprintf(tw, "tax\t%d pJ/B, %.2g × Landauer's floor (%.2g pJ/B at 300 K)\n", e.TaxPJPerByte, e.TaxOverFloor, e.LandauerFloorPJPerByte)
	fmt.Fprintf(tw, "meter\t%s\n", e.MeterSource)
	if e.MinerDiedAtSeconds != nil {
		fmt.Fprintf(tw, "miner\tdied at %.1f s\n", *e.MinerDiedAtSeconds)
	} else {
		fmt.Fprintf(tw, "miner\tsurvived the run\n")
	}
	sci := "died"
	if e.ScientistSurvived {
		sci = "survived"
	}
	if e.ScientistPrimesPerSecondBefore != nil {
		sci += fmt.Sprintf("; %.0f primes/s before", *e.ScientistPrimesPerSecondBefore)
	}
	if e.ScientistPrimesPerSecondAfter != nil {
		sci += fmt.Sprintf(", %.0f after the miner died", *e.ScientistPrimesPerSecondAfter)
	}
	fmt.Fprintf(tw, "scientist\t%s\n", sci)
	holds := "holds"
	if !e.LedgerOK {
		holds = "BROKEN"
	}
	fmt.Fprintf(tw, "ledger\tminted %.3f J = balances + burned %.3f J: %s\n", e.LedgerMintedCredits.Joules(), e.LedgerBurnedCredits.Joules(), holds)
	return tw.Flush()
}

// WriteText prints the comparison as one table.
func (c Comparison) WriteText(w io.Writer, dir string) error {
	b, m := c.Baseline, c.Maxwell.Summary
	opt := func(p *float64, format string) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf(format, *p)
	}
	bu, _ := b.UsefulIn(c.Unit)
	mu, _ := m.UsefulIn(c.Unit)
	fmt.Fprintf(w, "\ncomparison (%s); energy and temperature %s, %s\n", dir, b.EnergySource, b.TemperatureSource)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tbaseline\tmaxwell\tmaxwell/baseline\t")
	fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t\n", plural(c.Unit), bu.Work, mu.Work, float64(mu.Work)/max(float64(bu.Work), 1))
	fmt.Fprintf(tw, "energy (J)\t%.1f\t%.1f\t%.2f\t\n", b.EnergyJoules, m.EnergyJoules, m.EnergyJoules/max(b.EnergyJoules, 1e-9))
	fmt.Fprintf(tw, "dynamic energy (J)\t%s\t%s\t\t\n", opt(b.DynamicEnergyJoules, "%.1f"), opt(m.DynamicEnergyJoules, "%.1f"))
	fmt.Fprintf(tw, "%s per J\t%.0f\t%.0f\t%.2f\t\n", plural(c.Unit), bu.PerJoule, mu.PerJoule, c.Ratio)
	fmt.Fprintf(tw, "%s per dynamic J\t%s\t%s\t%s\t\n", plural(c.Unit), opt(bu.PerDynamicJoule, "%.0f"), opt(mu.PerDynamicJoule, "%.0f"), opt(c.DynamicRatio, "%.2f"))
	fmt.Fprintf(tw, "mean temperature (°C)\t%.1f\t%.1f\t\t\n", b.TemperatureMeanCelsius, m.TemperatureMeanCelsius)
	fmt.Fprintf(tw, "max temperature (°C)\t%.1f\t%.1f\t\t\n", b.TemperatureMaxCelsius, m.TemperatureMaxCelsius)
	fmt.Fprintf(tw, "miner apoptosis (s)\t-\t%s\t\t\n", opt(c.Maxwell.Economy.MinerDiedAtSeconds, "%.1f"))
	fmt.Fprintf(tw, "scientist primes/s before\t%.0f\t%s\t\t\n", float64(bu.Work)/max(b.DurationSeconds, 1e-9), opt(c.Maxwell.Economy.ScientistPrimesPerSecondBefore, "%.0f"))
	fmt.Fprintf(tw, "scientist primes/s after\t\t%s\t\t\n", opt(c.Maxwell.Economy.ScientistPrimesPerSecondAfter, "%.0f"))
	fmt.Fprintf(tw, "scientist alone primes/s (same stretch)\t\t%s\t\t\n", opt(c.AloneRate, "%.0f"))
	fmt.Fprintf(tw, "after / alone\t\t%s\t\t\n", opt(c.AfterVsAlone, "%.2f"))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range c.Plots {
		fmt.Fprintln(w, "plot:", p)
	}
	return nil
}
