package control

import (
	"fmt"
	"math"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Plausible temperature readings. A reading outside [MinPlausible,
// MaxPlausible] is taken as a sensor fault, not a temperature: the range
// covers the −55 … 150 °C that common digital thermal sensors report.
const (
	MinPlausible units.Celsius = -55
	MaxPlausible units.Celsius = 150
)

// Decision is what a Thermostat decides for one tick.
type Decision struct {
	// Multiplier is the thermal price multiplier to publish.
	Multiplier float64
	// FailSafe reports that the price is at its ceiling because the
	// reading failed, was implausible, or was at or above the critical
	// temperature.
	FailSafe bool
	// Reason, when not empty, is an event for the engine to record: why
	// the thermostat entered fail-safe or why its kind of cause changed
	// (a failed read, an implausible reading, a critical temperature), why
	// it left fail-safe, or why a step was refused. It is empty on
	// ordinary ticks, including further ticks of fail-safe for the same
	// kind of cause.
	Reason string
}

// Thermostat is the engine's price loop for one host: a PID (with its
// predictor, if configured) that turns each temperature reading into a
// price multiplier, and that handles readings it cannot trust. Like PID it
// is a pure state machine: no clock, no goroutines, no I/O. It is not safe
// for concurrent use.
//
// A failed reading (readErr not nil), a non-finite one, one outside
// [MinPlausible, MaxPlausible], or one at or above the configured Critical
// temperature puts the price at the ceiling (PID.FailSafe). The first
// trustworthy reading after that resumes bumplessly: the price falls away
// from the ceiling at the pace of the integral action, never jumping down.
type Thermostat struct {
	pid   *PID
	cause distrust // why in fail-safe; trusted when not
}

// distrust classifies why a reading cannot be acted on.
type distrust int

const (
	trusted     distrust = iota
	failed               // the read returned an error
	implausible          // not finite, or outside the plausible range
	critical             // at or above the critical temperature
)

// NewThermostat returns a thermostat running a PID configured by cfg.
// Errors wrap ErrInvalidConfig (see New).
func NewThermostat(cfg Config) (*Thermostat, error) {
	p, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &Thermostat{pid: p}, nil
}

// PID returns the thermostat's controller, for SetSetpoint, Retune,
// SetPredictor and Config.
func (t *Thermostat) PID() *PID { return t.pid }

// Multiplier returns the last multiplier decided (OutMin before the first
// Step).
func (t *Thermostat) Multiplier() float64 { return t.pid.Output() }

// Step advances the thermostat by dt, the time since the previous Step,
// with the reading taken now and the error, if any, from taking it. It
// never fails: an untrustworthy reading gives the ceiling, and a
// non-positive dt leaves the multiplier as it was, with a Reason.
func (t *Thermostat) Step(dt time.Duration, reading units.Celsius, readErr error) Decision {
	if dt <= 0 {
		return Decision{
			Multiplier: t.pid.Output(),
			FailSafe:   t.cause != trusted,
			Reason:     fmt.Sprintf("thermostat step refused: interval %v is not positive; price unchanged", dt),
		}
	}
	if cause, why := t.check(reading, readErr); cause != trusted {
		d := Decision{Multiplier: t.pid.FailSafe(), FailSafe: true}
		if cause != t.cause {
			d.Reason = why + "; price at ceiling"
		}
		t.cause = cause
		return d
	}
	m, err := t.pid.Step(dt, reading)
	if err != nil { // unreachable: dt and reading were checked
		return Decision{Multiplier: t.pid.FailSafe(), FailSafe: true, Reason: err.Error() + "; price at ceiling"}
	}
	d := Decision{Multiplier: m}
	if t.cause != trusted {
		d.Reason = fmt.Sprintf("temperature reading trusted again (%.1f °C); price falls from the ceiling", float64(reading))
		t.cause = trusted
	}
	return d
}

// check returns why reading cannot be acted on, or trusted.
func (t *Thermostat) check(reading units.Celsius, readErr error) (distrust, string) {
	c := float64(reading)
	crit := t.pid.Config().Critical
	switch {
	case readErr != nil:
		return failed, fmt.Sprintf("sensor failed: %v", readErr)
	case math.IsNaN(c) || math.IsInf(c, 0):
		return implausible, fmt.Sprintf("sensor failed: reading %v °C is not a finite number", c)
	case reading < MinPlausible || reading > MaxPlausible:
		return implausible, fmt.Sprintf("sensor failed: reading %.1f °C is outside the plausible %.0f…%.0f °C",
			c, float64(MinPlausible), float64(MaxPlausible))
	case reading >= crit:
		return critical, fmt.Sprintf("temperature %.1f °C at or above critical %.1f °C", c, float64(crit))
	}
	return trusted, ""
}
