package plot

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Bar is one policy's figure in a study: the median of its runs and their
// spread.
type Bar struct {
	Label            string
	Median, Min, Max float64
}

// StudyFigure draws one scenario of a study: each policy's useful work per
// joule as a bar at its median, with whiskers from the lowest run to the
// highest, and the bound, if known, as a dashed line. estimated says the
// energy is a model's (the axis says so; caption names the model).
func StudyFigure(name, title, unit string, bars []Bar, bound *float64, estimated bool, caption []string) (*Figure, error) {
	if len(bars) == 0 {
		return nil, fmt.Errorf("plot: study %s: no policy to draw", name)
	}
	panel := newDataPanel()
	p := panel.Plot
	medians := make(plotter.Values, len(bars))
	names := make([]string, len(bars))
	for i, b := range bars {
		medians[i], names[i] = b.Median, b.Label
	}
	bc, err := plotter.NewBarChart(medians, vg.Points(28))
	if err != nil {
		return nil, fmt.Errorf("plot: study %s: %w", name, err)
	}
	bc.Color = color.RGBA{R: 0x4c, G: 0x72, B: 0xb0, A: 0xff}
	bc.LineStyle.Width = 0
	p.Add(bc)
	panel.Legend = append(panel.Legend, LegendEntry{Label: "median of the runs", Thumb: bc})
	panel.Series = append(panel.Series, Series{Label: "median of the runs"})
	for i, m := range medians {
		panel.Series[0].XYs = append(panel.Series[0].XYs, plotter.XY{X: float64(i), Y: m})
	}
	spread := make(plotter.XYs, 0, 2*len(bars))
	for i, b := range bars {
		lo, hi := b.Min, b.Max
		if hi <= lo {
			continue
		}
		w, err := plotter.NewLine(plotter.XYs{{X: float64(i), Y: lo}, {X: float64(i), Y: hi}})
		if err != nil {
			return nil, err
		}
		w.LineStyle.Width = vg.Points(1.5)
		p.Add(w)
		spread = append(spread, plotter.XY{X: float64(i), Y: lo}, plotter.XY{X: float64(i), Y: hi})
	}
	if len(spread) > 0 {
		caps, err := plotter.NewScatter(spread)
		if err != nil {
			return nil, err
		}
		caps.GlyphStyle.Shape = draw.BoxGlyph{}
		caps.GlyphStyle.Radius = vg.Points(1.5)
		p.Add(caps)
		panel.Legend = append(panel.Legend, LegendEntry{Label: "lowest to highest run",
			Thumb: &plotter.Line{LineStyle: draw.LineStyle{Color: color.Black, Width: vg.Points(1.5)}}})
		panel.Series = append(panel.Series, Series{Label: "lowest to highest run", XYs: spread})
	}
	if bound != nil && *bound > 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: *bound}, {X: float64(len(bars)) - 0.5, Y: *bound}})
		if err != nil {
			return nil, err
		}
		l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		l.LineStyle.Color = color.RGBA{R: 0xc4, G: 0x4e, B: 0x52, A: 0xff}
		l.LineStyle.Width = vg.Points(1.2)
		p.Add(l)
		panel.Legend = append(panel.Legend, LegendEntry{Label: "bound on this host", Thumb: l})
		panel.Refs = append(panel.Refs, Ref{Label: "bound on this host", Value: *bound})
	}
	p.NominalX(names...)
	var notes []string
	if estimated {
		notes = []string{"estimated"}
	}
	finishAxis(&p.Y, axisStyle{name: unit + "/J", unit: axisUnit{Count: "useful work"}, notes: notes, loose: true, zero: true})
	// A taller panel than a time series': the axis label is long.
	panel.Weight = 1.3
	return &Figure{Name: name, Title: title, Panels: []*Panel{panel}, Caption: caption}, nil
}
