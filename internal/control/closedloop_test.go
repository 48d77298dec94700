package control

import (
	"math"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/model"
	"github.com/maxwellhq/maxwell/internal/units"
)

// identifyPriceLoop runs a multiplier step experiment on a host with full
// desire, 1.5 → 2.0 above the agents' valuation of 1.25 (so within the range
// where demand follows price), and fits the loop plant multiplier → °C.
func identifyPriceLoop(t *testing.T, tw model.TwinParams, delay int) FOPDT {
	t.Helper()
	h := newHost(t, tw, delay)
	h.desire = 1
	const m1, m2 = 1.75, 2.25
	h.settle(m1)
	stepAt := 5 * time.Second
	length := stepAt + 8*tw.Tau()
	var s []Sample
	y := h.temperature()
	for k := 0; time.Duration(k)*tick <= length; k++ {
		now := time.Duration(k) * tick
		m := m1
		if now >= stepAt {
			m = m2
		}
		s = append(s, Sample{T: now, Input: m, Output: float64(y)})
		y = h.step(tick, m)
	}
	fit, err := FitFOPDT(s, stepAt, m2-m1)
	if err != nil {
		t.Fatalf("identifying the price loop: %v", err)
	}
	return fit
}

type loopResult struct {
	overshoot float64       // K above the setpoint, at most
	settled   time.Duration // from the demand step until |T − sp| stays ≤ band
	tailPP    float64       // peak-to-peak temperature over the last quarter
	crossRate float64       // K/s at the first upward setpoint crossing
}

// runLoadStep starts the host idle and cold, steps the agents' desire from
// 0 to 1 at t = 0, and runs the price loop for length.
func runLoadStep(t *testing.T, tw model.TwinParams, delay int, g Gains, sp units.Celsius, band float64, length time.Duration) loopResult {
	t.Helper()
	h := newHost(t, tw, delay)
	pid := mustNew(t, Config{Gains: g, OutMin: 1, OutMax: 10, Setpoint: sp, Critical: 90})
	h.desire = 1
	var r loopResult
	y := h.temperature()
	n := int(length / tick)
	lo, hi := math.Inf(1), math.Inf(-1)
	for k := range n {
		m := mustStep(t, pid, tick, y)
		next := h.step(tick, m)
		if y < sp && next >= sp && r.crossRate == 0 {
			r.crossRate = float64(next-y) / tick.Seconds()
		}
		y = next
		r.overshoot = max(r.overshoot, float64(y-sp))
		if math.Abs(float64(y-sp)) > band {
			r.settled = time.Duration(k+1) * tick
		}
		if k >= 3*n/4 {
			lo, hi = min(lo, float64(y)), max(hi, float64(y))
		}
	}
	r.tailPP = hi - lo
	return r
}

// TestClosedLoopOnTwin identifies the whole price loop (agents' reaction
// plus the thermal twin) from a multiplier step, tunes it by SIMC with the
// default τc = θ, and checks the response to agents going from idle to full
// demand: overshoot, settling within ±0.5 K inside 5τ, and no sustained
// oscillation.
//
// The twin here is slowTwin (τ = 20 s). On model's default twin (τ = 2 s)
// the host heats through the setpoint at about 4 K/s, so an overshoot under
// 1 K is out of reach of any feedback that acts after the crossing once
// the agents take more than about 0.25 s to react; see
// TestClosedLoopFastTwin.
func TestClosedLoopOnTwin(t *testing.T) {
	const sp = 55
	for _, delay := range []int{2, 5} {
		fit := identifyPriceLoop(t, slowTwin, delay)
		g, err := PriceGains(fit, 0)
		if err != nil {
			t.Fatal(err)
		}
		tau := slowTwin.Tau()
		r := runLoadStep(t, slowTwin, delay, g, sp, 0.5, 10*tau)
		t.Logf("delay %d ticks: plant %+v, gains Kp=%.3f Ki=%.3f; overshoot %.3f K, settled ±0.5 K after %v, tail p-p %.2g K, crossing at %.2f K/s",
			delay, fit, g.Kp, g.Ki, r.overshoot, r.settled, r.tailPP, r.crossRate)
		// The identified plant: gain −R·(max−idle)/width per unit
		// multiplier, τ = R·C, θ ≈ the agents' delay.
		wantK := -slowTwin.R * (maxW - idleW) / 2
		if relErr(fit.K, wantK) > 0.05 || relErr(fit.Tau.Seconds(), tau.Seconds()) > 0.10 {
			t.Errorf("delay %d: identified %+v, want K %.3f, τ %v", delay, fit, wantK, tau)
		}
		if d := (fit.Theta - time.Duration(delay)*tick).Abs(); d > tick {
			t.Errorf("delay %d: identified θ = %v, want about %v", delay, fit.Theta, time.Duration(delay)*tick)
		}
		if r.overshoot >= 1 {
			t.Errorf("delay %d: overshoot %.3f K, want < 1 K", delay, r.overshoot)
		}
		if r.settled > 5*tau {
			t.Errorf("delay %d: settled within ±0.5 K only after %v, want within 5τ = %v", delay, r.settled, 5*tau)
		}
		if r.tailPP > 0.01 {
			t.Errorf("delay %d: temperature still swings %.3f K peak to peak over the last quarter", delay, r.tailPP)
		}
	}
}

// TestClosedLoopFastTwin runs the same experiment on model's default twin
// (τ = 2 s). Here the requirement of < 1 K overshoot conflicts with physics:
// at the setpoint the host heats at r ≈ (15.2 W − 12 W)/0.8 J/K = 4 K/s, so
// a controller that responds only once the temperature has crossed the
// setpoint lets it rise at least r·θ before any agent reacts: 0.8 K at a
// 2-tick delay, 2 K at 5 ticks. On top of that the proportional term,
// whose SIMC gain scales as 1/(2θ), must carry the price from 1 through the
// agents' valuation (1.25), where demand does not yet respond, up to the
// multiplier that holds the setpoint (about 1.8): the temperature rises by
// up to another 2·r·θ meanwhile. The test asserts that budget (overshoot
// under 3·r·θ; SIMC gives about 2.5·r·θ at 2 ticks and 1.9·r·θ at 5),
// settling within ±0.5 K inside 5τ, and no sustained oscillation.
func TestClosedLoopFastTwin(t *testing.T) {
	const sp = 55
	for _, delay := range []int{2, 5} {
		fit := identifyPriceLoop(t, defaultTwin, delay)
		g, err := PriceGains(fit, 0)
		if err != nil {
			t.Fatal(err)
		}
		tau := defaultTwin.Tau()
		r := runLoadStep(t, defaultTwin, delay, g, sp, 0.5, 20*tau)
		floor := r.crossRate * fit.Theta.Seconds()
		t.Logf("delay %d ticks: plant %+v, gains Kp=%.3f Ki=%.3f; overshoot %.3f K (r·θ = %.2f K), settled ±0.5 K after %v, tail p-p %.2g K",
			delay, fit, g.Kp, g.Ki, r.overshoot, floor, r.settled, r.tailPP)
		if r.overshoot > 3*floor {
			t.Errorf("delay %d: overshoot %.3f K, more than 3·r·θ = %.3f K", delay, r.overshoot, 3*floor)
		}
		if r.settled > 5*tau {
			t.Errorf("delay %d: settled within ±0.5 K only after %v, want within 5τ = %v", delay, r.settled, 5*tau)
		}
		if r.tailPP > 0.01 {
			t.Errorf("delay %d: temperature still swings %.3f K peak to peak over the last quarter", delay, r.tailPP)
		}
	}
}
