package control

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

func mustThermostat(t *testing.T) *Thermostat {
	t.Helper()
	cfg := baseConfig() // setpoint 60 °C, critical 90 °C, out in [1, 10]
	cfg.Gains = Gains{Kp: 0.5, Ki: 0.2}
	th, err := NewThermostat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

type reading struct {
	dt  time.Duration
	c   units.Celsius
	err error
}

func TestThermostat(t *testing.T) {
	nan := units.Celsius(math.NaN())
	readErr := errors.New("hwmon0/temp1_input: read: no such device")
	good := reading{tick, 62, nil}
	tests := []struct {
		name string
		in   []reading
		// want per tick: fail-safe, and the start of the Reason ("" for
		// none).
		failSafe []bool
		reason   []string
	}{
		{
			name:     "ordinary ticks record nothing",
			in:       []reading{good, good, good},
			failSafe: []bool{false, false, false},
			reason:   []string{"", "", ""},
		},
		{
			name:     "read error, held, then recovery",
			in:       []reading{good, {tick, 0, readErr}, {tick, 0, readErr}, good},
			failSafe: []bool{false, true, true, false},
			reason:   []string{"", "sensor failed: hwmon0/temp1_input", "", "temperature reading trusted again (62.0 °C)"},
		},
		{
			name:     "NaN reading",
			in:       []reading{good, {tick, nan, nil}, good},
			failSafe: []bool{false, true, false},
			reason:   []string{"", "sensor failed: reading NaN °C is not a finite number", "temperature reading trusted again"},
		},
		{
			name:     "implausible reading",
			in:       []reading{{tick, 400, nil}, {tick, -100, nil}, good},
			failSafe: []bool{true, true, false},
			reason:   []string{"sensor failed: reading 400.0 °C is outside the plausible -55…150 °C", "", "temperature reading trusted again"},
		},
		{
			name:     "critical, then a failed sensor: a new cause is a new event",
			in:       []reading{good, {tick, 95, nil}, {tick, 96, nil}, {tick, 0, readErr}, good},
			failSafe: []bool{false, true, true, true, false},
			reason:   []string{"", "temperature 95.0 °C at or above critical 90.0 °C", "", "sensor failed:", "temperature reading trusted again"},
		},
		{
			name:     "non-positive interval is refused",
			in:       []reading{good, {0, 62, nil}, {-tick, 62, nil}, good},
			failSafe: []bool{false, false, false, false},
			reason:   []string{"", "thermostat step refused: interval 0s is not positive", "thermostat step refused: interval -100ms", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := mustThermostat(t)
			for i, r := range tt.in {
				before := th.Multiplier()
				d := th.Step(r.dt, r.c, r.err)
				if d.FailSafe != tt.failSafe[i] {
					t.Errorf("tick %d: FailSafe = %v, want %v (%+v)", i, d.FailSafe, tt.failSafe[i], d)
				}
				if w := tt.reason[i]; (w == "") != (d.Reason == "") || !strings.HasPrefix(d.Reason, w) {
					t.Errorf("tick %d: Reason = %q, want it to start %q", i, d.Reason, w)
				}
				if d.FailSafe && (d.Multiplier != 10 || !strings.HasSuffix(d.Reason, "price at ceiling") && d.Reason != "") {
					t.Errorf("tick %d: fail-safe decision %+v, want the ceiling 10 and a reason ending in \"price at ceiling\"", i, d)
				}
				if r.dt <= 0 && d.Multiplier != before {
					t.Errorf("tick %d: refused step moved the multiplier %v → %v", i, before, d.Multiplier)
				}
				if d.Multiplier != th.Multiplier() {
					t.Errorf("tick %d: Decision.Multiplier %v, Multiplier() %v", i, d.Multiplier, th.Multiplier())
				}
			}
		})
	}
}

// TestThermostatRecoveryBumpless fails the sensor with the loop hot and
// then brings it back with the host 2 K below the setpoint: the price must
// leave the ceiling smoothly, by at most one tick of integral action
// (Ki·2 K·0.1 s) a tick, and reach the cost price in the end.
func TestThermostatRecoveryBumpless(t *testing.T) {
	th := mustThermostat(t)
	for range 50 {
		th.Step(tick, 63, nil)
	}
	if d := th.Step(tick, 0, sensors.ErrGarbage); !d.FailSafe || d.Multiplier != 10 {
		t.Fatalf("on a garbage read: %+v, want fail-safe at 10", d)
	}
	d := th.Step(tick, 58, nil)
	if d.FailSafe || d.Multiplier != 10 || d.Reason == "" {
		t.Fatalf("first good reading: %+v, want the ceiling, out of fail-safe, with an event", d)
	}
	prev := d.Multiplier
	for i := range 400 {
		d := th.Step(tick, 58, nil)
		if step := prev - d.Multiplier; step < 0 || step > 0.2*2*0.1+1e-9 || d.Reason != "" {
			t.Fatalf("tick %d after recovery: %v → %+v, want a smooth fall and no event", i, prev, d)
		}
		prev = d.Multiplier
	}
	if prev != 1 {
		t.Errorf("40 s at 2 K below the setpoint after recovery: multiplier %v, want 1", prev)
	}
}

func TestNewThermostatRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
	}{
		{"setpoint above critical", func(c *Config) { c.Setpoint, c.Critical = 95, 90 }},
		{"negative gain", func(c *Config) { c.Ki = -1 }},
		{"negative horizon", func(c *Config) { c.Predictor = Predictor{Horizon: -time.Second, Tau: time.Second} }},
		{"horizon without τ", func(c *Config) { c.Predictor = Predictor{Horizon: time.Second} }},
		{"NaN predictor gain", func(c *Config) { c.Predictor = Predictor{Horizon: time.Second, Tau: time.Second, Gain: math.NaN()} }},
		{"negative rate filter", func(c *Config) { c.Predictor = Predictor{Horizon: time.Second, Tau: time.Second, RateFilter: -1} }},
		{"NaN knee", func(c *Config) { c.Predictor = Predictor{Horizon: time.Second, Tau: time.Second, Knee: math.NaN()} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.modify(&cfg)
			if th, err := NewThermostat(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("NewThermostat = %v, %v; want ErrInvalidConfig", th, err)
			}
		})
	}
}
