package control

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/model"
	"strconv"
)

// identified is what a price-step experiment learns about a host and its
// agents.
type identified struct {
	loop FOPDT   // multiplier → °C
	knee float64 // the agents' knee, from two steady states
}

// identifyPriceLoop runs a multiplier step experiment on a host with full
// desire, 1.75 → 2.25, above the agents' valuation of 1.25 (so within the
// range where demand follows price), and fits the loop plant multiplier →
// °C. It also holds the price at cost (1) until steady, and from that
// steady state and the one at 1.75 estimates the agents' knee.
func identifyPriceLoop(t *testing.T, tw model.TwinParams, delay int) identified {
	t.Helper()
	h := newHost(t, tw, delay)
	h.desire = 1
	const m1, m2 = 1.75, 2.25
	h.settle(1)
	full := h.temperature()
	h.settle(m1)
	steady := h.temperature()
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
	knee, err := Knee(fit, 1, m1, full, steady)
	if err != nil {
		t.Fatalf("identifying the knee: %v", err)
	}
	return identified{fit, knee}
}

type loopResult struct {
	overshoot float64       // K above the setpoint, at most
	settled   time.Duration // from the demand step until |T − sp| stays ≤ band
	tailPP    float64       // peak-to-peak temperature over the last quarter
	crossRate float64       // K/s at the first upward setpoint crossing
	final     float64       // multiplier at the end
}

// runLoadStep starts the host idle and cold, steps the agents' desire from
// 0 to 1 at t = 0, and runs the price loop for length.
func runLoadStep(t *testing.T, tw model.TwinParams, delay int, cfg Config, band float64, length time.Duration) loopResult {
	t.Helper()
	h := newHost(t, tw, delay)
	pid := mustNew(t, cfg)
	sp := cfg.Setpoint
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
	r.final = pid.Output()
	return r
}

// TestClosedLoop identifies the whole price loop (agents' reaction plus the
// thermal twin) from a multiplier step, tunes it, and checks the response
// to agents going from idle to full demand with a setpoint of 55 °C:
// overshoot above the setpoint under 1 K, settling within ±0.5 K inside 5τ,
// and no sustained oscillation (under 0.01 K peak to peak over the last
// quarter of 20τ). It runs on model's default twin (τ = 2 s) and on a slow
// one (τ = 20 s), with agents that react after 2 and 5 ticks of 100 ms, and
// two controllers: PI tuned by SIMC acting on the measurement, and PI tuned
// by PredictiveGains acting on the prediction (Predictor).
//
// SIMC PI on the default twin cannot meet the overshoot bound: the host
// crosses the setpoint heating at r ≈ 4 K/s and the controller acts only
// after the crossing, so the temperature rises by at least r·θ before any
// agent reacts, and by about as much again while the price climbs through
// the agents' valuation, where demand does not yet respond. For that row
// the test asserts the old budget, overshoot under 3·r·θ, and logs the
// numbers for comparison. Run
//
//	go test -v -run ClosedLoop ./internal/control
//
// to print the table that docs/CONTROL.md reproduces.
func TestClosedLoop(t *testing.T) {
	const sp = 55
	twins := []struct {
		name string
		p    model.TwinParams
	}{
		{"default", defaultTwin},
		{"slow", slowTwin},
	}
	t.Logf("%-8s %-5s %-10s %-30s %-5s %-9s %-9s %-9s %s",
		"twin", "delay", "controller", "identified plant", "knee", "overshoot", "settled", "tail p-p", "final m")
	ids := map[int]identified{}
	for _, tw := range twins {
		tau := tw.p.Tau()
		for _, delay := range []int{2, 5} {
			id := identifyPriceLoop(t, tw.p, delay)
			checkIdentified(t, tw.p, delay, id)
			if tw.name == "default" {
				ids[delay] = id
			}
			pi, err := PriceGains(id.loop, 0)
			if err != nil {
				t.Fatal(err)
			}
			pg, pr, err := PredictiveGains(id.loop, tick, 0)
			if err != nil {
				t.Fatal(err)
			}
			pr.Knee = id.knee
			for _, c := range []struct {
				name string
				cfg  Config
			}{
				{"SIMC PI", Config{Gains: pi}},
				{"predictive", Config{Gains: pg, Predictor: pr}},
			} {
				cfg := c.cfg
				cfg.OutMin, cfg.OutMax, cfg.Setpoint, cfg.Critical = 1, 10, sp, 90
				r := runLoadStep(t, tw.p, delay, cfg, 0.5, 20*tau)
				plant := fmt.Sprintf("K=%.3f τ=%.3gs θ=%.3gs", id.loop.K, id.loop.Tau.Seconds(), id.loop.Theta.Seconds())
				t.Logf("%-8s %-5d %-10s %-30s %-5.3f %-9s %-9s %-9.2g %.3f",
					tw.name, delay, c.name, plant, id.knee,
					fmtK(r.overshoot), r.settled, r.tailPP, r.final)
				if r.settled > 5*tau {
					t.Errorf("%s twin, delay %d, %s: settled within ±0.5 K only after %v, want within 5τ = %v", tw.name, delay, c.name, r.settled, 5*tau)
				}
				if r.tailPP > 0.01 {
					t.Errorf("%s twin, delay %d, %s: temperature still swings %.3f K peak to peak over the last quarter", tw.name, delay, c.name, r.tailPP)
				}
				if tw.name == "default" && c.name == "SIMC PI" {
					if floor := r.crossRate * id.loop.Theta.Seconds(); r.overshoot > 3*floor {
						t.Errorf("default twin, delay %d, SIMC PI: overshoot %.3f K, more than 3·r·θ = %.3f K", delay, r.overshoot, 3*floor)
					}
					continue
				}
				if r.overshoot >= 1 {
					t.Errorf("%s twin, delay %d, %s: overshoot %.3f K, want < 1 K", tw.name, delay, c.name, r.overshoot)
				}
			}
		}
	}
	// Not asserted, for the record: the predictor's weakness is a wrong
	// dead time. Agents one tick slower or faster than identified.
	for _, delay := range []int{2, 5} {
		id := ids[delay]
		pg, pr, err := PredictiveGains(id.loop, tick, 0)
		if err != nil {
			t.Fatal(err)
		}
		pr.Knee = id.knee
		cfg := Config{Gains: pg, Predictor: pr, OutMin: 1, OutMax: 10, Setpoint: sp, Critical: 90}
		for _, actual := range []int{delay - 1, delay + 1} {
			r := runLoadStep(t, defaultTwin, actual, cfg, 0.5, 20*defaultTwin.Tau())
			t.Logf("mismatch: default twin, predictive, identified %d ticks, agents react after %d: overshoot %s, settled %v, tail p-p %.2g K",
				delay, actual, fmtK(r.overshoot), r.settled, r.tailPP)
		}
	}
}

func fmtK(k float64) string { return strconv.FormatFloat(k, 'f', 3, 64) + " K" }

// checkIdentified compares an identified loop with the truth: gain
// −R·(max−idle)/width per unit multiplier, τ = R·C, θ ≈ the agents' delay,
// knee = the agents' valuation.
func checkIdentified(t *testing.T, tw model.TwinParams, delay int, id identified) {
	t.Helper()
	idle, full := defaultSlice(t)
	wantK := -tw.R * (full - idle) / 2
	tau := tw.Tau()
	if relErr(id.loop.K, wantK) > 0.05 || relErr(id.loop.Tau.Seconds(), tau.Seconds()) > 0.10 {
		t.Errorf("delay %d: identified %+v, want K %.3f, τ %v", delay, id.loop, wantK, tau)
	}
	if d := (id.loop.Theta - time.Duration(delay)*tick).Abs(); d > tick {
		t.Errorf("delay %d: identified θ = %v, want about %v", delay, id.loop.Theta, time.Duration(delay)*tick)
	}
	if math.Abs(id.knee-1.25) > 0.02 {
		t.Errorf("delay %d: identified knee %.3f, want the agents' valuation 1.25", delay, id.knee)
	}
}
