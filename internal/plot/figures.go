package plot

import (
	"slices"

	"github.com/maxwellhq/maxwell/internal/event"

	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

const timeLabel = "elapsed (s)"

// ThermalFigure draws the host's temperature and power over time, and the
// reserve and clearing prices (with fail-safe ticks crossed) when d ran
// under the economy, with d's events
// marked as vertical dashed lines on every panel (one legend entry per
// event kind, on the top panel).
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
	tp := newPanel()
	tp.Title.Text = fmt.Sprintf("%s (%s): host", d.Name, meta.Kind)
	tp.Y.Label.Text = "temperature (°C" + estimatedSuffix(meta.TempSource) + ")"
	if err := addLine(tp, "temperature", temp, 0); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", d.Name, record.HostFile, err)
	}
	pp := newPanel()
	pp.Y.Label.Text = "power (W" + estimatedSuffix(meta.EnergySource) + ")"
	if err := addLine(pp, "power", power, 1); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", d.Name, record.HostFile, err)
	}
	panels := []*plot.Plot{tp, pp}

	if hasMarket(d) {
		var reserve, clearing, failSafe plotter.XYs
		for _, s := range d.Run.Samples {
			if s.Market == nil {
				continue
			}
			t := s.Elapsed.Seconds()
			reserve = append(reserve, plotter.XY{X: t, Y: float64(s.Market.Reserve)})
			clearing = append(clearing, plotter.XY{X: t, Y: float64(s.Market.Clearing)})
			if s.Market.FailSafe {
				failSafe = append(failSafe, plotter.XY{X: t, Y: float64(s.Market.Reserve)})
			}
		}
		mp := newPanel()
		mp.Y.Label.Text = "price (credits per slot)"
		if err := addLine(mp, "reserve price", reserve, 2); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.MarketFile, err)
		}
		if err := addLine(mp, "clearing price", clearing, 3); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.MarketFile, err)
		}
		if len(failSafe) > 0 {
			sc, err := plotter.NewScatter(failSafe)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", d.Name, record.MarketFile, err)
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: eventColors[0], Radius: vg.Points(3), Shape: draw.CrossGlyph{}}
			mp.Add(sc)
			mp.Legend.Add("fail-safe on", sc)
		}
		panels = append(panels, mp)
	}

	marks := eventMarks(d.Run.Events)
	for i, p := range panels {
		for _, m := range marks {
			p.Add(m)
			if i == 0 {
				p.Legend.Add("event: "+m.kind, m)
			}
		}
	}
	shareTimeAxis(panels, d)
	return &Figure{
		Name:    d.Name + "-thermal.png",
		Panels:  panels,
		Caption: append(sourceCaption(meta), eventCaption(d.Run.Events)...),
	}, nil
}

// AgentsFigure draws each agent's CPU share and attributed energy over
// time, and each wallet's balance when d ran under the economy.
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
			share[c.Cell] = append(share[c.Cell], plotter.XY{X: t, Y: c.CPUShare})
			energy[c.Cell] = append(energy[c.Cell], plotter.XY{X: t, Y: c.Energy.Joules()})
		}
	}
	sp := newPanel()
	sp.Title.Text = fmt.Sprintf("%s (%s): agents", d.Name, meta.Kind)
	sp.Y.Label.Text = fmt.Sprintf("CPU share (of %d CPUs)", max(len(meta.CPUs), 1))
	ep := newPanel()
	ep.Y.Label.Text = "attributed energy (J" + estimatedSuffix(meta.EnergySource) + ")"
	for i, cell := range order {
		if err := addLine(sp, cell, share[cell], i); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.CellsFile, err)
		}
		if err := addLine(ep, cell, energy[cell], i); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.CellsFile, err)
		}
	}
	sp.Y.Min, sp.Y.Max = 0, math.Max(sp.Y.Max, 1)
	panels := []*plot.Plot{sp, ep}

	if hasWallets(d) {
		wp := newPanel()
		wp.Y.Label.Text = "wallet balance (credits)"
		var worder []string
		bal := map[string]plotter.XYs{}
		for _, s := range d.Run.Samples {
			for _, w := range s.Wallets {
				if _, ok := bal[w.Cell]; !ok {
					worder = append(worder, w.Cell)
				}
				bal[w.Cell] = append(bal[w.Cell], plotter.XY{X: s.Elapsed.Seconds(), Y: float64(w.Balance)})
			}
		}
		for _, cell := range worder {
			// Keep each cell's colour from the panels above.
			idx := indexOf(order, cell)
			if idx < 0 {
				idx = len(order) + indexOf(worder, cell)
			}
			if err := addLine(wp, cell, bal[cell], idx); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", d.Name, record.WalletsFile, err)
			}
		}
		panels = append(panels, wp)
	}
	shareTimeAxis(panels, d)
	var caption []string
	if meta.EnergySource.Estimated() {
		caption = append(caption, "Attributed energy is a share of estimated host energy: "+describe(meta.EnergySource))
	}
	return &Figure{Name: d.Name + "-agents.png", Panels: panels, Caption: caption}, nil
}

// EfficiencyFigure draws, for every run on one chart, the useful work done
// so far in unit (the sum of the counters the agents declared as their
// useful work in that unit) against the host energy spent so far. Steeper
// is better: the slope is useful work per joule.
func EfficiencyFigure(runs []Data, unit string) (*Figure, error) {
	p := newPanel()
	p.Title.Text = unit + " (useful work) against host energy spent"
	p.Y.Label.Text = unit
	p.Legend.Top = true
	p.Legend.Left = true
	anyEstimated := false
	var caption []string
	for i, d := range runs {
		xys := efficiencySeries(d.Run, unit)
		src := d.Run.Meta.EnergySource
		u, _ := record.Summarize(d.Run).UsefulIn(unit)
		label := fmt.Sprintf("%s (%s): %.4g %s/J", d.Name, d.Run.Meta.Kind, u.PerJoule, unit)
		if src.Estimated() {
			anyEstimated = true
			label += ", energy estimated"
		}
		if err := addLine(p, label, xys, i); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.Name, record.CountersFile, err)
		}
		caption = append(caption, fmt.Sprintf("%s: energy %s", d.Name, describe(src)))
	}
	p.X.Label.Text = "host energy (J"
	if anyEstimated {
		p.X.Label.Text += ", estimated for some runs"
	}
	p.X.Label.Text += ")"
	if p.Y.Min > 0 {
		p.Y.Min = 0
	}
	if p.X.Min > 0 {
		p.X.Min = 0
	}
	return &Figure{Name: "efficiency.png", Panels: []*plot.Plot{p}, Caption: caption}, nil
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

func newPanel() *plot.Plot {
	p := plot.New()
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

// addLine adds a line through xys to p, labelled name in the legend, in
// colour i. Points whose Y is NaN are gaps: the line breaks there.
func addLine(p *plot.Plot, name string, xys plotter.XYs, i int) error {
	style := draw.LineStyle{Color: plotutil.Color(i), Width: vg.Points(1.5)}
	var seg plotter.XYs
	added := false
	flush := func() error {
		if len(seg) == 0 {
			return nil
		}
		l, err := plotter.NewLine(seg)
		if err != nil {
			return err
		}
		l.LineStyle = style
		p.Add(l)
		if !added {
			p.Legend.Add(name, l)
			added = true
		}
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
	if !added {
		// Nothing to draw: still say the series exists.
		l := &plotter.Line{LineStyle: style}
		p.Legend.Add(name+" (no data)", l)
	}
	return nil
}

// shareTimeAxis gives every panel the run's time range and labels the
// bottom one.
func shareTimeAxis(panels []*plot.Plot, d Data) {
	end := d.Run.Samples[len(d.Run.Samples)-1].Elapsed.Seconds()
	for _, p := range panels {
		p.X.Min, p.X.Max = 0, end
	}
	panels[len(panels)-1].X.Label.Text = timeLabel
}

// eventMark draws vertical lines at the times of one kind of event.
type eventMark struct {
	kind  string
	times []float64
	style draw.LineStyle
}

var eventColors = []color.Color{
	color.RGBA{R: 0xb0, G: 0x20, B: 0x20, A: 0xff},
	color.RGBA{R: 0x20, G: 0x20, B: 0x20, A: 0xff},
	color.RGBA{R: 0x80, G: 0x40, B: 0xb0, A: 0xff},
	color.RGBA{R: 0x20, G: 0x80, B: 0x40, A: 0xff},
	color.RGBA{R: 0xc0, G: 0x80, B: 0x00, A: 0xff},
}

func eventMarks(evs []record.Event) []*eventMark {
	var out []*eventMark
	byKind := map[event.Kind]*eventMark{}
	for _, e := range evs {
		m, ok := byKind[e.Kind]
		if !ok {
			m = &eventMark{kind: string(e.Kind), style: draw.LineStyle{
				Color:  eventColors[len(out)%len(eventColors)],
				Width:  vg.Points(1),
				Dashes: []vg.Length{vg.Points(4), vg.Points(3)},
			}}
			byKind[e.Kind] = m
			out = append(out, m)
		}
		m.times = append(m.times, timeSeconds(e.Elapsed))
	}
	return out
}

func timeSeconds(d record.Duration) float64 { return float64(d) / 1e9 }

// Plot implements plot.Plotter. It deliberately has no DataRange: events
// must not stretch the time axis.
func (m *eventMark) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, t := range m.times {
		if t < p.X.Min || t > p.X.Max {
			continue
		}
		x := trX(t)
		c.StrokeLine2(m.style, x, c.Min.Y, x, c.Max.Y)
	}
}

// Thumbnail implements plot.Thumbnailer.
func (m *eventMark) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(m.style, x, c.Min.Y, x, c.Max.Y)
}

func estimatedSuffix(s sensors.Source) string {
	if s.Estimated() {
		return ", estimated"
	}
	return ""
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

func sourceCaption(meta record.Meta) []string {
	return []string{
		"Temperature: " + describe(meta.TempSource),
		"Power: " + describe(meta.EnergySource),
	}
}

// eventCaption lists the first few events in words, as the lines on the
// chart cannot carry their details.
func eventCaption(evs []record.Event) []string {
	const maxLines = 6
	var out []string
	for i, e := range evs {
		if i == maxLines {
			out = append(out, fmt.Sprintf("... and %d more events (events.jsonl)", len(evs)-maxLines))
			break
		}
		line := fmt.Sprintf("%.1fs %s", timeSeconds(e.Elapsed), e.Kind)
		if e.Cell != "" {
			line += " " + e.Cell
		}
		if e.Detail != "" {
			line += ": " + e.Detail
		}
		if r := []rune(line); len(r) > 140 {
			line = string(r[:137]) + "..."
		}
		out = append(out, line)
	}
	return out
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
