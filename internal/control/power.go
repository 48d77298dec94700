package control

import (
	"fmt"
	"math"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// PowerLimit prices power the way the thermostat prices heat, for a host
// with a power budget in watts (the other limit operators ask for): a PI
// controller on the relative excess e = (P − budget)/budget whose output,
// the multiplier, is at least 1 (the budget does not bind) and at most
// ceiling. The economy prices against whichever of the two multipliers is
// higher, that is against whichever limit binds. It is a pure state
// machine: time comes in as each step's interval.
type PowerLimit struct {
	budget  units.Power
	kp, ki  float64
	ceiling float64
	integ   float64
	out     float64
}

// Default gains of a PowerLimit: a budget exceeded by 10 % adds 0.05 to
// the multiplier at once and 0.1 a second while it lasts. Power follows
// price within a tick or two (no thermal lag), but steeply: at ×1.5 a
// host's demand can fall by a third, so a brisker proportional term makes
// the loop ring (tested on such a plant).
const (
	DefaultPowerKp = 0.5
	DefaultPowerKi = 1.0
)

// NewPowerLimit returns a limit of budget watts with the default gains and
// the multiplier's ceiling.
func NewPowerLimit(budget units.Power, ceiling float64) (*PowerLimit, error) {
	if !(budget > 0) || math.IsInf(float64(budget), 0) {
		return nil, fmt.Errorf("%w: power budget %v W must be positive", ErrInvalidConfig, float64(budget))
	}
	if !(ceiling >= 1) || math.IsInf(ceiling, 0) {
		return nil, fmt.Errorf("%w: ceiling %v must be at least 1", ErrInvalidConfig, ceiling)
	}
	return &PowerLimit{budget: budget, kp: DefaultPowerKp, ki: DefaultPowerKi, ceiling: ceiling, out: 1}, nil
}

// Budget returns the limit in watts.
func (l *PowerLimit) Budget() units.Power { return l.budget }

// Multiplier returns the last output.
func (l *PowerLimit) Multiplier() float64 { return l.out }

// Step takes the mean power over the last dt and returns the multiplier.
// A power that is not a finite number, or a non-positive dt, leaves the
// state as it is and returns the last output.
func (l *PowerLimit) Step(dt time.Duration, power units.Power) float64 {
	p := float64(power)
	if dt <= 0 || math.IsNaN(p) || math.IsInf(p, 0) {
		return l.out
	}
	e := (p - float64(l.budget)) / float64(l.budget)
	// Anti-windup: the integral stays where the output can follow it.
	l.integ = min(max(l.integ+l.ki*e*dt.Seconds(), 0), l.ceiling-1)
	l.out = min(max(1+l.kp*e+l.integ, 1), l.ceiling)
	return l.out
}
