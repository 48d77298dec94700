package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/maxwellhq/maxwell/internal/units"
)

// ErrBadUtilisation means a utilisation figure is not a number.
var ErrBadUtilisation = errors.New("model: utilisation is not a number")

// Reference is a published wall-power measurement of a real server, the
// basis of a LinearPower model.
type Reference struct {
	// Name identifies the system under test.
	Name string
	// Citation says where the figures were published (a URL or a result
	// id), so that anyone can check them.
	Citation string
	// IdleWatts is the average power at active idle, in W.
	IdleWatts float64
	// MaxWatts is the average power at 100% target load, in W.
	MaxWatts float64
	// HardwareThreads is the number of hardware threads of the system
	// under test: chips × cores per chip × threads per core.
	HardwareThreads int
}

// Validate reports whether r can serve as a basis for LinearPower: a name,
// a citation, 0 ≤ IdleWatts ≤ MaxWatts (finite) and HardwareThreads > 0.
// Errors wrap ErrBadParam.
func (r Reference) Validate() error {
	switch {
	case r.Name == "":
		return fmt.Errorf("%w: reference has no name", ErrBadParam)
	case r.Citation == "":
		return fmt.Errorf("%w: reference %q has no citation", ErrBadParam, r.Name)
	case !finite(r.IdleWatts) || r.IdleWatts < 0:
		return fmt.Errorf("%w: reference %q idle %v W, want finite and ≥ 0", ErrBadParam, r.Name, r.IdleWatts)
	case !finite(r.MaxWatts) || r.MaxWatts < r.IdleWatts:
		return fmt.Errorf("%w: reference %q max %v W, want finite and ≥ idle %v W", ErrBadParam, r.Name, r.MaxWatts, r.IdleWatts)
	case r.HardwareThreads <= 0:
		return fmt.Errorf("%w: reference %q has %d hardware threads", ErrBadParam, r.Name, r.HardwareThreads)
	}
	return nil
}

// LinearPower estimates the power drawn by a set of CPUs from their
// utilisation u ∈ [0, 1] as the straight line between idle and full load:
//
//	P(u) = Idle + (Max − Idle)·u.
//
// The model is linear by assumption; real servers are close to linear in
// the middle of the range and not at its ends (see the reference's own
// 10%–90% figures).
type LinearPower struct {
	// Idle is the power at zero utilisation, in W.
	Idle units.Power
	// Max is the power at full utilisation, in W.
	Max units.Power
	// Basis says where Idle and Max come from, for Describe.
	Basis string
}

// NewLinearPower returns a LinearPower with the given figures after
// checking that 0 ≤ idle ≤ max and both are finite. Errors wrap ErrBadParam.
func NewLinearPower(idle, max units.Power, basis string) (LinearPower, error) {
	l := LinearPower{Idle: idle, Max: max, Basis: basis}
	if err := l.Validate(); err != nil {
		return LinearPower{}, err
	}
	return l, nil
}

// Validate reports whether 0 ≤ Idle ≤ Max and both are finite. Errors wrap
// ErrBadParam.
func (l LinearPower) Validate() error {
	if !finite(float64(l.Idle)) || l.Idle < 0 {
		return fmt.Errorf("%w: idle power %v W, want finite and ≥ 0", ErrBadParam, float64(l.Idle))
	}
	if !finite(float64(l.Max)) || l.Max < l.Idle {
		return fmt.Errorf("%w: max power %v W, want finite and ≥ idle %v W", ErrBadParam, float64(l.Max), float64(l.Idle))
	}
	return nil
}

// ForHost scales ref to a host (or a slice of one) with cpus hardware
// threads, giving each thread an equal share of the reference server's
// wall power:
//
//	Idle = ref.IdleWatts · cpus / ref.HardwareThreads
//	Max  = ref.MaxWatts  · cpus / ref.HardwareThreads
//
// This is a scaling assumption, not a measurement: it charges each thread
// its share of the whole server (fans, memory, disks, power-supply losses
// included), and it is only as good as the similarity between the host and
// the reference. Errors wrap ErrBadParam.
func ForHost(ref Reference, cpus int) (LinearPower, error) {
	if err := ref.Validate(); err != nil {
		return LinearPower{}, err
	}
	if cpus <= 0 {
		return LinearPower{}, fmt.Errorf("%w: %d CPUs, want > 0", ErrBadParam, cpus)
	}
	share := float64(cpus) / float64(ref.HardwareThreads)
	basis := fmt.Sprintf("ref: %s <%s>, scaled %d/%d hardware threads",
		ref.Name, ref.Citation, cpus, ref.HardwareThreads)
	return NewLinearPower(units.Power(ref.IdleWatts*share), units.Power(ref.MaxWatts*share), basis)
}

// Power returns the modelled power at utilisation u. A u outside [0, 1]
// (infinities included) is clamped to the range; a NaN u is an error
// wrapping ErrBadUtilisation, and the power returned with it is Idle.
func (l LinearPower) Power(u float64) (units.Power, error) {
	if math.IsNaN(u) {
		return l.Idle, fmt.Errorf("%w: %v", ErrBadUtilisation, u)
	}
	u = math.Min(math.Max(u, 0), 1)
	return l.Idle + (l.Max-l.Idle)*units.Power(u), nil
}

// Describe names the model and its parameters, for sensors.Source.Model.
func (l LinearPower) Describe() string {
	s := fmt.Sprintf("linear-utilisation(idle=%.4g W, max=%.4g W", float64(l.Idle), float64(l.Max))
	if l.Basis != "" {
		s += "; " + l.Basis
	}
	return s + ")"
}
