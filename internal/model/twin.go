package model

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// ErrBadParam means a model parameter is out of its physical range: not a
// finite number, not positive where it must be, or inconsistent with another.
var ErrBadParam = errors.New("model: bad parameter")

// absoluteZero is 0 K in degrees Celsius.
const absoluteZero units.Celsius = -273.15

// TwinParams are the parameters of a first-order thermal RC model.
type TwinParams struct {
	// Ambient is the temperature the package relaxes to with no power,
	// in °C.
	Ambient units.Celsius
	// R is the thermal resistance from the package to ambient, in K/W.
	R float64
	// C is the heat capacity of the package, in J/K.
	C float64
}

// Validate reports whether p describes a physical RC circuit: R and C
// finite and positive, τ = R·C representable as a time.Duration, and
// Ambient finite and above absolute zero. Errors wrap ErrBadParam.
func (p TwinParams) Validate() error {
	if !finite(p.R) || p.R <= 0 {
		return fmt.Errorf("%w: thermal resistance R = %v K/W, want finite and > 0", ErrBadParam, p.R)
	}
	if !finite(p.C) || p.C <= 0 {
		return fmt.Errorf("%w: heat capacity C = %v J/K, want finite and > 0", ErrBadParam, p.C)
	}
	tau := p.R * p.C
	if !(tau > 0) || tau*1e9 > math.MaxInt64 {
		return fmt.Errorf("%w: time constant R·C = %v s is not representable", ErrBadParam, tau)
	}
	if !finite(float64(p.Ambient)) || p.Ambient <= absoluteZero {
		return fmt.Errorf("%w: ambient %v °C, want finite and above absolute zero", ErrBadParam, float64(p.Ambient))
	}
	return nil
}

// Tau returns the time constant τ = R·C, rounded to the nanosecond.
func (p TwinParams) Tau() time.Duration {
	return time.Duration(math.Round(p.R * p.C * 1e9))
}

// SteadyState returns the temperature the model settles at under constant
// power pw: T∞ = Ambient + pw·R.
func (p TwinParams) SteadyState(pw units.Power) units.Celsius {
	return p.Ambient + units.Celsius(float64(pw)*p.R)
}

// String names the model and its parameters, for sensors.Source.Model.
func (p TwinParams) String() string {
	return fmt.Sprintf("rc-twin(R=%.4g K/W, C=%.4g J/K, τ=%.4g s, ambient=%.4g °C)",
		p.R, p.C, p.R*p.C, float64(p.Ambient))
}

// Twin is a first-order thermal RC model of a CPU package: a heat capacity C
// joined to ambient through a thermal resistance R and heated by power P,
//
//	C·dT/dt = P − (T − Ambient)/R.
//
// Twin is a pure value: it has no clock and does no I/O; the caller says how
// much time passes in each Step. It is not safe for concurrent use.
type Twin struct {
	p    TwinParams
	tau  float64 // seconds
	temp units.Celsius
}

// NewTwin returns a twin with parameters p, starting at p.Ambient.
func NewTwin(p TwinParams) (*Twin, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Twin{p: p, tau: p.R * p.C, temp: p.Ambient}, nil
}

// Params returns the twin's parameters.
func (t *Twin) Params() TwinParams { return t.p }

// Tau returns the time constant τ = R·C, rounded to the nanosecond.
func (t *Twin) Tau() time.Duration { return t.p.Tau() }

// Temperature returns the current modelled temperature.
func (t *Twin) Temperature() units.Celsius { return t.temp }

// SteadyState returns the temperature the twin settles at under constant
// power p: Ambient + p·R.
func (t *Twin) SteadyState(p units.Power) units.Celsius { return t.p.SteadyState(p) }

// Reset sets the modelled temperature to c, e.g. to start from a reading
// taken when the model was switched on. A non-finite c or one at or below
// absolute zero is ignored.
func (t *Twin) Reset(c units.Celsius) {
	if finite(float64(c)) && c > absoluteZero {
		t.temp = c
	}
}

// Step advances the twin by dt under power p held constant over dt, and
// returns the new temperature. It uses the exact solution of the ODE for
// constant power, not an Euler step, so the result does not depend on how
// an interval is cut into steps:
//
//	T ← T∞ + (T − T∞)·exp(−dt/τ),  T∞ = Ambient + p·R.
//
// A dt ≤ 0 is a no-op (time does not run backwards; a zero step changes
// nothing). A p that is negative, NaN or infinite is not a power a CPU can
// dissipate; Step then leaves the state unchanged too. Either way Step
// returns the current temperature.
func (t *Twin) Step(dt time.Duration, p units.Power) units.Celsius {
	if dt <= 0 || !finite(float64(p)) || p < 0 {
		return t.temp
	}
	inf := t.p.SteadyState(p)
	decay := math.Exp(-dt.Seconds() / t.tau)
	t.temp = inf + (t.temp-inf)*units.Celsius(decay)
	return t.temp
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
