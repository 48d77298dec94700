package control

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// TestPowerLimit: under the budget the multiplier stays at 1; over it the
// multiplier rises until power (here a plant whose power falls as the price
// rises) comes back to the budget, and holds there.
func TestPowerLimit(t *testing.T) {
	l, err := NewPowerLimit(10, 10)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if m := l.Step(100*time.Millisecond, 8); m != 1 {
			t.Fatalf("under the budget: multiplier %v", m)
		}
	}
	// Demand: 15 W at multiplier 1, less as the price rises.
	plant := func(m float64) units.Power { return units.Power(15 / m) }
	m := 1.0
	for range 300 {
		m = l.Step(100*time.Millisecond, plant(m))
	}
	if p := float64(plant(m)); math.Abs(p-10) > 0.2 {
		t.Errorf("after 30 s: %.2f W at multiplier %.2f, want the budget (10 W)", p, m)
	}
	if got := l.Step(0, 1000); got != m {
		t.Errorf("a zero interval moved the output: %v", got)
	}
	if got := l.Step(time.Second, units.Power(math.NaN())); got != m {
		t.Errorf("NaN moved the output: %v", got)
	}
	for _, bad := range []units.Power{0, -1, units.Power(math.Inf(1))} {
		if _, err := NewPowerLimit(bad, 10); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("budget %v: %v", bad, err)
		}
	}
}
