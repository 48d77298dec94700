package plot

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
)

// Tick targets: at most this many intervals between labelled ticks.
const (
	timeTicks  = 8 // the wide time (or energy) axis
	valueTicks = 5 // a panel's value axis
)

// niceStep returns the smallest round step (1, 2 or 5 × 10^k) that cuts
// span into at most n intervals.
func niceStep(span float64, n int) float64 {
	if !(span > 0) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(max(n, 1))
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw*(1-1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// decimals returns how many decimals write multiples of step exactly (a
// step of 0.5 takes one, of 20 none).
func decimals(step float64) int {
	return max(0, int(-math.Floor(math.Log10(step)+1e-9)))
}

// niceTicks is an axis's plot.Ticker: labelled ticks at the multiples of a
// round step within the range, written as value/scale with as many
// decimals as the step needs, so that no two labels are alike; unlabelled
// minor ticks between them.
type niceTicks struct {
	n     int     // at most n intervals between labelled ticks
	scale float64 // labels show value/scale: 1, or 1e3 for "kJ" ...
}

// Ticks implements plot.Ticker.
func (t niceTicks) Ticks(min, max float64) []plot.Tick {
	step := niceStep(max-min, t.n)
	scale := t.scale
	if scale <= 0 {
		scale = 1
	}
	prec := decimals(step / scale)
	var ticks []plot.Tick
	lo, hi := math.Ceil(min/step-1e-9), math.Floor(max/step+1e-9)
	for k := lo; k <= hi; k++ {
		v := k * step
		label := strconv.FormatFloat(v/scale, 'f', prec, 64)
		if strings.Trim(label, "-0.") == "" {
			label = strings.TrimPrefix(label, "-") // no "-0"
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	// Minor ticks: fifths of a step of 1 or 5, quarters of a step of 2.
	parts := 5.0
	if m := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9)); math.Abs(m-2) < 1e-6 {
		parts = 4
	}
	minor := step / parts
	for k := math.Ceil(min/minor - 1e-9); k <= math.Floor(max/minor+1e-9); k++ {
		if math.Mod(k, parts) != 0 {
			ticks = append(ticks, plot.Tick{Value: k * minor})
		}
	}
	return ticks
}

// axisUnit says how an axis writes its values. A Symbol ("W", "J of
// credits") takes an SI prefix where the values are large (kJ); a Fixed one
// (°C, %) never does; with no Symbol the values are a count of Count
// ("prime"), large ones in thousands, millions, billions.
type axisUnit struct {
	Symbol string
	Fixed  bool
	Count  string
}

// siPrefixes are the scales of large values: an SI prefix for a unit, a
// word for a count.
var siPrefixes = []struct {
	scale        float64
	prefix, word string
}{{1e12, "T", "trillions"}, {1e9, "G", "billions"}, {1e6, "M", "millions"}, {1e3, "k", "thousands"}}

// axisScale returns the scale of an axis whose labelled ticks are step
// apart: the largest power of a thousand not above the step, so that the
// labels are whole numbers written with few digits; and how the unit reads
// at that scale.
func (u axisUnit) axisScale(step float64) (float64, string) {
	if !u.Fixed {
		for _, p := range siPrefixes {
			if step >= p.scale {
				if u.Symbol != "" {
					return p.scale, p.prefix + u.Symbol
				}
				return p.scale, u.Count + ", in " + p.word
			}
		}
	}
	if u.Symbol != "" {
		if !u.Fixed {
			// Small values of a unit: milli, micro (1 mJ of credits is 1000
			// credits).
			for _, p := range []struct {
				scale  float64
				prefix string
			}{{1e-3, "m"}, {1e-6, "µ"}} {
				if step < 0.01 && step >= p.scale {
					return p.scale, p.prefix + u.Symbol
				}
			}
		}
		return 1, u.Symbol
	}
	return 1, u.Count
}

// axisStyle is what finishAxis does to an axis.
type axisStyle struct {
	name  string
	unit  axisUnit
	notes []string // after the unit in the label: "estimated", "1 credit = 1 µJ"
	n     int      // tick target; 0: valueTicks
	// loose widens the range to the labelled ticks around the data, so
	// that both ends of the axis are labelled.
	loose bool
	// zero keeps 0 in the range (quantities whose size matters: power,
	// energy, money).
	zero bool
}

// finishAxis sets a's ticks and label once all its data is in: a range
// that is never a point, round ticks with distinct labels, and the label
// "name (unit, notes...)" with the unit scaled as the ticks are.
func finishAxis(a *plot.Axis, s axisStyle) {
	n := s.n
	if n == 0 {
		n = valueTicks
	}
	if math.IsInf(a.Min, 0) || math.IsInf(a.Max, 0) || math.IsNaN(a.Min) || math.IsNaN(a.Max) {
		a.Min, a.Max = 0, 1
	}
	if s.zero {
		a.Min, a.Max = math.Min(a.Min, 0), math.Max(a.Max, 0)
	}
	// A flat series still gets an axis a person can read: at least 2 % of
	// its magnitude, or 1 around zero.
	if span, mag := a.Max-a.Min, math.Max(math.Abs(a.Min), math.Abs(a.Max)); span < 0.02*mag || span == 0 {
		pad := math.Max(0.01*mag, 0.5)
		if mag == 0 {
			pad = 1
		}
		mid := (a.Min + a.Max) / 2
		a.Min, a.Max = mid-pad, mid+pad
		if s.zero && mid >= 0 && a.Min < 0 {
			a.Min, a.Max = 0, a.Max-a.Min
		}
	}
	step := niceStep(a.Max-a.Min, n)
	if s.loose {
		a.Min = math.Floor(a.Min/step+1e-9) * step
		a.Max = math.Ceil(a.Max/step-1e-9) * step
		// Widening may allow a larger step; the ticks recompute it.
		step = niceStep(a.Max-a.Min, n)
	}
	scale, unit := s.unit.axisScale(step)
	a.Tick.Marker = niceTicks{n: n, scale: scale}
	inner := append([]string{unit}, s.notes...)
	if inner[0] == "" {
		inner = inner[1:]
	}
	a.Label.Text = s.name
	if len(inner) > 0 {
		a.Label.Text += " (" + strings.Join(inner, ", ") + ")"
	}
}

// human writes a count or rate for people: 3 significant digits, large
// values in millions, billions ("4.22 million"), never "4.2e+06".
func human(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprint(v)
	}
	if abs := math.Abs(v); abs >= 1e6 {
		for _, p := range siPrefixes {
			if abs >= p.scale {
				return sig3(v/p.scale) + " " + strings.TrimSuffix(p.word, "s")
			}
		}
	}
	return sig3(v)
}

// sig3 writes v with 3 significant digits (more for whole numbers of four
// to six digits), without an exponent or trailing zeros.
func sig3(v float64) string {
	if v == 0 {
		return "0"
	}
	prec := max(0, 2-int(math.Floor(math.Log10(math.Abs(v)))))
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
