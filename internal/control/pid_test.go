package control

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

const tick = 100 * time.Millisecond

func baseConfig() Config {
	return Config{
		Gains:    Gains{Kp: 0.5, Ki: 0.1},
		OutMin:   1,
		OutMax:   10,
		Setpoint: 60,
		Critical: 90,
	}
}

func mustNew(t *testing.T, cfg Config) *PID {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return p
}

func mustStep(t *testing.T, p *PID, dt time.Duration, y units.Celsius) float64 {
	t.Helper()
	out, err := p.Step(dt, y)
	if err != nil {
		t.Fatalf("Step(%v, %v): %v", dt, y, err)
	}
	return out
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestNewRejectsBadConfig(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name   string
		modify func(*Config)
	}{
		{"NaN Kp", func(c *Config) { c.Kp = nan }},
		{"Inf Ki", func(c *Config) { c.Ki = inf }},
		{"negative Kp", func(c *Config) { c.Kp = -1 }},
		{"negative KpUnder", func(c *Config) { c.KpUnder = -0.1 }},
		{"negative Ki", func(c *Config) { c.Ki = -0.1 }},
		{"negative Kd", func(c *Config) { c.Kd = -0.1 }},
		{"NaN Kd", func(c *Config) { c.Kd = nan }},
		{"negative filter", func(c *Config) { c.DerivativeFilter = -time.Second }},
		{"negative band", func(c *Config) { c.IntegralBand = -1 }},
		{"OutMin above OutMax", func(c *Config) { c.OutMin, c.OutMax = 5, 2 }},
		{"NaN OutMax", func(c *Config) { c.OutMax = nan }},
		{"Inf OutMin", func(c *Config) { c.OutMin = -inf }},
		{"setpoint at critical", func(c *Config) { c.Setpoint, c.Critical = 80, 80 }},
		{"setpoint above critical", func(c *Config) { c.Setpoint, c.Critical = 95, 90 }},
		{"NaN setpoint", func(c *Config) { c.Setpoint = units.Celsius(nan) }},
		{"NaN critical", func(c *Config) { c.Critical = units.Celsius(nan) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.modify(&cfg)
			p, err := New(cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New = %v, %v; want error wrapping ErrInvalidConfig", p, err)
			}
		})
	}
	if _, err := New(baseConfig()); err != nil {
		t.Fatalf("base config rejected: %v", err)
	}
	eq := baseConfig()
	eq.OutMin, eq.OutMax = 3, 3
	if _, err := New(eq); err != nil {
		t.Fatalf("OutMin == OutMax rejected: %v", err)
	}
}

func TestStepRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		dt   time.Duration
		y    units.Celsius
	}{
		{"zero dt", 0, 61},
		{"negative dt", -tick, 61},
		{"NaN temperature", tick, units.Celsius(math.NaN())},
		{"Inf temperature", tick, units.Celsius(math.Inf(1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Kd = 1
			p := mustNew(t, cfg)
			mustStep(t, p, tick, 62)
			before := *p
			out, err := p.Step(tt.dt, tt.y)
			if !errors.Is(err, ErrInvalidStep) {
				t.Fatalf("Step(%v, %v) err = %v, want ErrInvalidStep", tt.dt, tt.y, err)
			}
			if out != before.out {
				t.Errorf("Step returned %v on error, want last output %v", out, before.out)
			}
			if *p != before {
				t.Errorf("state changed on error: %+v, was %+v", *p, before)
			}
		})
	}
}

// TestTerms checks each term alone against its definition.
func TestTerms(t *testing.T) {
	tests := []struct {
		name  string
		gains Gains
		temps []units.Celsius // one per tick
		want  []float64
	}{
		{
			// out = OutMin + Kp·e, reverse acting.
			name:  "P only",
			gains: Gains{Kp: 0.5},
			temps: []units.Celsius{62, 64, 60, 59},
			want:  []float64{2, 3, 1, 1}, // 59 °C: 0.5 clamped to OutMin
		},
		{
			name:  "P asymmetric",
			gains: Gains{Kp: 0.5, KpUnder: 2},
			temps: []units.Celsius{62, 59.5, 61},
			want:  []float64{2, 1, 1.5}, // 59.5: 1 - 1 = 0 → clamped
		},
		{
			// I += Ki·e·dt each tick: 0.2·2·0.1 = 0.04.
			name:  "I only",
			gains: Gains{Ki: 0.2},
			temps: []units.Celsius{62, 62, 62, 57},
			want:  []float64{1.04, 1.08, 1.12, 1.06},
		},
		{
			// D = Kd·Δy/dt, on the measurement, none on the first step.
			name:  "D only unfiltered",
			gains: Gains{Kd: 0.1},
			temps: []units.Celsius{60, 61, 63, 63},
			want:  []float64{1, 2, 3, 1},
		},
		{
			name:  "PI",
			gains: Gains{Kp: 0.5, Ki: 0.2},
			temps: []units.Celsius{62, 62},
			want:  []float64{1 + 1 + 0.04, 1 + 1 + 0.08},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Gains = tt.gains
			p := mustNew(t, cfg)
			for i, y := range tt.temps {
				if got := mustStep(t, p, tick, y); !near(got, tt.want[i], 1e-9) {
					t.Errorf("step %d at %v °C: out = %v, want %v", i, y, got, tt.want[i])
				}
			}
		})
	}
}

func TestIntegralBand(t *testing.T) {
	cfg := baseConfig()
	cfg.Gains = Gains{Ki: 1, IntegralBand: 2}
	p := mustNew(t, cfg)
	if got := mustStep(t, p, tick, 65); got != 1 {
		t.Errorf("5 K above setpoint, outside a 2 K band: out = %v, want 1 (no integration)", got)
	}
	if got := mustStep(t, p, tick, 61.5); !near(got, 1.15, 1e-9) {
		t.Errorf("1.5 K above setpoint, inside the band: out = %v, want 1.15", got)
	}
}

func TestClamp(t *testing.T) {
	cfg := baseConfig()
	cfg.Gains = Gains{Kp: 100}
	p := mustNew(t, cfg)
	if got := mustStep(t, p, tick, 80); got != cfg.OutMax {
		t.Errorf("far above setpoint: out = %v, want OutMax %v", got, cfg.OutMax)
	}
	if got := mustStep(t, p, tick, 20); got != cfg.OutMin {
		t.Errorf("far below setpoint: out = %v, want OutMin %v", got, cfg.OutMin)
	}
}

func TestCritical(t *testing.T) {
	cfg := baseConfig()
	cfg.Gains = Gains{Kp: 0.01}
	p := mustNew(t, cfg)
	if got := mustStep(t, p, tick, 89.9); got >= cfg.OutMax {
		t.Fatalf("just below critical with a tiny gain: out = %v, want below OutMax", got)
	}
	if got := mustStep(t, p, tick, 90); got != cfg.OutMax {
		t.Errorf("at critical: out = %v, want OutMax", got)
	}
}

// TestAntiWindup holds the loop hot for a long time with the output pinned
// at OutMax, then lets the temperature fall below the setpoint. With a
// wound-up integral the output would stay at OutMax long after; with
// anti-windup it leaves the ceiling as soon as the error changes sign.
func TestAntiWindup(t *testing.T) {
	cfg := baseConfig()
	cfg.Gains = Gains{Kp: 0.5, Ki: 0.5}
	cfg.OutMax = 3
	p := mustNew(t, cfg)
	for range 6000 { // 10 minutes, 10 K above the setpoint
		if got := mustStep(t, p, tick, 70); got != cfg.OutMax {
			t.Fatalf("out = %v, want OutMax while hot", got)
		}
	}
	// The integral may hold at most what keeps the output at OutMax.
	if p.integ > cfg.OutMax {
		t.Errorf("integral wound up to %v, above OutMax %v", p.integ, cfg.OutMax)
	}
	// 1 K below the setpoint: output must leave the ceiling at once.
	got := mustStep(t, p, tick, 59)
	if got >= cfg.OutMax {
		t.Errorf("first step below setpoint after long saturation: out = %v, still at OutMax", got)
	}
	// And it must reach OutMin within the integral's natural unwinding
	// time from the ceiling: (OutMax−OutMin)/(Ki·1 K) = 4 s.
	var k int
	for k = 0; k < 100 && got > cfg.OutMin; k++ {
		got = mustStep(t, p, tick, 59)
	}
	if got > cfg.OutMin {
		t.Errorf("output still %v after 10 s 1 K below setpoint", got)
	}
}

// TestAntiWindupRelease is the classic windup check on a plant: an
// uncontrollable heat load holds the host above the setpoint with the price
// at its ceiling; when the load goes, the temperature comes back to the
// setpoint. A wound-up integral would hold the price at the ceiling (and
// demand at zero) long after the temperature crossed the setpoint, so the
// longer the saturation the deeper the undershoot. With anti-windup ten
// minutes of saturation must give the same recovery as twenty seconds.
func TestAntiWindupRelease(t *testing.T) {
	cfg := baseConfig()
	cfg.Setpoint = 55
	// SIMC gains for slowTwin with a 2-tick reaction (see the closed-loop
	// test): K ≈ −14.75 K per unit multiplier, τ = 20 s, θ ≈ 0.2 s.
	cfg.Gains = Gains{Kp: 3.4, Ki: 2.1}
	run := func(saturated time.Duration) (under, final float64) {
		h := newHost(t, slowTwin, 2)
		h.desire = 1
		h.extra = 15 // W: 3.4 W idle + 15 W holds 71 °C, over the setpoint
		p := mustNew(t, cfg)
		y := h.temperature()
		for range int(saturated / tick) {
			y = h.step(tick, mustStep(t, p, tick, y))
		}
		if got := p.Output(); got != cfg.OutMax {
			t.Fatalf("under the uncontrollable load, out = %v, want OutMax", got)
		}
		h.extra = 0
		minY := math.Inf(1)
		for range 1200 {
			y = h.step(tick, mustStep(t, p, tick, y))
			minY = min(minY, float64(y))
		}
		return float64(cfg.Setpoint) - minY, math.Abs(float64(y - cfg.Setpoint))
	}
	shortU, shortF := run(20 * time.Second)
	longU, longF := run(10 * time.Minute)
	t.Logf("undershoot after release: %.3f K (20 s saturated), %.3f K (10 min saturated)", shortU, longU)
	if math.Abs(longU-shortU) > 0.05 {
		t.Errorf("undershoot %.3f K after 10 min of saturation, %.3f K after 20 s: the integral wound up", longU, shortU)
	}
	// The temperature crosses the setpoint falling at about 1.1 K/s, and
	// the price must come down through 10…3.25, where no agent runs, before
	// demand returns: some undershoot is physics, not windup.
	if longU > 1.5 {
		t.Errorf("undershoot %.3f K after release, want < 1.5 K", longU)
	}
	if shortF > 0.05 || longF > 0.05 {
		t.Errorf("not settled 120 s after release: off by %.3f K and %.3f K", shortF, longF)
	}
}

// TestDerivativeOnMeasurement changes the setpoint by 5 K under a PD
// controller with a strong derivative. Derivative on the error would kick
// the output by Kd·5 K/0.1 s = 50; on the measurement there is no kick, and
// with the bumpless setpoint change the output does not move at all while
// the temperature holds.
func TestDerivativeOnMeasurement(t *testing.T) {
	cfg := baseConfig()
	cfg.Gains = Gains{Kp: 0.5, Kd: 1}
	cfg.OutMax = 100
	p := mustNew(t, cfg)
	mustStep(t, p, tick, 62)
	before := mustStep(t, p, tick, 62)
	if err := p.SetSetpoint(57); err != nil {
		t.Fatal(err)
	}
	if got := p.Output(); got != before {
		t.Errorf("SetSetpoint moved the output from %v to %v", before, got)
	}
	for i := range 3 {
		if got := mustStep(t, p, tick, 62); !near(got, before, 1e-12) {
			t.Errorf("step %d after setpoint change: out = %v, want %v (no kick, no jump)", i, got, before)
		}
	}
	// The new setpoint is in force: a 1 K rise now moves the output by
	// Kp·1 K plus the derivative Kd·1 K/0.1 s.
	if got := mustStep(t, p, tick, 63); !near(got, before+0.5+10, 1e-9) {
		t.Errorf("after a 1 K rise: out = %v, want %v", got, before+10.5)
	}
}

func TestSetSetpointBumplessThenConverges(t *testing.T) {
	h := newHost(t, slowTwin, 2)
	h.desire = 1
	cfg := baseConfig()
	cfg.Setpoint = 55
	cfg.Gains = Gains{Kp: 0.3, Ki: 0.1}
	p := mustNew(t, cfg)
	y := h.temperature()
	for range 1200 {
		y = h.step(tick, mustStep(t, p, tick, y))
	}
	last := p.Output()
	if err := p.SetSetpoint(50); err != nil {
		t.Fatal(err)
	}
	for k := range 1500 {
		out := mustStep(t, p, tick, y)
		// One tick of integral action on the new 5 K error is allowed.
		if k == 0 && math.Abs(out-last) > cfg.Ki*5*tick.Seconds()+1e-6 {
			t.Errorf("first output after a 5 K setpoint change jumped from %v to %v", last, out)
		}
		y = h.step(tick, out)
	}
	if d := math.Abs(float64(y - 50)); d > 0.1 {
		t.Errorf("loop at %.2f °C 150 s after the setpoint moved to 50 °C", float64(y))
	}
	if err := p.SetSetpoint(90); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("SetSetpoint(critical) err = %v, want ErrInvalidConfig", err)
	}
	if got := p.Config().Setpoint; got != 50 {
		t.Errorf("rejected setpoint changed it to %v", got)
	}
}

func TestRetuneBumpless(t *testing.T) {
	tests := []struct {
		name     string
		from, to Gains
	}{
		{"raise Kp", Gains{Kp: 0.5, Ki: 0.1}, Gains{Kp: 2, Ki: 0.1}},
		{"lower Kp, drop Ki", Gains{Kp: 2, Ki: 0.1}, Gains{Kp: 0.2}},
		{"add D", Gains{Kp: 0.5, Ki: 0.1}, Gains{Kp: 0.5, Ki: 0.1, Kd: 0.5, DerivativeFilter: time.Second}},
		{"drop D", Gains{Kp: 0.5, Ki: 0.1, Kd: 0.5, DerivativeFilter: time.Second}, Gains{Kp: 0.5, Ki: 0.1}},
		{"asymmetric", Gains{Kp: 0.5, Ki: 0.1}, Gains{Kp: 0.5, KpUnder: 3, Ki: 0.1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Gains = tt.from
			p := mustNew(t, cfg)
			// A ramp, so that the derivative state is not zero, ending
			// below the setpoint so the asymmetric gain is in play.
			for i := range 50 {
				mustStep(t, p, tick, units.Celsius(55+0.08*float64(i)))
			}
			y := units.Celsius(55 + 0.08*49)
			before := p.Output()
			if err := p.Retune(tt.to); err != nil {
				t.Fatal(err)
			}
			if got := p.Output(); got != before {
				t.Errorf("Retune moved the output from %v to %v", before, got)
			}
			// Holding the temperature, the output may only drift by what
			// the integral and the decaying derivative add in one tick.
			got := mustStep(t, p, tick, y)
			if d := math.Abs(got - before); d > 0.05 {
				t.Errorf("output jumped by %v on the first step after Retune (%v → %v)", d, before, got)
			}
			if p.Config().Gains != tt.to {
				t.Errorf("gains now %+v, want %+v", p.Config().Gains, tt.to)
			}
		})
	}
	p := mustNew(t, baseConfig())
	if err := p.Retune(Gains{Kp: math.NaN()}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Retune(NaN) err = %v, want ErrInvalidConfig", err)
	}
	if p.Config().Gains != baseConfig().Gains {
		t.Errorf("rejected Retune changed the gains")
	}
}

// TestDerivativeFilter checks the low-pass response of the derivative to a
// 1 K step in the measurement: first value Kd·1 K/(Tf+dt), then decaying by
// Tf/(Tf+dt) each tick. Without a filter the derivative is one tick wide.
func TestDerivativeFilter(t *testing.T) {
	tests := []struct {
		name string
		tf   time.Duration
	}{
		{"no filter", 0},
		{"Tf = dt", tick},
		{"Tf = 4 dt", 4 * tick},
	}
	const kd = 0.2
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Gains = Gains{Kd: kd, DerivativeFilter: tt.tf}
			cfg.OutMax = 100
			p := mustNew(t, cfg)
			mustStep(t, p, tick, 60)
			tf, h := tt.tf.Seconds(), tick.Seconds()
			want := kd * 1 / (tf + h)
			for i := range 6 {
				got := mustStep(t, p, tick, 61) - cfg.OutMin
				if !near(got, want, 1e-9) {
					t.Errorf("tick %d after the step: derivative term %v, want %v", i, got, want)
				}
				want *= tf / (tf + h)
			}
		})
	}
}

func TestFailSafe(t *testing.T) {
	cfg := baseConfig()
	cfg.Gains = Gains{Kp: 0.5, Ki: 0.2, Kd: 0.1, DerivativeFilter: tick}
	p := mustNew(t, cfg)
	for range 100 {
		mustStep(t, p, tick, 61)
	}
	if got := p.FailSafe(); got != cfg.OutMax {
		t.Fatalf("FailSafe() = %v, want OutMax %v", got, cfg.OutMax)
	}
	if !p.InFailSafe() || p.Output() != cfg.OutMax {
		t.Fatalf("after FailSafe: InFailSafe=%v Output=%v", p.InFailSafe(), p.Output())
	}
	// Bad steps do not leave fail-safe.
	if _, err := p.Step(0, 58); err == nil || !p.InFailSafe() {
		t.Fatalf("a rejected Step left fail-safe (err %v)", err)
	}
	// Sensor back, host now 2 K below the setpoint: resume at OutMax and
	// fall away smoothly: each tick by no more than Ki·2 K·0.1 s plus
	// rounding, never jumping.
	if got := mustStep(t, p, tick, 58); got != cfg.OutMax || p.InFailSafe() {
		t.Fatalf("first Step after FailSafe = %v (fail-safe %v), want OutMax and resumed", got, p.InFailSafe())
	}
	prev := cfg.OutMax
	for i := range 400 {
		got := mustStep(t, p, tick, 58)
		if d := prev - got; d < 0 || d > 0.2*2*0.1+1e-9 {
			t.Fatalf("tick %d after resume: output %v → %v, want a smooth fall", i, prev, got)
		}
		prev = got
	}
	if prev != cfg.OutMin {
		t.Errorf("40 s at 2 K below setpoint after resume: out = %v, want OutMin", prev)
	}
	// Resuming hot keeps the ceiling while it is hot.
	p.FailSafe()
	mustStep(t, p, tick, 80)
	if got := mustStep(t, p, tick, 80); got != cfg.OutMax {
		t.Errorf("resumed 20 K above setpoint: out = %v, want OutMax", got)
	}
}
