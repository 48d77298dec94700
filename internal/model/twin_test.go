package model

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

func mustTwin(t *testing.T, p TwinParams) *Twin {
	t.Helper()
	tw, err := NewTwin(p)
	if err != nil {
		t.Fatalf("NewTwin(%+v): %v", p, err)
	}
	return tw
}

func closeTo(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol
}

func TestTwinParamsValidate(t *testing.T) {
	tests := []struct {
		name string
		p    TwinParams
		ok   bool
	}{
		{"default", DefaultTwinParams(), true},
		{"cold ambient", TwinParams{Ambient: -40, R: 1, C: 1}, true},
		{"zero R", TwinParams{Ambient: 25, R: 0, C: 1}, false},
		{"negative R", TwinParams{Ambient: 25, R: -1, C: 1}, false},
		{"NaN R", TwinParams{Ambient: 25, R: math.NaN(), C: 1}, false},
		{"infinite R", TwinParams{Ambient: 25, R: math.Inf(1), C: 1}, false},
		{"zero C", TwinParams{Ambient: 25, R: 1, C: 0}, false},
		{"negative C", TwinParams{Ambient: 25, R: 1, C: -2}, false},
		{"NaN C", TwinParams{Ambient: 25, R: 1, C: math.NaN()}, false},
		{"infinite C", TwinParams{Ambient: 25, R: 1, C: math.Inf(1)}, false},
		{"tau overflows Duration", TwinParams{Ambient: 25, R: 1e10, C: 1e10}, false},
		{"tau underflows to zero", TwinParams{Ambient: 25, R: 1e-200, C: 1e-200}, false},
		{"NaN ambient", TwinParams{Ambient: units.Celsius(math.NaN()), R: 1, C: 1}, false},
		{"infinite ambient", TwinParams{Ambient: units.Celsius(math.Inf(1)), R: 1, C: 1}, false},
		{"below absolute zero", TwinParams{Ambient: -300, R: 1, C: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tt.ok {
				if !errors.Is(err, ErrBadParam) {
					t.Fatalf("Validate() = %v, want ErrBadParam", err)
				}
				if tw, err := NewTwin(tt.p); tw != nil || !errors.Is(err, ErrBadParam) {
					t.Fatalf("NewTwin() = %v, %v; want nil, ErrBadParam", tw, err)
				}
			}
		})
	}
}

func TestDefaultTwinParams(t *testing.T) {
	p := DefaultTwinParams()
	tw := mustTwin(t, p)
	if tau := tw.Tau(); tau < 300*time.Millisecond || tau > 3500*time.Millisecond {
		t.Errorf("default τ = %v, want within the design notes' 0.3–3.5 s", tau)
	}
	if tw.Tau() != 2*time.Second {
		t.Errorf("default τ = %v, want 2s (R=2.5 K/W × C=0.8 J/K)", tw.Tau())
	}
	if tw.Temperature() != DefaultAmbient {
		t.Errorf("new twin at %v, want ambient %v", tw.Temperature(), DefaultAmbient)
	}
}

// TestTwinStepResponse checks the twin against the analytic response of an
// RC circuit to a power step from ambient:
// T(t) = Ambient + P·R·(1 − exp(−t/τ)).
func TestTwinStepResponse(t *testing.T) {
	p := TwinParams{Ambient: 22.5, R: 2, C: 0.75} // τ = 1.5 s
	const pw = 12.0                               // W
	tau := p.R * p.C
	analytic := func(sec float64) float64 {
		return float64(p.Ambient) + pw*p.R*(1-math.Exp(-sec/tau))
	}

	t.Run("rise at tau", func(t *testing.T) {
		tw := mustTwin(t, p)
		got := tw.Step(tw.Tau(), pw)
		rise := float64(got - p.Ambient)
		want := (1 - 1/math.E) * pw * p.R
		if !closeTo(rise, want, 1e-9) {
			t.Errorf("rise at τ = %.12f K, want (1−1/e)·P·R = %.12f K", rise, want)
		}
	})

	t.Run("many points", func(t *testing.T) {
		tw := mustTwin(t, p)
		// Irregular steps, to catch any dependence on the step size.
		steps := []time.Duration{
			time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond,
			47 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
			333 * time.Millisecond, 500 * time.Millisecond, time.Second,
			1700 * time.Millisecond, 3 * time.Second, 5 * time.Second,
		}
		var elapsed time.Duration
		for i := 0; i < 40; i++ {
			dt := steps[i%len(steps)]
			elapsed += dt
			got := float64(tw.Step(dt, pw))
			want := analytic(elapsed.Seconds())
			if !closeTo(got, want, 1e-9) {
				t.Fatalf("after %v: T = %.12f, want %.12f", elapsed, got, want)
			}
		}
		// After 40 steps (~ 35 s ≈ 24τ) it must sit at the steady state.
		if got, want := float64(tw.Temperature()), float64(tw.SteadyState(pw)); !closeTo(got, want, 1e-9) {
			t.Errorf("after %v: T = %.12f, want steady state %.12f", elapsed, got, want)
		}
	})
}

func TestTwinStepSizeIndependence(t *testing.T) {
	p := DefaultTwinParams()
	for _, pw := range []units.Power{0, 3.38, 15.19, 100} {
		one := mustTwin(t, p)
		one.Reset(40)
		one.Step(time.Second, pw)

		ten := mustTwin(t, p)
		ten.Reset(40)
		for i := 0; i < 10; i++ {
			ten.Step(100*time.Millisecond, pw)
		}

		thousand := mustTwin(t, p)
		thousand.Reset(40)
		for i := 0; i < 1000; i++ {
			thousand.Step(time.Millisecond, pw)
		}

		a, b, c := float64(one.Temperature()), float64(ten.Temperature()), float64(thousand.Temperature())
		if !closeTo(a, b, 1e-12*math.Abs(a)) || !closeTo(a, c, 1e-11*math.Abs(a)) {
			t.Errorf("P=%v W: 1×1s → %.15f, 10×100ms → %.15f, 1000×1ms → %.15f", pw, a, b, c)
		}
	}
}

func TestTwinCooling(t *testing.T) {
	p := TwinParams{Ambient: 25, R: 1.5, C: 1} // τ = 1.5 s
	tw := mustTwin(t, p)
	tw.Reset(80)
	prev := tw.Temperature()
	var elapsed time.Duration
	for i := 0; i < 100; i++ {
		dt := 150 * time.Millisecond
		elapsed += dt
		got := tw.Step(dt, 0)
		want := 25 + 55*math.Exp(-elapsed.Seconds()/1.5)
		if !closeTo(float64(got), want, 1e-9) {
			t.Fatalf("after %v: T = %.12f, want %.12f", elapsed, got, want)
		}
		if got >= prev || got < p.Ambient {
			t.Fatalf("after %v: T = %v, previous %v: want strictly falling towards ambient", elapsed, got, prev)
		}
		prev = got
	}
}

func TestTwinNoOps(t *testing.T) {
	tests := []struct {
		name string
		dt   time.Duration
		p    units.Power
	}{
		{"zero dt", 0, 50},
		{"negative dt", -time.Second, 50},
		{"NaN power", time.Second, units.Power(math.NaN())},
		{"infinite power", time.Second, units.Power(math.Inf(1))},
		{"negative power", time.Second, -5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tw := mustTwin(t, DefaultTwinParams())
			tw.Reset(47.25)
			if got := tw.Step(tt.dt, tt.p); got != 47.25 {
				t.Errorf("Step(%v, %v) = %v, want unchanged 47.25", tt.dt, tt.p, got)
			}
			if got := tw.Temperature(); got != 47.25 {
				t.Errorf("Temperature() = %v after no-op, want 47.25", got)
			}
		})
	}
}

func TestTwinReset(t *testing.T) {
	tw := mustTwin(t, DefaultTwinParams())
	tw.Reset(60)
	for _, bad := range []units.Celsius{units.Celsius(math.NaN()), units.Celsius(math.Inf(-1)), -273.15, -500} {
		tw.Reset(bad)
		if tw.Temperature() != 60 {
			t.Errorf("Reset(%v) changed temperature to %v", bad, tw.Temperature())
		}
	}
}

func TestTwinSteadyStateAndTau(t *testing.T) {
	p := TwinParams{Ambient: 20, R: 0.4, C: 5} // τ = 2 s
	tw := mustTwin(t, p)
	if got := tw.SteadyState(100); got != 60 {
		t.Errorf("SteadyState(100 W) = %v, want 20 + 100·0.4 = 60", got)
	}
	if tw.Tau() != 2*time.Second {
		t.Errorf("Tau() = %v, want 2s", tw.Tau())
	}
	tw.Step(200*time.Second, 100) // 100 τ
	if got := tw.Temperature(); !closeTo(float64(got), 60, 1e-9) {
		t.Errorf("after 100τ at 100 W: %v, want 60", got)
	}
	if tw.Params() != p {
		t.Errorf("Params() = %+v, want %+v", tw.Params(), p)
	}
}

func TestTwinParamsString(t *testing.T) {
	got := DefaultTwinParams().String()
	want := "rc-twin(R=2.5 K/W, C=0.8 J/K, τ=2 s, ambient=25 °C)"
	if got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func BenchmarkTwinStep(b *testing.B) {
	tw, err := NewTwin(DefaultTwinParams())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		tw.Step(100*time.Millisecond, 10)
	}
}
