package control

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/model"
	"github.com/maxwellhq/maxwell/internal/units"
)

// TestPredictorExactOnTwin heats the default twin at constant power and
// checks that the prediction equals the twin's own temperature one horizon
// later: for a first-order host under a power held constant the predictor
// is exact, however the horizon compares with the tick.
func TestPredictorExactOnTwin(t *testing.T) {
	for _, horizon := range []time.Duration{tick, 500 * time.Millisecond, 1234 * time.Millisecond} {
		tw, err := model.NewTwin(defaultTwin)
		if err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig()
		cfg.Predictor = Predictor{Horizon: horizon, Tau: defaultTwin.Tau(), Gain: -14.75}
		p := mustNew(t, cfg)
		const watts = 15
		ahead, err := model.NewTwin(defaultTwin)
		if err != nil {
			t.Fatal(err)
		}
		for k := range 30 {
			y := tw.Temperature()
			mustStep(t, p, tick, y)
			if k > 0 { // the first Step has no heating rate
				ahead.Reset(y)
				want := ahead.Step(horizon, watts)
				if got := p.Predicted(); !near(float64(got), float64(want), 1e-9) {
					t.Errorf("horizon %v, tick %d: predicted %.9f °C, the twin reaches %.9f °C", horizon, k, float64(got), float64(want))
				}
			}
			tw.Step(tick, watts)
		}
	}
}

// TestPredictorInFlight checks the Smith term: an output change the agents
// have not yet reacted to moves the prediction by Gain·Δu·(1 − e^(−a/τ))
// after a time a, counting only the part above the knee, and drops out once
// the agents have reacted (the change then shows in the heating rate).
func TestPredictorInFlight(t *testing.T) {
	const gain, knee = -1.0, 1.25
	tau := 2 * time.Second
	cfg := baseConfig() // setpoint 60 °C
	// Integral action alone, saturating at once: one output change, from
	// 1 to 3.5, then none while the temperature holds above the setpoint.
	cfg.Gains = Gains{Ki: 10}
	cfg.OutMax = 3.5
	cfg.Predictor = Predictor{Horizon: 3 * tick, Tau: tau, Gain: gain, Knee: knee}
	p := mustNew(t, cfg)
	if out := mustStep(t, p, tick, 62.5); out != 3.5 {
		t.Fatalf("output %v, want 3.5", out)
	}
	for k := 1; k <= 5; k++ {
		if out := mustStep(t, p, tick, 62.5); out != 3.5 {
			t.Fatalf("tick %d: output %v, want it held at 3.5", k, out)
		}
		a := time.Duration(k) * tick
		want := 0.0
		if a <= cfg.Predictor.Horizon {
			want = gain * (3.5 - knee) * -math.Expm1(-a.Seconds()/tau.Seconds())
		}
		if got := float64(p.Predicted()) - 62.5; !near(got, want, 1e-12) {
			t.Errorf("after %v: in-flight term %v, want %v", a, got, want)
		}
	}
}

// TestSetPredictorBumpless switches the predictor on and off in the middle
// of a heating ramp: the output must not move at the switch.
func TestSetPredictorBumpless(t *testing.T) {
	cfg := baseConfig()
	cfg.Gains = Gains{Kp: 0.5, Ki: 0.1}
	p := mustNew(t, cfg)
	pr := Predictor{Horizon: 500 * time.Millisecond, Tau: 2 * time.Second, Gain: -14.75, Knee: 1.25}
	y := units.Celsius(58)
	for range 30 {
		y += 0.2
		mustStep(t, p, tick, y)
	}
	for i, next := range []Predictor{pr, {}, pr} {
		before, cvBefore := p.Output(), p.Predicted()
		if err := p.SetPredictor(next); err != nil {
			t.Fatal(err)
		}
		if got := p.Output(); got != before {
			t.Errorf("switch %d: output moved %v → %v", i, before, got)
		}
		if next.enabled() && p.Predicted() <= cvBefore {
			t.Errorf("switch %d: predicting on a 2 K/s ramp, ŷ %v, not above the measurement %v", i, p.Predicted(), cvBefore)
		}
		// One more tick on the same ramp: the output moves by the ramp
		// and the integral, not by a jump.
		y += 0.2
		got := mustStep(t, p, tick, y)
		if d := math.Abs(got - before); d > 0.5*0.2+0.1*5*0.1+0.5*2*0.5 {
			t.Errorf("switch %d: output %v → %v on the next tick", i, before, got)
		}
	}
	if err := p.SetPredictor(Predictor{Horizon: time.Second}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("SetPredictor without τ: err = %v, want ErrInvalidConfig", err)
	}
}

func TestPredictiveGains(t *testing.T) {
	m := FOPDT{K: -14.75, Tau: 2 * time.Second, Theta: 500 * time.Millisecond}
	g, pr, err := PredictiveGains(m, tick, 0)
	if err != nil {
		t.Fatal(err)
	}
	// τc = one tick: Kc = 2/(14.75·0.1), τI = min(2, 0.4) s.
	if wantKp := 2 / (14.75 * 0.1); !near(g.Kp, wantKp, 1e-9) || !near(g.Ki, wantKp/0.4, 1e-9) {
		t.Errorf("gains %+v, want Kp %v Ki %v", g, wantKp, wantKp/0.4)
	}
	if pr != (Predictor{Horizon: m.Theta, Tau: m.Tau, Gain: m.K}) {
		t.Errorf("predictor %+v", pr)
	}
	for _, tt := range []struct {
		name     string
		m        FOPDT
		interval time.Duration
		want     error
	}{
		{"positive gain", FOPDT{K: 2, Tau: time.Second}, tick, ErrBadModel},
		{"zero τ", FOPDT{K: -2}, tick, ErrBadModel},
		{"zero interval", m, 0, ErrInvalidConfig},
	} {
		if _, _, err := PredictiveGains(tt.m, tt.interval, 0); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestKnee(t *testing.T) {
	m := FOPDT{K: -14.75, Tau: 2 * time.Second, Theta: 200 * time.Millisecond}
	tests := []struct {
		name         string
		at           float64
		full, steady units.Celsius
		want         float64
		err          error
	}{
		{"valuation 1.25", 1.75, 63, 63 - 14.75*0.5, 1.25, nil},
		{"demand follows every price", 1.75, 63, 63 - 14.75*0.75, 0, nil},
		{"no response at the operating point", 1.75, 63, 63, 1.75, nil},
		{"operating point at the base", 1, 63, 60, 0, ErrInvalidConfig},
		{"NaN", 1.75, units.Celsius(math.NaN()), 60, 0, ErrInvalidConfig},
	}
	for _, tt := range tests {
		got, err := Knee(m, 1, tt.at, tt.full, tt.steady)
		if !errors.Is(err, tt.err) || !near(got, tt.want, 1e-9) {
			t.Errorf("%s: Knee = %v, %v; want %v, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
	if _, err := Knee(FOPDT{}, 1, 1.75, 63, 60); !errors.Is(err, ErrBadModel) {
		t.Errorf("zero model: err = %v, want ErrBadModel", err)
	}
}
