package plot

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/record"
)

// eventClass is what a reader of a chart needs to know of an event: the
// few kinds the eye can tell apart, each with its colour and glyph.
type eventClass int

// The classes of event, most important first (the top row of the lane).
const (
	classInsolvency eventClass = iota // apoptosis, hibernate
	classWallet                       // low balance, funds, income stopped
	classFault                        // fail-safe, sensor, ledger, meter, engine faults
	classLifecycle                    // spawns, connections, kills, exits, the run's milestones
	numClasses
)

// classStyles gives each class its name, colour and glyph. The colours
// are darker than the series' (plotutil's soft palette), so that marks do
// not read as data.
var classStyles = [numClasses]struct {
	name  string
	color color.Color
	shape draw.GlyphDrawer
	// rule draws the class's events as dotted lines across the data
	// panels too, so that the eye can follow them to the data.
	rule bool
}{
	classInsolvency: {"insolvency", color.RGBA{R: 0xb0, A: 0xff}, thickCross{}, true},
	classWallet:     {"wallet", color.RGBA{R: 0xc0, G: 0x70, A: 0xff}, draw.PyramidGlyph{}, true},
	classFault:      {"fault", color.RGBA{R: 0x60, G: 0x20, B: 0xa0, A: 0xff}, draw.BoxGlyph{}, true},
	classLifecycle:  {"lifecycle", color.RGBA{R: 0x60, G: 0x60, B: 0x60, A: 0xff}, draw.RingGlyph{}, false},
}

func (c eventClass) String() string { return classStyles[c].name }

// classOf returns the class of an event kind.
func classOf(k event.Kind) eventClass {
	switch k {
	case event.Apoptosis, event.Hibernate:
		return classInsolvency
	case event.LowBalance, event.Funded, event.IncomeStopped:
		return classWallet
	case event.FailSafe, event.SensorRecovered, event.LedgerUnavailable, event.LedgerRecovered,
		event.MeterError, event.EngineError, event.PauseFailed, event.ResumeFailed, event.KillFailed,
		event.AgentRefused, event.AgentProtocolError:
		return classFault
	}
	return classLifecycle
}

// eventGroup is the events of one class close enough in time to share one
// mark: drawn once, with their count.
type eventGroup struct {
	class eventClass
	at    float64 // seconds: the first event's time
	kinds []event.Kind
	n     int
}

// groupEvents groups evs by class, merging an event into its class's group
// when it comes at most tol seconds after the group's latest, so that
// events at one instant (two spawns at t=0) make one mark with a count, not
// a stack of marks.
func groupEvents(evs []record.Event, tol float64) []eventGroup {
	var out []eventGroup
	open := map[eventClass]int{}
	last := map[eventClass]float64{} // the latest event of the class's open group
	sorted := slices.Clone(evs)
	slices.SortStableFunc(sorted, func(a, b record.Event) int { return cmp.Compare(a.Elapsed, b.Elapsed) })
	for _, e := range sorted {
		c, t := classOf(e.Kind), timeSeconds(e.Elapsed)
		if i, ok := open[c]; ok && t-last[c] <= tol {
			last[c] = t
			out[i].n++
			if !slices.Contains(out[i].kinds, e.Kind) {
				out[i].kinds = append(out[i].kinds, e.Kind)
			}
			continue
		}
		open[c], last[c] = len(out), t
		out = append(out, eventGroup{class: c, at: t, kinds: []event.Kind{e.Kind}, n: 1})
	}
	return out
}

// eventLane is a panel's plotter: one row per class present, each group a
// glyph at its time, its count beside it when it holds more than one.
type eventLane struct {
	rows   []eventClass // top to bottom
	groups []eventGroup
}

var countStyle = text.Style{
	Color:   color.Black,
	Font:    font.From(plot.DefaultFont, 8.5),
	XAlign:  draw.XLeft,
	YAlign:  draw.YCenter,
	Handler: plot.DefaultTextHandler,
}

const glyphRadius = 4.5 // points

// row returns the Y value of class c's row: the top row highest.
func (l *eventLane) row(c eventClass) float64 {
	return float64(len(l.rows) - 1 - slices.Index(l.rows, c))
}

// Plot implements plot.Plotter.
func (l *eventLane) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, g := range l.groups {
		if g.at < p.X.Min || g.at > p.X.Max {
			continue
		}
		pt := vg.Point{X: trX(g.at), Y: trY(l.row(g.class))}
		st := classStyles[g.class]
		c.DrawGlyph(draw.GlyphStyle{Color: st.color, Radius: vg.Points(glyphRadius), Shape: st.shape}, pt)
		if g.n > 1 {
			label, sty, at := fmt.Sprintf("×%d", g.n), countStyle, pt.X+vg.Points(glyphRadius+2)
			if at+sty.Width(label) > c.Max.X {
				// At the right end: the count goes on the left.
				sty.XAlign, at = draw.XRight, pt.X-vg.Points(glyphRadius+2)
			}
			c.FillText(sty, vg.Point{X: at, Y: pt.Y}, label)
		}
	}
}

// DataRange implements plot.DataRanger: the rows, and no time, so that
// events do not stretch the time axis.
func (l *eventLane) DataRange() (xmin, xmax, ymin, ymax float64) {
	return math.Inf(1), math.Inf(-1), -0.5, float64(len(l.rows)) - 0.5
}

// ticks labels each row with its class.
func (l *eventLane) ticks(_, _ float64) []plot.Tick {
	var out []plot.Tick
	for _, c := range l.rows {
		out = append(out, plot.Tick{Value: l.row(c), Label: c.String()})
	}
	return out
}

// eventRules is a plotter drawing groups as dotted vertical lines across a
// data panel, in their class's colour. It has no DataRange: events must
// not stretch the time axis.
type eventRules struct{ groups []eventGroup }

// Plot implements plot.Plotter.
func (r eventRules) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, g := range r.groups {
		if g.at < p.X.Min || g.at > p.X.Max {
			continue
		}
		x := trX(g.at)
		st := draw.LineStyle{Color: classStyles[g.class].color, Width: vg.Points(1),
			Dashes: []vg.Length{vg.Points(1.5), vg.Points(2.5)}}
		c.StrokeLine2(st, x, c.Min.Y, x, c.Max.Y)
	}
}

// glyphThumb is a legend thumbnail: one class's glyph.
type glyphThumb struct{ class eventClass }

// Thumbnail implements plot.Thumbnailer.
func (g glyphThumb) Thumbnail(c *draw.Canvas) {
	st := classStyles[g.class]
	c.DrawGlyph(draw.GlyphStyle{Color: st.color, Radius: vg.Points(glyphRadius), Shape: st.shape}, c.Center())
}

// thickCross is an ✕ glyph drawn with a line thick enough to see.
type thickCross struct{}

// DrawGlyph implements draw.GlyphDrawer.
func (thickCross) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: vg.Points(2)})
	r := sty.Radius * 0.8
	for _, d := range []vg.Length{r, -r} {
		var p vg.Path
		p.Move(vg.Point{X: pt.X - r, Y: pt.Y - d})
		p.Line(vg.Point{X: pt.X + r, Y: pt.Y + d})
		c.Stroke(p)
	}
}

// laneGroups groups evs for a time axis that ends at end seconds: a glyph
// and its count take about a thirtieth of the axis, and events just after
// the last sample (the agents killed as the run ends) are drawn at its end
// rather than lost off the axis.
func laneGroups(evs []record.Event, end float64) []eventGroup {
	tol := math.Max(end, 1) / 30
	groups := groupEvents(evs, tol)
	for i := range groups {
		if g := &groups[i]; g.at > end && g.at <= end+tol {
			g.at = end
		}
	}
	return groups
}

// eventPanel builds the events lane of a run whose time axis ends at end
// seconds, and returns it with the groups to rule across the data panels;
// nil if the run has no events.
func eventPanel(evs []record.Event, end float64) (*Panel, []eventGroup) {
	if len(evs) == 0 {
		return nil, nil
	}
	groups := laneGroups(evs, end)
	lane := &eventLane{groups: groups}
	counts := map[eventClass]map[event.Kind]int{}
	var order [numClasses][]event.Kind
	for _, e := range evs {
		c := classOf(e.Kind)
		if counts[c] == nil {
			counts[c] = map[event.Kind]int{}
		}
		if counts[c][e.Kind] == 0 {
			order[c] = append(order[c], e.Kind)
		}
		counts[c][e.Kind]++
	}
	p := newPanel()
	var rules []eventGroup
	pl := &Panel{Plot: p}
	for c := range numClasses {
		if len(order[c]) == 0 {
			continue
		}
		lane.rows = append(lane.rows, c)
		var kinds []string
		for _, k := range order[c] {
			s := strings.ReplaceAll(string(k), "_", " ")
			if n := counts[c][k]; n > 1 {
				s += fmt.Sprintf(" ×%d", n)
			}
			kinds = append(kinds, s)
		}
		pl.Legend = append(pl.Legend, LegendEntry{Label: c.String() + ": " + strings.Join(kinds, ", "), Thumb: glyphThumb{c}})
	}
	for _, g := range groups {
		if classStyles[g.class].rule {
			rules = append(rules, g)
		}
	}
	p.Add(lane)
	p.Y.Tick.Marker = plot.TickerFunc(lane.ticks)
	p.Y.Label.Text = "events"
	p.Y.Min, p.Y.Max = -0.6, float64(len(lane.rows))-0.4
	// A lane row needs about a quarter of an inch; the axis below keeps
	// its own room.
	pl.Weight = (0.28*float64(len(lane.rows)) + 0.1) / 2.4
	return pl, rules
}

// eventCaption lists in words, in time order, the few events a reader
// most needs (the most important classes first), as marks cannot carry
// details.
func eventCaption(evs []record.Event) []string {
	const maxLines = 6
	sorted := slices.Clone(evs)
	slices.SortStableFunc(sorted, func(a, b record.Event) int { return cmp.Compare(classOf(a.Kind), classOf(b.Kind)) })
	if len(sorted) > maxLines {
		sorted = sorted[:maxLines]
	}
	slices.SortStableFunc(sorted, func(a, b record.Event) int { return cmp.Compare(a.Elapsed, b.Elapsed) })
	var out []string
	for _, e := range sorted {
		line := fmt.Sprintf("%.1f s %s", timeSeconds(e.Elapsed), strings.ReplaceAll(string(e.Kind), "_", " "))
		if e.Cell != "" {
			line += " " + e.Cell
		}
		if e.Detail != "" {
			line += ": " + e.Detail
		}
		// One line each: the rest is in events.jsonl.
		out = append(out, fit(captionStyle, line, DefaultWidth-captionIndent-2*marginX))
	}
	if len(evs) > maxLines {
		out = append(out, fmt.Sprintf("… and %d more events (events.jsonl)", len(evs)-maxLines))
	}
	return out
}

func timeSeconds(d record.Duration) float64 { return float64(d) / 1e9 }
