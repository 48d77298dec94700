package control

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Errors returned by this package's PID controller. They are wrapped with
// details; test for them with errors.Is.
var (
	// ErrInvalidConfig means a Config or Gains value is unusable: a NaN,
	// infinite or negative gain, OutMin > OutMax, a setpoint at or above the
	// critical temperature.
	ErrInvalidConfig = errors.New("control: invalid configuration")
	// ErrInvalidStep means Step was given a non-positive interval or a
	// temperature that is not a finite number. The controller's state is
	// left unchanged.
	ErrInvalidStep = errors.New("control: invalid step")
)

// Gains are the tuning of a PID controller in parallel form,
//
//	out = I + Kp·e + Kd·de/dt (filtered),  dI/dt = Ki·e,
//
// where e = measured − setpoint in kelvin (a reverse-acting loop: a
// temperature above the setpoint raises the output). All gains must be
// finite and non-negative.
type Gains struct {
	// Kp is the proportional gain in output units per kelvin, used while
	// the measured temperature is at or above the setpoint.
	Kp float64
	// KpUnder, if positive, is the proportional gain used while the
	// temperature is below the setpoint (the Linux power_allocator's k_pu;
	// Kp plays the part of its k_po). Zero means "same as Kp".
	KpUnder float64
	// Ki is the integral gain in output units per kelvin-second (Kp/Ti for
	// an integral time Ti). Zero disables integral action.
	Ki float64
	// Kd is the derivative gain in output units per kelvin per second of
	// rate (Kp·Td for a derivative time Td). The derivative acts on the
	// measurement, not on the error, so setpoint changes cause no kick.
	Kd float64
	// DerivativeFilter is the time constant of the first-order low-pass
	// filter on the derivative term (Td/N in textbook form). Zero means no
	// filter.
	DerivativeFilter time.Duration
	// IntegralBand, if positive, restricts integration to errors within
	// ±IntegralBand kelvin of the setpoint (integral separation, compare the
	// power_allocator's one-sided integral_cutoff). Zero means integrate at
	// any error.
	IntegralBand units.Celsius
}

func (g Gains) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"Kp", g.Kp}, {"KpUnder", g.KpUnder}, {"Ki", g.Ki}, {"Kd", g.Kd},
		{"IntegralBand", float64(g.IntegralBand)},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%w: %s = %v is not a finite number", ErrInvalidConfig, f.name, f.v)
		}
		if f.v < 0 {
			return fmt.Errorf("%w: %s = %v is negative", ErrInvalidConfig, f.name, f.v)
		}
	}
	if g.DerivativeFilter < 0 {
		return fmt.Errorf("%w: DerivativeFilter = %v is negative", ErrInvalidConfig, g.DerivativeFilter)
	}
	return nil
}

// Config configures a PID controller.
type Config struct {
	Gains
	// Predictor, if its Horizon is positive, makes the PID act on the
	// temperature predicted Horizon ahead instead of the one measured now
	// (see Predictor). The zero value acts on the measurement.
	Predictor Predictor
	// OutMin and OutMax bound the output. For Maxwell's price loop the
	// output is the thermal price multiplier and OutMin is 1.
	OutMin, OutMax float64
	// Setpoint is the temperature the loop holds.
	Setpoint units.Celsius
	// Critical is the temperature at and above which the output is forced
	// to OutMax whatever the PID terms say. It must exceed Setpoint.
	Critical units.Celsius
}

func (c Config) validate() error {
	if err := c.Gains.validate(); err != nil {
		return err
	}
	if err := c.Predictor.validate(); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"OutMin", c.OutMin}, {"OutMax", c.OutMax},
		{"Setpoint", float64(c.Setpoint)}, {"Critical", float64(c.Critical)},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%w: %s = %v is not a finite number", ErrInvalidConfig, f.name, f.v)
		}
	}
	if c.OutMin > c.OutMax {
		return fmt.Errorf("%w: OutMin %v > OutMax %v", ErrInvalidConfig, c.OutMin, c.OutMax)
	}
	return checkSetpoint(c.Setpoint, c.Critical)
}

func checkSetpoint(sp, critical units.Celsius) error {
	if math.IsNaN(float64(sp)) || math.IsInf(float64(sp), 0) {
		return fmt.Errorf("%w: setpoint %v °C is not a finite number", ErrInvalidConfig, float64(sp))
	}
	if sp >= critical {
		return fmt.Errorf("%w: setpoint %v °C is not below the critical temperature %v °C",
			ErrInvalidConfig, float64(sp), float64(critical))
	}
	return nil
}

// PID is a discrete PID controller for a reverse-acting temperature loop.
// It is a pure state machine: it reads no clock and does no I/O; the time
// since the previous step comes in with each call to Step. A PID is not safe
// for concurrent use.
//
// Anti-windup is by conditional integration with clipping: an integral
// increment that would push the output past OutMax (or OutMin) is cut to
// the part that brings it exactly to the limit, and dropped entirely if the
// output is already there. The integral therefore never winds up while the
// output is saturated, and unwinds at once when the error changes sign.
type PID struct {
	cfg Config

	integ    float64 // integral term, output units (includes the bias)
	deriv    float64 // filtered derivative term, output units
	prev     float64 // previous measurement, °C
	cv       float64 // previous controlled variable (prediction), °C
	hasPrev  bool
	out      float64 // last output
	failSafe bool
	pred     prediction
}

// New validates cfg and returns a controller whose output starts at
// cfg.OutMin: with no history the integral term, which carries the bias,
// is OutMin.
func New(cfg Config) (*PID, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &PID{cfg: cfg, integ: cfg.OutMin, out: cfg.OutMin}, nil
}

// Config returns the controller's current configuration, with the current
// setpoint and gains.
func (p *PID) Config() Config { return p.cfg }

// Output returns the last output (OutMin before the first Step).
func (p *PID) Output() float64 { return p.out }

// Predicted returns the temperature the last Step acted on: the
// prediction Horizon ahead with a predictor, else the measurement. Before
// the first Step it is NaN.
func (p *PID) Predicted() units.Celsius {
	if !p.hasPrev {
		return units.Celsius(math.NaN())
	}
	return units.Celsius(p.cv)
}

// InFailSafe reports whether FailSafe was called and no Step has happened
// since.
func (p *PID) InFailSafe() bool { return p.failSafe }

// proportional returns the proportional term for measurement y against
// setpoint sp under gains g.
func proportional(g Gains, y float64, sp units.Celsius) float64 {
	e := y - float64(sp)
	if e < 0 && g.KpUnder > 0 {
		return g.KpUnder * e
	}
	return g.Kp * e
}

func (p *PID) clamp(u float64) float64 {
	return min(max(u, p.cfg.OutMin), p.cfg.OutMax)
}

// Step advances the controller by dt, the time since the previous Step, with
// the temperature measured now, and returns the new output in
// [OutMin, OutMax]. A temperature at or above Critical gives OutMax.
//
// A non-positive dt or a non-finite temperature gives an error wrapping
// ErrInvalidStep and leaves the state unchanged. The first Step after New
// has no derivative action (there is no previous measurement) and, with a
// predictor, no heating rate: it acts on the measurement. The first Step
// after FailSafe resumes bumplessly: it returns OutMax and sets the
// integral so that the output falls away from the ceiling smoothly; the
// predictor starts afresh from it.
func (p *PID) Step(dt time.Duration, measured units.Celsius) (float64, error) {
	y := float64(measured)
	if dt <= 0 {
		return p.out, fmt.Errorf("%w: interval %v is not positive", ErrInvalidStep, dt)
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return p.out, fmt.Errorf("%w: temperature %v is not a finite number", ErrInvalidStep, y)
	}
	g := &p.cfg.Gains
	if p.failSafe {
		p.failSafe = false
		p.deriv = 0
		p.pred.reset()
		p.prev, p.cv, p.hasPrev = y, y, true
		// Bumpless from the ceiling. When hot, the proportional term
		// alone may hold the output at OutMax; the integral is then not
		// set below OutMin, the lowest value it holds in steady state.
		p.integ = max(p.cfg.OutMax-proportional(*g, y, p.cfg.Setpoint), p.cfg.OutMin)
		p.out = p.cfg.OutMax
		return p.out, nil
	}

	h := dt.Seconds()
	if p.hasPrev {
		p.pred.observe(p.cfg.Predictor, dt, p.prev, y)
	}
	cv := p.pred.predict(p.cfg.Predictor, y)
	if p.hasPrev && g.Kd > 0 {
		// Backward-Euler discretisation of Kd·s/(1+Tf·s) on the
		// controlled variable: stable for every dt, exact limit
		// Kd·Δy/dt at Tf=0.
		tf := g.DerivativeFilter.Seconds()
		p.deriv = (tf*p.deriv + g.Kd*(cv-p.cv)) / (tf + h)
	} else {
		p.deriv = 0
	}
	p.prev, p.cv, p.hasPrev = y, cv, true
	y = cv

	e := y - float64(p.cfg.Setpoint)
	prop := proportional(*g, y, p.cfg.Setpoint)
	if g.Ki > 0 && (g.IntegralBand == 0 || math.Abs(e) <= float64(g.IntegralBand)) {
		inc := g.Ki * e * h
		u := prop + p.integ + p.deriv
		switch {
		case inc > 0:
			inc = max(0, min(inc, p.cfg.OutMax-u))
		case inc < 0:
			inc = min(0, max(inc, p.cfg.OutMin-u))
		}
		p.integ += inc
	}

	out := p.clamp(prop + p.integ + p.deriv)
	if measured >= p.cfg.Critical {
		out = p.cfg.OutMax
	}
	p.pred.publish(p.cfg.Predictor, p.out, out)
	p.out = out
	return p.out, nil
}

// SetSetpoint changes the setpoint bumplessly: the integral absorbs the
// change in the proportional term, so the output at the last measured
// temperature does not jump, and the loop moves to the new setpoint at the
// pace of its integral action. A setpoint at or above Critical gives an
// error wrapping ErrInvalidConfig and changes nothing.
func (p *PID) SetSetpoint(sp units.Celsius) error {
	if err := checkSetpoint(sp, p.cfg.Critical); err != nil {
		return err
	}
	if p.hasPrev && !p.failSafe {
		p.integ += proportional(p.cfg.Gains, p.cv, p.cfg.Setpoint) -
			proportional(p.cfg.Gains, p.cv, sp)
	}
	p.cfg.Setpoint = sp
	return nil
}

// Retune replaces the gains bumplessly: the derivative state is rescaled to
// the new Kd and the integral is set so that the new gains give, at the last
// measured temperature, the output last returned. Invalid gains give an
// error wrapping ErrInvalidConfig and change nothing.
func (p *PID) Retune(g Gains) error {
	if err := g.validate(); err != nil {
		return err
	}
	if p.cfg.Kd > 0 {
		p.deriv *= g.Kd / p.cfg.Kd
	} else {
		p.deriv = 0
	}
	if p.hasPrev && !p.failSafe {
		p.integ = p.out - proportional(g, p.cv, p.cfg.Setpoint) - p.deriv
	}
	p.cfg.Gains = g
	return nil
}

// SetPredictor replaces the predictor bumplessly: like SetSetpoint, the
// integral absorbs the change in the proportional term between the old and
// the new prediction at the last measurement, so the output does not jump.
// The heating rate and the outputs in flight are kept whether or not a
// predictor is on, so it can be switched on at any time. An invalid
// predictor gives an error wrapping ErrInvalidConfig and changes nothing.
func (p *PID) SetPredictor(pr Predictor) error {
	if err := pr.validate(); err != nil {
		return err
	}
	if p.hasPrev && !p.failSafe {
		cv := p.pred.predict(pr, p.prev)
		p.integ += proportional(p.cfg.Gains, p.cv, p.cfg.Setpoint) -
			proportional(p.cfg.Gains, cv, p.cfg.Setpoint)
		p.cv = cv
	}
	p.cfg.Predictor = pr
	return nil
}

// FailSafe drives the output to OutMax and returns it: the case of a failed
// temperature sensor, where the price goes to its ceiling. The controller
// stays there until the next successful Step, which resumes bumplessly from
// OutMax.
func (p *PID) FailSafe() float64 {
	p.failSafe = true
	p.out = p.cfg.OutMax
	return p.out
}
