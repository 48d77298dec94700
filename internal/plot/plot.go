// Package plot draws PNG charts of run directories (see package record), so
// that runs can be looked at rather than read:
//
//   - NAME-thermal.png: host temperature (with the controller's setpoint)
//     and power (with the idle power) over time, the reserve and clearing
//     prices where the run has a market.csv (a run under the economy), and
//     the run's events in a lane of their own: a row per class (insolvency,
//     wallet, fault, lifecycle), each a coloured glyph with its count where
//     events of a class share an instant; the important classes are also
//     ruled across the panels above;
//   - NAME-agents.png: each agent's CPU share and attributed energy over
//     time, and its wallet balance where the run has a wallets.csv;
//   - efficiency.png: cumulative useful work (what the agents declared as
//     such; one chart per unit, efficiency-UNIT.png after the first) against
//     cumulative host energy for every run given, on one chart, so that a
//     baseline and a Maxwell run compare at a glance.
//
// Every axis has round ticks (steps of 1, 2 or 5 × 10^k) with distinct
// labels, large values scaled into the unit (kJ; billions); money is shown
// as the joules of credits it is. Legends sit above their panel's plotting
// area, never over the data, and the caption is wrapped to the figure's
// width. A figure whose source is a model says so: its axis title reads
// "estimated" and its caption names the model.
//
// The figures (ThermalFigure, AgentsFigure, EfficiencyFigure, StudyFigure)
// are built as panels — a gonum plot, its legend, the series and reference
// lines drawn — before they are rendered, so that callers and tests can
// inspect them. Text is set in the Liberation fonts that gonum embeds; no
// system font is needed.
package plot

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Figure is one chart: a title, panels stacked top to bottom sharing the
// time (or energy) axis, each with its legend above its plotting area, and
// a caption below them.
type Figure struct {
	// Name is the file name the figure is written to, e.g. "run1-thermal.png".
	Name  string
	Title string
	// Panels are drawn top to bottom, their plotting areas aligned.
	Panels []*Panel
	// Caption is printed under the panels, one paragraph per element,
	// wrapped to the figure's width: where the figures come from, which
	// models made the estimated ones, what happened.
	Caption []string
}

// Panel is one plot of a figure: a gonum plot (axes, grid, data) and the
// legend the figure draws above its plotting area, where it cannot cover
// the data. Series and Refs keep what was drawn, for readers and tests.
type Panel struct {
	Plot   *plot.Plot
	Legend []LegendEntry
	// Series are the lines drawn, in the units of the panel's axes.
	Series []Series
	// Refs are the horizontal reference lines drawn (a setpoint, a bound).
	Refs []Ref
	// Weight is the panel's height against a full panel's 1 (0 means 1).
	Weight float64
}

// LegendEntry is one entry of a panel's legend: a thumbnail of the style
// and its label.
type LegendEntry struct {
	Label string
	Thumb plot.Thumbnailer
}

// Series is one line of a panel, as plotted.
type Series struct {
	Label string
	XYs   plotter.XYs
}

// Ref is a horizontal reference line at Value on a panel's Y axis.
type Ref struct {
	Label string
	Value float64
}

// Default size of a rendered figure.
const (
	DefaultWidth       = 10 * vg.Inch
	DefaultPanelHeight = 3 * vg.Inch
	dpi                = 96
)

var (
	captionStyle = text.Style{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, 10),
		XAlign:  draw.XLeft,
		YAlign:  draw.YTop,
		Handler: plot.DefaultTextHandler,
	}
	legendStyle = text.Style{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, 10.5),
		XAlign:  draw.XLeft,
		YAlign:  draw.YCenter,
		Handler: plot.DefaultTextHandler,
	}
	titleStyle = text.Style{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, 13),
		XAlign:  draw.XCenter,
		YAlign:  draw.YTop,
		Handler: plot.DefaultTextHandler,
	}
)

// Spacing of a figure.
var (
	marginX       = vg.Points(8)  // left and right of everything
	captionIndent = vg.Points(8)  // caption's left margin
	panelGap      = vg.Points(10) // between one panel's x axis and the next legend
	legendThumb   = vg.Points(20) // a legend entry's thumbnail width
	legendGap     = vg.Points(4)  // between a thumbnail and its label
	legendSpacing = vg.Points(16) // between entries on one row
	legendBelow   = vg.Points(4)  // between a legend and its plotting area
)

// lineHeight is the height of one line of text in sty.
func lineHeight(sty text.Style) vg.Length { return sty.Height("Mg") * 1.25 }

// legendItem is a legend entry placed on a row.
type legendItem struct {
	entry LegendEntry
	label string // possibly shortened to fit
	x     vg.Length
}

// panelBox is where one panel is drawn.
type panelBox struct {
	canvas draw.Canvas  // what the gonum plot draws on
	data   vg.Rectangle // its plotting area
	legend vg.Rectangle // the legend's rows, above data
	rows   [][]legendItem
}

// figureLayout is where everything of a figure goes on a canvas.
type figureLayout struct {
	titleAt vg.Point
	panels  []panelBox
	// caption holds the wrapped caption lines and where each is drawn.
	caption   []string
	captionAt []vg.Point
}

// layout places f's parts on c: the title at the top, then each panel's
// legend rows above its plotting area, the plotting areas aligned on the
// left and right, the caption wrapped to the width at the bottom.
func (f *Figure) layout(c draw.Canvas) figureLayout {
	var l figureLayout
	width := c.Max.X - c.Min.X
	top := c.Max.Y - vg.Points(4)
	if f.Title != "" {
		l.titleAt = vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: top}
		top -= lineHeight(titleStyle)
	}
	capLineH := lineHeight(captionStyle)
	for _, para := range f.Caption {
		l.caption = append(l.caption, wrap(captionStyle, para, width-captionIndent-marginX)...)
	}
	capH := capLineH*vg.Length(len(l.caption)) + vg.Points(6)
	for i := range l.caption {
		l.captionAt = append(l.captionAt, vg.Point{X: c.Min.X + captionIndent, Y: c.Min.Y + capH - vg.Points(2) - capLineH*vg.Length(i)})
	}

	// Align the plotting areas: the widest left axis and right overhang
	// of any panel set every panel's.
	probe := draw.Canvas{Rectangle: vg.Rectangle{Min: vg.Point{X: c.Min.X + marginX, Y: 0}, Max: vg.Point{X: c.Max.X - marginX, Y: DefaultPanelHeight}}}
	var left, right vg.Length
	lefts := make([]vg.Length, len(f.Panels))
	rights := make([]vg.Length, len(f.Panels))
	bottoms := make([]vg.Length, len(f.Panels))
	tops := make([]vg.Length, len(f.Panels))
	for i, p := range f.Panels {
		dc := p.Plot.DataCanvas(probe)
		lefts[i], rights[i] = dc.Min.X-probe.Min.X, probe.Max.X-dc.Max.X
		bottoms[i], tops[i] = dc.Min.Y-probe.Min.Y, probe.Max.Y-dc.Max.Y
		left, right = max(left, lefts[i]), max(right, rights[i])
	}
	dataMinX, dataMaxX := probe.Min.X+left, probe.Max.X-right
	legendH := lineHeight(legendStyle)

	// Fixed heights first: legends, axes, gaps; the plotting areas share
	// what is left by weight.
	fixed := c.Max.Y - top + capH
	var weights float64
	rows := make([][][]legendItem, len(f.Panels))
	for i, p := range f.Panels {
		rows[i] = legendRows(p.Legend, dataMaxX-dataMinX)
		fixed += legendH*vg.Length(len(rows[i])) + legendBelow + bottoms[i] + tops[i]
		if i > 0 {
			fixed += panelGap
		}
		weights += p.weight()
	}
	share := (c.Max.Y - c.Min.Y - fixed) / vg.Length(weights)
	y := top
	for i, p := range f.Panels {
		var b panelBox
		b.rows = rows[i]
		if i > 0 {
			y -= panelGap
		}
		lh := legendH * vg.Length(len(b.rows))
		b.legend = vg.Rectangle{Min: vg.Point{X: dataMinX, Y: y - lh}, Max: vg.Point{X: dataMaxX, Y: y}}
		y -= lh + legendBelow
		h := share*vg.Length(p.weight()) + bottoms[i] + tops[i]
		b.canvas = draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: dataMinX - lefts[i], Y: y - h},
			Max: vg.Point{X: dataMaxX + rights[i], Y: y},
		}}
		b.data = p.Plot.DataCanvas(b.canvas).Rectangle
		y -= h
		l.panels = append(l.panels, b)
	}
	return l
}

func (p *Panel) weight() float64 {
	if p.Weight > 0 {
		return p.Weight
	}
	return 1
}

// legendRows lays entries out left to right in rows no wider than width,
// shortening a label that cannot fit on a row of its own.
func legendRows(entries []LegendEntry, width vg.Length) [][]legendItem {
	var rows [][]legendItem
	var row []legendItem
	x := vg.Length(0)
	for _, e := range entries {
		label := fit(legendStyle, e.Label, width-legendThumb-legendGap)
		w := legendThumb + legendGap + legendStyle.Width(label)
		if len(row) > 0 && x+legendSpacing+w > width {
			rows = append(rows, row)
			row, x = nil, 0
		}
		if len(row) > 0 {
			x += legendSpacing
		}
		row = append(row, legendItem{entry: e, label: label, x: x})
		x += w
	}
	if len(row) > 0 {
		rows = append(rows, row)
	}
	return rows
}

// wrap breaks s into lines no wider than width in sty, at spaces, and
// inside a word (a path, a URL) only where the word alone is wider.
func wrap(sty text.Style, s string, width vg.Length) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		for sty.Width(word) > width && len([]rune(word)) > 1 {
			// Fill the current line with as much of the word as fits.
			prefix := line
			if prefix != "" {
				prefix += " "
			}
			r := []rune(word)
			n := 0
			for n < len(r) && sty.Width(prefix+string(r[:n+1])) <= width {
				n++
			}
			if n == 0 {
				if line != "" {
					lines = append(lines, line)
					line = ""
					continue
				}
				n = 1
			}
			lines = append(lines, prefix+string(r[:n]))
			line, word = "", string(r[n:])
		}
		switch {
		case line == "":
			line = word
		case sty.Width(line+" "+word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// fit returns s, or s shortened with "…" to fit width in sty.
func fit(sty text.Style, s string, width vg.Length) string {
	if sty.Width(s) <= width {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && sty.Width(string(r)+"…") > width {
		r = r[:len(r)-1]
	}
	return strings.TrimRight(string(r), " ,;:") + "…"
}

// Draw draws f onto c.
func (f *Figure) Draw(c draw.Canvas) (err error) {
	if len(f.Panels) == 0 {
		return fmt.Errorf("figure %s has no panels", f.Name)
	}
	// gonum panics on some degenerate inputs; a chart is not worth a crash.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("draw %s: %v", f.Name, r)
		}
	}()
	l := f.layout(c)
	if f.Title != "" {
		c.FillText(titleStyle, l.titleAt, f.Title)
	}
	for i, line := range l.caption {
		c.FillText(captionStyle, l.captionAt[i], line)
	}
	legendH := lineHeight(legendStyle)
	for i, p := range f.Panels {
		b := l.panels[i]
		p.Plot.Draw(b.canvas)
		for r, row := range b.rows {
			y := b.legend.Max.Y - legendH*vg.Length(r)
			for _, it := range row {
				x := b.legend.Min.X + it.x
				thumb := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
					Min: vg.Point{X: x, Y: y - legendH*0.85}, Max: vg.Point{X: x + legendThumb, Y: y - legendH*0.15}}}
				if it.entry.Thumb != nil {
					it.entry.Thumb.Thumbnail(&thumb)
				}
				c.FillText(legendStyle, vg.Point{X: x + legendThumb + legendGap, Y: y - legendH/2}, it.label)
			}
		}
	}
	return nil
}

// Size returns the default size of f: DefaultWidth wide, DefaultPanelHeight
// per full panel (less for a lighter one) plus its legend, and room for the
// title and the caption.
func (f *Figure) Size() (w, h vg.Length) {
	w = DefaultWidth
	h = vg.Points(8)
	if f.Title != "" {
		h += lineHeight(titleStyle)
	}
	for _, para := range f.Caption {
		h += lineHeight(captionStyle) * vg.Length(len(wrap(captionStyle, para, w-captionIndent-marginX)))
	}
	probe := draw.Canvas{Rectangle: vg.Rectangle{Max: vg.Point{X: w - 2*marginX, Y: DefaultPanelHeight}}}
	for i, p := range f.Panels {
		dc := p.Plot.DataCanvas(probe)
		axes := (dc.Min.Y - probe.Min.Y) + (probe.Max.Y - dc.Max.Y)
		h += (DefaultPanelHeight-axes)*vg.Length(p.weight()) + axes
		h += lineHeight(legendStyle)*vg.Length(len(legendRows(p.Legend, dc.Max.X-dc.Min.X))) + legendBelow
		if i > 0 {
			h += panelGap
		}
	}
	return w, h
}

// WritePNG renders f as a PNG of its default size to w.
func (f *Figure) WritePNG(w io.Writer) error {
	width, height := f.Size()
	c := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	if err := f.Draw(draw.New(c)); err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w); err != nil {
		return fmt.Errorf("encode %s: %w", f.Name, err)
	}
	return nil
}

// Run reads the run directories dirs, draws a thermal and an agents figure
// for each and one efficiency figure for all of them, writes them as PNG
// files into outDir (created if needed) and returns the paths written. An
// incomplete or corrupt run directory gives an error naming the file at
// fault, and nothing is written.
func Run(dirs []string, outDir string) ([]string, error) {
	if len(dirs) == 0 {
		return nil, errors.New("plot: no run directories given")
	}
	runs := make([]Data, 0, len(dirs))
	for _, dir := range dirs {
		d, err := Load(dir)
		if err != nil {
			return nil, err
		}
		runs = append(runs, d)
	}
	uniqueNames(runs)
	figs, err := Figures(runs)
	if err != nil {
		return nil, err
	}
	// Render everything before writing anything, so that a failure leaves
	// no half set of charts behind.
	pngs := make([][]byte, len(figs))
	for i, f := range figs {
		var buf bytes.Buffer
		if err := f.WritePNG(&buf); err != nil {
			return nil, err
		}
		pngs[i] = buf.Bytes()
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	var written []string
	for i, f := range figs {
		path := filepath.Join(outDir, f.Name)
		if err := os.WriteFile(path, pngs[i], 0o644); err != nil {
			return written, fmt.Errorf("plot: %w", err)
		}
		written = append(written, path)
	}
	return written, nil
}

// Figures builds every figure for runs: a thermal and, where the run has
// cell samples, an agents figure per run, then the efficiency figure.
func Figures(runs []Data) ([]*Figure, error) {
	var figs []*Figure
	for _, d := range runs {
		f, err := ThermalFigure(d)
		if err != nil {
			return nil, err
		}
		figs = append(figs, f)
		if hasCells(d) {
			if f, err = AgentsFigure(d); err != nil {
				return nil, err
			}
			figs = append(figs, f)
		}
	}
	for i, unit := range usefulUnits(runs) {
		f, err := EfficiencyFigure(runs, unit)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			f.Name = "efficiency-" + sanitize(unit) + ".png"
		}
		figs = append(figs, f)
	}
	return figs, nil
}

// uniqueNames makes the runs' names distinct and safe as file names.
func uniqueNames(runs []Data) {
	seen := map[string]int{}
	for i := range runs {
		name := sanitize(runs[i].Name)
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s-%d", name, n)
		}
		runs[i].Name = name
	}
}

func sanitize(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
	if name == "" || name == "." || name == ".." {
		return "run"
	}
	return name
}

func hasCells(d Data) bool {
	for _, s := range d.Run.Samples {
		if len(s.Cells) > 0 {
			return true
		}
	}
	return false
}
