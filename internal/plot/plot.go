// Package plot draws PNG charts of run directories (see package record), so
// that runs can be looked at rather than read:
//
//   - NAME-thermal.png: host temperature and power over time, and the
//     reserve and clearing prices where the run has a market.csv (a run
//     under the economy), with the run's events marked on every panel;
//   - NAME-agents.png: each agent's CPU share and attributed energy over
//     time, and its wallet balance where the run has a wallets.csv;
//   - efficiency.png: cumulative useful work (what the agents declared as
//     such; one chart per unit, efficiency-UNIT.png after the first) against
//     cumulative host energy for
//     every run given, on one chart, so that a baseline and a Maxwell run
//     compare at a glance.
//
// A figure whose source is a model says so: its axis title reads
// "estimated" and its caption names the model.
//
// The figures are built as gonum plots (ThermalFigure, AgentsFigure,
// EfficiencyFigure) before they are rendered, so that callers and tests can
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
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Figure is one chart: panels stacked top to bottom sharing the time (or
// energy) axis, and a caption below them.
type Figure struct {
	// Name is the file name the figure is written to, e.g. "run1-thermal.png".
	Name   string
	Panels []*plot.Plot
	// Caption is printed under the panels, one line per element: where the
	// figures come from, and which models made the estimated ones.
	Caption []string
}

// Default size of a rendered figure.
const (
	DefaultWidth       = 10 * vg.Inch
	DefaultPanelHeight = 3 * vg.Inch
	dpi                = 96
)

var captionStyle = text.Style{
	Color:   color.Black,
	Font:    font.From(plot.DefaultFont, 10),
	XAlign:  draw.XLeft,
	YAlign:  draw.YTop,
	Handler: plot.DefaultTextHandler,
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
	lineH := captionStyle.Height("M") * 1.3
	capH := lineH*vg.Length(len(f.Caption)) + vg.Points(8)
	for i, line := range f.Caption {
		c.FillText(captionStyle, vg.Point{X: c.Min.X + vg.Points(8), Y: c.Min.Y + capH - vg.Points(4) - lineH*vg.Length(i)}, line)
	}
	area := c
	area.Min.Y += capH
	tiles := draw.Tiles{Rows: len(f.Panels), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4),
		PadLeft: vg.Points(4), PadRight: vg.Points(8), PadY: vg.Points(8)}
	grid := make([][]*plot.Plot, len(f.Panels))
	for i, p := range f.Panels {
		grid[i] = []*plot.Plot{p}
	}
	for i, row := range plot.Align(grid, tiles, area) {
		f.Panels[i].Draw(row[0])
	}
	return nil
}

// Size returns the default size of f: DefaultWidth wide, DefaultPanelHeight
// per panel plus room for the caption.
func (f *Figure) Size() (w, h vg.Length) {
	return DefaultWidth, DefaultPanelHeight*vg.Length(len(f.Panels)) + vg.Points(16)*vg.Length(len(f.Caption)+1)
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
