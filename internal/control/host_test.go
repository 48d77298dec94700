package control

import (
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/model"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Twins the loop tests run against. defaultTwin is model's default
// (τ = 2 s, the package alone); slowTwin has ten times the heat capacity
// (τ = 20 s, package plus heat sink) and the same steady states.
var (
	defaultTwin = model.DefaultTwinParams()
	slowTwin    = model.TwinParams{Ambient: model.DefaultAmbient, R: model.DefaultThermalResistance, C: 10 * model.DefaultHeatCapacity}
)

// host simulates a Maxwell host on the model's thermal twin: power is
// idle + (max − idle)·desire·demand(price), plus an uncontrollable extra
// load. Agents want to run (desire) and run at full demand while the price
// multiplier is at or below their valuation; above it demand falls in
// proportion to the excess, reaching zero at valuation + width. They react
// to the multiplier with a delay of a whole number of ticks.
type host struct {
	twin      *model.Twin
	idle, max float64 // W
	valuation float64
	width     float64
	delay     int
	desire    float64
	extra     float64 // W
	seen      []float64
}

// newHost returns a host at idle steady state with no desire, agents valuing
// CPU time at a multiplier of 1.25 and leaving entirely at 3.25. Its power
// is model's default for a 2-CPU slice of the reference server
// (model.DefaultLinearPower(2): 3.38 W idle, 15.19 W at full load).
func newHost(t *testing.T, p model.TwinParams, delay int) *host {
	t.Helper()
	tw, err := model.NewTwin(p)
	if err != nil {
		t.Fatal(err)
	}
	idle, full := defaultSlice(t)
	h := &host{twin: tw, idle: idle, max: full, valuation: 1.25, width: 2, delay: delay}
	tw.Reset(tw.SteadyState(units.Power(h.idle)))
	return h
}

// defaultSlice returns the idle and full-load power, in W, of model's
// default power model for a 2-CPU slice (model.DefaultLinearPower(2)).
func defaultSlice(t testing.TB) (idle, full float64) {
	t.Helper()
	lp, err := model.DefaultLinearPower(2)
	if err != nil {
		t.Fatal(err)
	}
	return float64(lp.Idle), float64(lp.Max)
}

func (h *host) demand(m float64) float64 {
	if m <= h.valuation {
		return 1
	}
	return max(0, 1-(m-h.valuation)/h.width)
}

func (h *host) power(m float64) units.Power {
	return units.Power(h.idle + (h.max-h.idle)*h.desire*h.demand(m) + h.extra)
}

func (h *host) temperature() units.Celsius { return h.twin.Temperature() }

// step publishes multiplier m, advances the host by dt under the power
// the agents draw at the multiplier they see (published delay ticks ago),
// and returns the new temperature.
func (h *host) step(dt time.Duration, m float64) units.Celsius {
	if len(h.seen) == 0 {
		// Before any price was published agents saw this one.
		for range h.delay {
			h.seen = append(h.seen, m)
		}
	}
	h.seen = append(h.seen, m)
	seen := h.seen[0]
	h.seen = h.seen[1:]
	return h.twin.Step(dt, h.power(seen))
}

// settle holds multiplier m until the host is at steady state.
func (h *host) settle(m float64) {
	h.seen = nil
	h.twin.Reset(h.twin.SteadyState(h.power(m)))
}
