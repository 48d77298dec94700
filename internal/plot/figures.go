package plot

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

const timeLabel = "elapsed (s)"

// Units of the axes.
var (
	unitCelsius = axisUnit{Symbol: "°C", Fixed: true}
	unitWatt    = axisUnit{Symbol: "W"}
	unitJoule   = axisUnit{Symbol: "J"}
	// Money is shown as the energy it stands for: 1 credit = 1 µJ, so a
	// balance of 2,000,000,000 credits reads 2 kJ of credits.
	unitCreditJoule = axisUnit{Symbol: "J of credits"}
)

// moneyCaption says how money is shown.
const moneyCaption = "Money: 1 credit = 1 µJ; prices and balances are shown as the joules of credits they are (2,000,000,000 credits = 2 kJ)."

// refStyle is the style of reference lines: the setpoint, the idle power,
// a bound.
var refStyle = draw.LineStyle{Color: color.Black, Width: vg.Points(1.2), Dashes: []vg.Length{vg.Points(6), vg.Points(3)}}

// ThermalFigure draws the host's temperature (with the controller's
// setpoint where the run recorded it) and power over time, the reserve and
// clearing prices (with fail-safe ticks crossed) when d ran under the
// economy, and d's events in a lane of their own: one row per class of
// event, each a glyph with its count, the important classes also ruled
// across the panels above.
func ThermalFigure(d Data) (*Figure, error) {
	if len(d.Run.Samples) == 0 {
		return nil, fmt.Errorf("%s: %s: %w", d.Name, record.HostFile, ErrEmpty)
	}
	meta := d.Run.Meta
	var temp, power plotter.XYs
	for _, s := range d.Run.Samples {
		t := s.Elapsed.Seconds()
		temp = append(temp, plotter.XY{X: t, Y: float64(s.Host.Temperature)})
		power = append(power, plotter.XY{X: t, Y: float64(s.Host.Power)})
	}
	tp := newDataPanel()
	if err := tp.addLine("temperature", temp, 0); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", d.Name, record.HostFile, err)
	}
	if meta.Setpoint != 0 {
		if err := tp.addRef(fmt.Sprintf("setpoint %s °C", sig3(float64(meta.Setpoint))), float64(meta.Setpoint)); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.MetaFile, err)
		}
	}
	finishAxis(&tp.Plot.Y, axisStyle{name: "temperature", unit: unitCelsius, notes: estimated(meta.TempSource), loose: true})

	pp := newDataPanel()
	if err := pp.addLine("host power", power, 1); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", d.Name, record.HostFile, err)
	}
	if meta.IdlePower > 0 {
		if err := pp.addRef(fmt.Sprintf("idle %s W (power model)", sig3(float64(meta.IdlePower))), float64(meta.IdlePower)); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.MetaFile, err)
		}
	}
	finishAxis(&pp.Plot.Y, axisStyle{name: "power", unit: unitWatt, notes: estimated(meta.EnergySource), loose: true, zero: true})
	panels := []*Panel{tp, pp}

	if hasMarket(d) {
		var reserve, clearing, failSafe plotter.XYs
		for _, s := range d.Run.Samples {
			if s.Market == nil {
				continue
			}
			t := s.Elapsed.Seconds()
			reserve = append(reserve, plotter.XY{X: t, Y: s.Market.Reserve.Joules()})
			clearing = append(clearing, plotter.XY{X: t, Y: s.Market.Clearing.Joules()})
			if s.Market.FailSafe {
				failSafe = append(failSafe, plotter.XY{X: t, Y: s.Market.Reserve.Joules()})
			}
		}
		mp := newDataPanel()
		if err := mp.addLine("reserve price", reserve, 2); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.MarketFile, err)
		}
		if err := mp.addLine("clearing price", clearing, 3); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.MarketFile, err)
		}
		if len(failSafe) > 0 {
			sc, err := plotter.NewScatter(failSafe)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", d.Name, record.MarketFile, err)
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: classStyles[classFault].color, Radius: vg.Points(3), Shape: draw.CrossGlyph{}}
			mp.Plot.Add(sc)
			mp.Legend = append(mp.Legend, LegendEntry{Label: "fail-safe on (price at its ceiling)", Thumb: sc})
		}
		finishAxis(&mp.Plot.Y, axisStyle{name: "price per slot", unit: unitCreditJoule, loose: true, zero: true})
		panels = append(panels, mp)
	}

	var money []string
	if hasMarket(d) {
		money = []string{moneyCaption}
	}
	end := d.Run.Samples[len(d.Run.Samples)-1].Elapsed.Seconds()
	if lane, rules := eventPanel(d.Run.Events, end); lane != nil {
		for _, p := range panels {
			p.Plot.Add(eventRules{groups: rules})
		}
		panels = append(panels, lane)
	}
	shareTimeAxis(panels, d)
	return &Figure{
		Name:    d.Name + "-thermal.png",
		Title:   runTitle(d) + ": host",
		Panels:  panels,
		Caption: slices.Concat(sourceCaption(meta), setpointCaption(d), money, eventCaption(d.Run.Events)),
	}, nil
}

// AgentsFigure draws each agent's CPU share and attributed energy over
// time, and each wallet's balance when d ran under the economy. Each agent
// keeps its colour on every panel; the legend above the top panel names
// them all.
func AgentsFigure(d Data) (*Figure, error) {
	if len(d.Run.Samples) == 0 {
		return nil, fmt.Errorf("%s: %s: %w", d.Name, record.HostFile, ErrEmpty)
	}
	meta := d.Run.Meta
	var order []string
	share := map[string]plotter.XYs{}
	energy := map[string]plotter.XYs{}
	for _, s := range d.Run.Samples {
		t := s.Elapsed.Seconds()
		for _, c := range s.Cells {
			if _, ok := share[c.Cell]; !ok {
				order = append(order, c.Cell)
			}
			share[c.Cell] = append(share[c.Cell], plotter.XY{X: t, Y: 100 * c.CPUShare})
			energy[c.Cell] = append(energy[c.Cell], plotter.XY{X: t, Y: c.Energy.Joules()})
		}
	}
	sp := newDataPanel()
	ep := newDataPanel()
	for i, cell := range order {
		if err := sp.addLine(cell, share[cell], i); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.CellsFile, err)
		}
		if err := ep.addLine(cell, energy[cell], i); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.CellsFile, err)
		}
	}
	sp.Plot.Y.Min, sp.Plot.Y.Max = 0, math.Max(sp.Plot.Y.Max, 100)
	finishAxis(&sp.Plot.Y, axisStyle{name: "CPU share", unit: axisUnit{Fixed: true}, notes: []string{fmt.Sprintf("%% of %d CPUs", max(len(meta.CPUs), 1))}, loose: true})
	finishAxis(&ep.Plot.Y, axisStyle{name: "attributed energy", unit: unitJoule, notes: estimated(meta.EnergySource), loose: true, zero: true})
	ep.Legend = nil // the top panel's legend names every agent
	panels := []*Panel{sp, ep}

	if hasWallets(d) {
		wp := newDataPanel()
		var worder []string
		bal := map[string]plotter.XYs{}
		for _, s := range d.Run.Samples {
			for _, w := range s.Wallets {
				if _, ok := bal[w.Cell]; !ok {
					worder = append(worder, w.Cell)
				}
				bal[w.Cell] = append(bal[w.Cell], plotter.XY{X: s.Elapsed.Seconds(), Y: w.Balance.Joules()})
			}
		}
		for _, cell := range worder {
			// Keep each cell's colour from the panels above.
			idx := slices.Index(order, cell)
			if idx < 0 {
				idx = len(order) + slices.Index(worder, cell)
				// A wallet without CPU samples: name it in the legend too.
				sp.Legend = append(sp.Legend, LegendEntry{Label: cell + " (wallet only)", Thumb: lineThumb(idx)})
			}
			if err := wp.addLine(cell, bal[cell], idx); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", d.Name, record.WalletsFile, err)
			}
		}
		wp.Legend = nil
		finishAxis(&wp.Plot.Y, axisStyle{name: "wallet balance", unit: unitCreditJoule, loose: true, zero: true})
		panels = append(panels, wp)
	}
	shareTimeAxis(panels, d)
	var caption []string
	if meta.EnergySource.Estimated() {
		caption = append(caption, "Attributed energy is a share of estimated host energy: "+describe(meta.EnergySource))
	}
	if hasWallets(d) {
		caption = append(caption, moneyCaption)
	}
	return &Figure{Name: d.Name + "-agents.png", Title: runTitle(d) + ": agents", Panels: panels, Caption: caption}, nil
}

// EfficiencyFigure draws, for every run on one chart, the useful work done
// so far in unit (the sum of the counters the agents declared as their
// useful work in that unit) against the host energy spent so far. Steeper
// is better: the slope is useful work per joule.
func EfficiencyFigure(runs []Data, unit string) (*Figure, error) {
	p := newDataPanel()
	var estimatedRuns []string
	var caption []string
	for i, d := range runs {
		xys := efficiencySeries(d.Run, unit)
		src := d.Run.Meta.EnergySource
		u, _ := record.Summarize(d.Run).UsefulIn(unit)
		label := fmt.Sprintf("%s: %s %s/J", runTitle(d), human(u.PerJoule), unit)
		if src.Estimated() {
			estimatedRuns = append(estimatedRuns, d.Name)
			label += ", energy estimated"
		}
		if err := p.addLine(label, xys, i); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.CountersFile, err)
		}
		caption = append(caption, fmt.Sprintf("%s: energy %s", d.Name, describe(src)))
	}
	var notes []string
	switch {
	case len(estimatedRuns) == len(runs):
		notes = []string{"estimated"}
	case len(estimatedRuns) > 0:
		notes = []string{"estimated for " + strings.Join(estimatedRuns, ", ")}
	}
	finishAxis(&p.Plot.X, axisStyle{name: "host energy", unit: unitJoule, notes: notes, n: timeTicks, loose: true, zero: true})
	finishAxis(&p.Plot.Y, axisStyle{name: "useful work", unit: axisUnit{Count: unit}, loose: true, zero: true})
	return &Figure{Name: "efficiency.png", Title: unit + " (useful work) against host energy spent",
		Panels: []*Panel{p}, Caption: caption}, nil
}

// runTitle names a run and, where its name does not say it, its kind.
func runTitle(d Data) string {
	if d.Run.Meta.Kind == "" || d.Run.Meta.Kind == d.Name {
		return d.Name
	}
	return fmt.Sprintf("%s (%s)", d.Name, d.Run.Meta.Kind)
}

// efficiencySeries returns (host energy in J, useful work in unit so far)
// at every sample of r. A cell that stops appearing (it died) keeps its
// last count.
func efficiencySeries(r record.Run, unit string) plotter.XYs {
	var xys plotter.XYs
	last := map[string]uint64{}
	for _, s := range r.Samples {
		for _, c := range s.Cells {
			u := c.UsefulUnit
			if u == "" {
				u = c.UsefulCounter
			}
			if c.UsefulCounter == "" || u != unit {
				continue
			}
			if v, ok := c.Counters[c.UsefulCounter]; ok {
				last[c.Cell] = v
			}
		}
		var work uint64
		for _, v := range last {
			work += v
		}
		xys = append(xys, plotter.XY{X: s.Host.Energy.Joules(), Y: float64(work)})
	}
	return xys
}

// usefulUnits returns every unit of useful work in runs, in first-seen
// order.
func usefulUnits(runs []Data) []string {
	var out []string
	for _, d := range runs {
		for _, u := range record.Summarize(d.Run).Useful {
			if !slices.Contains(out, u.Unit) {
				out = append(out, u.Unit)
			}
		}
	}
	return out
}

// newPanel returns a gonum plot with a grid and no legend of its own: the
// figure draws legends above the plotting areas.
func newPanel() *plot.Plot {
	p := plot.New()
	p.Add(plotter.NewGrid())
	p.X.Tick.Marker = niceTicks{n: timeTicks, scale: 1}
	p.Y.Tick.Marker = niceTicks{n: valueTicks, scale: 1}
	return p
}

func newDataPanel() *Panel { return &Panel{Plot: newPanel()} }

func lineStyle(i int) draw.LineStyle {
	return draw.LineStyle{Color: plotutil.Color(i), Width: vg.Points(1.5)}
}

func lineThumb(i int) plot.Thumbnailer { return &plotter.Line{LineStyle: lineStyle(i)} }

// addLine adds a line through xys to p, labelled name in the legend, in
// colour i. Points whose Y is NaN are gaps: the line breaks there.
func (p *Panel) addLine(name string, xys plotter.XYs, i int) error {
	style := lineStyle(i)
	var seg plotter.XYs
	flush := func() error {
		if len(seg) == 0 {
			return nil
		}
		l, err := plotter.NewLine(seg)
		if err != nil {
			return err
		}
		l.LineStyle = style
		p.Plot.Add(l)
		seg = nil
		return nil
	}
	for _, xy := range xys {
		if math.IsNaN(xy.Y) {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		seg = append(seg, xy)
	}
	if err := flush(); err != nil {
		return err
	}
	p.Series = append(p.Series, Series{Label: name, XYs: xys})
	label := name
	if !slices.ContainsFunc(xys, func(xy plotter.XY) bool { return !math.IsNaN(xy.Y) }) {
		label += " (no data)" // nothing to draw: still say the series exists
	}
	p.Legend = append(p.Legend, LegendEntry{Label: label, Thumb: lineThumb(i)})
	return nil
}

// addRef adds a labelled horizontal reference line at v to p; the Y axis
// stretches to show it.
func (p *Panel) addRef(label string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("reference line %q at %v", label, v)
	}
	r := refLine{value: v, style: refStyle}
	p.Plot.Add(r)
	p.Refs = append(p.Refs, Ref{Label: label, Value: v})
	p.Legend = append(p.Legend, LegendEntry{Label: label, Thumb: r})
	return nil
}

// refLine is a plotter: a horizontal line across the plotting area.
type refLine struct {
	value float64
	style draw.LineStyle
}

// Plot implements plot.Plotter.
func (r refLine) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	y := trY(r.value)
	c.StrokeLine2(r.style, c.Min.X, y, c.Max.X, y)
}

// DataRange implements plot.DataRanger: the value, and no X range.
func (r refLine) DataRange() (xmin, xmax, ymin, ymax float64) {
	return math.Inf(1), math.Inf(-1), r.value, r.value
}

// Thumbnail implements plot.Thumbnailer.
func (r refLine) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(r.style, c.Min.X, y, c.Max.X, y)
}

// shareTimeAxis gives every panel the run's time range and round time
// ticks, and labels the bottom one.
func shareTimeAxis(panels []*Panel, d Data) {
	end := d.Run.Samples[len(d.Run.Samples)-1].Elapsed.Seconds()
	for _, p := range panels {
		p.Plot.X.Min, p.Plot.X.Max = 0, end
		if end <= 0 {
			p.Plot.X.Max = 1
		}
		p.Plot.X.Tick.Marker = niceTicks{n: timeTicks, scale: 1}
	}
	panels[len(panels)-1].Plot.X.Label.Text = timeLabel
}

// estimated returns the axis note of a figure from s: "estimated" for a
// model's.
func estimated(s sensors.Source) []string {
	if s.Estimated() {
		return []string{"estimated"}
	}
	return nil
}

// describe says where a figure came from, naming the model of an estimate.
func describe(s sensors.Source) string {
	if s == (sensors.Source{}) {
		return "source not recorded"
	}
	out := s.Label() + ", " + s.String()
	if s.Estimated() && s.Model == "" {
		out += " [model not named in meta.json]"
	}
	return out
}

// setpointCaption says where the setpoint came from when meta.json did
// not hold it.
func setpointCaption(d Data) []string {
	if d.SetpointFrom == "" || d.Run.Meta.Setpoint == 0 {
		return nil
	}
	return []string{fmt.Sprintf("Setpoint: %s °C, the controller's, from %s (this run's meta.json predates the setpoint)",
		sig3(float64(d.Run.Meta.Setpoint)), d.SetpointFrom)}
}

func sourceCaption(meta record.Meta) []string {
	return []string{
		"Temperature: " + describe(meta.TempSource),
		"Power: " + describe(meta.EnergySource),
	}
}
