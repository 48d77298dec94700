package model

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"fmt"
	"math"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

// UtilisationSampler returns the utilisation, in [0, 1], of a set of CPUs
// since its previous call. CPUSampler is one.
type UtilisationSampler interface {
	Sample() (float64, error)
}

// Snapshot is the state of an Estimator at one instant.
type Snapshot struct {
	// At is when the estimator last advanced.
	At time.Time
	// Utilisation is the CPU utilisation over the last interval, in
	// [0, 1]; meaningful only when UtilisationKnown.
	Utilisation      float64
	UtilisationKnown bool
	// Power is the mean power over the last interval, in W: estimated
	// from Utilisation, or measured from a real energy counter.
	Power units.Power
	// Energy is the cumulative energy reading, in µJ, from an arbitrary
	// origin.
	Energy units.Energy
	// Temperature is the twin's modelled package temperature, in °C.
	Temperature units.Celsius
}

// Estimator stands in for the power and temperature sensors a host lacks.
// It feeds a power figure into a thermal Twin and integrates it into a
// cumulative energy reading. The power comes either from a
// UtilisationSampler through a LinearPower model (NewEstimator) or, on a
// host with a real energy counter but no thermometer, from that counter
// (NewCounterEstimator).
//
// The estimator advances lazily: every read first brings it up to the
// clock's current time, treating the power over the interval since the
// previous advance as constant. Reads at the same instant therefore return
// the same figures and sample nothing twice; a clock that goes backwards is
// ignored until it passes the last instant seen.
//
// Estimator implements sensors.EnergyCounter; Thermometer returns its
// sensors.Thermometer. It is safe for concurrent use.
type Estimator struct {
	clock   clock.Clock
	util    UtilisationSampler    // linear mode
	linear  LinearPower           // linear mode
	counter sensors.EnergyCounter // counter mode, nil in linear mode

	energySrc, tempSrc sensors.Source

	mu     sync.Mutex
	twin   *Twin
	at     time.Time
	accUJ  float64      // linear mode: energy integrated so far, µJ
	energy units.Energy // counter mode: last counter reading
	snap   Snapshot
}

// NewEstimator returns an estimator of the power of the CPUs util samples,
// by the model power, and of their temperature, by a Twin with parameters
// twin. Its energy reading starts at 0 and its twin at the steady state of
// idle power (a host at rest, not one just switched on), at
// clock.Now().
func NewEstimator(clock clock.Clock, util UtilisationSampler, power LinearPower, twin TwinParams) (*Estimator, error) {
	if clock == nil || util == nil {
		return nil, fmt.Errorf("%w: estimator needs a clock and a utilisation sampler", ErrBadParam)
	}
	if err := power.Validate(); err != nil {
		return nil, err
	}
	t, err := NewTwin(twin)
	if err != nil {
		return nil, err
	}
	e := &Estimator{
		clock:  clock,
		util:   util,
		linear: power,
		twin:   t,
		energySrc: sensors.Source{
			Kind:     sensors.KindModel,
			Quantity: sensors.QuantityEnergy,
			Name:     "linear-utilisation",
			Tier:     sensors.TierModel,
			Model:    power.Describe(),
		},
		tempSrc: sensors.Source{
			Kind:     sensors.KindModel,
			Quantity: sensors.QuantityTemperature,
			Name:     "rc-twin",
			Tier:     sensors.TierModel,
			Model:    power.Describe() + " + " + twin.String(),
		},
	}
	t.Reset(t.SteadyState(power.Idle))
	e.at = clock.Now()
	e.snap = Snapshot{At: e.at, Power: power.Idle, Temperature: t.Temperature()}
	return e, nil
}

// NewCounterEstimator returns an estimator whose twin is driven by the mean
// power measured by counter between advances. Its energy reading and Source
// are the counter's own: they are measurements, not estimates; only the
// temperature is modelled. It reads the counter once, at clock.Now(), as
// its baseline.
func NewCounterEstimator(clock clock.Clock, counter sensors.EnergyCounter, twin TwinParams) (*Estimator, error) {
	if clock == nil || counter == nil {
		return nil, fmt.Errorf("%w: estimator needs a clock and an energy counter", ErrBadParam)
	}
	t, err := NewTwin(twin)
	if err != nil {
		return nil, err
	}
	src := counter.Source()
	e := &Estimator{
		clock:     clock,
		counter:   counter,
		twin:      t,
		energySrc: src,
		tempSrc: sensors.Source{
			Kind:     sensors.KindModel,
			Quantity: sensors.QuantityTemperature,
			Name:     "rc-twin",
			Tier:     sensors.TierModel,
			Model:    fmt.Sprintf("measured-power(%s %q) + %s", src.Kind, src.Name, twin.String()),
		},
	}
	e.at = clock.Now()
	if e.energy, err = counter.ReadEnergy(); err != nil {
		return nil, fmt.Errorf("model: read energy counter %s: %w", src.Name, err)
	}
	e.snap = Snapshot{At: e.at, Energy: e.energy, Temperature: t.Temperature()}
	return e, nil
}

// advance brings the estimator up to now. On error the state is unchanged,
// so that the next successful advance covers the whole interval. The caller
// holds e.mu.
func (e *Estimator) advance(now time.Time) error {
	dt := now.Sub(e.at)
	if dt <= 0 {
		return nil
	}
	var p units.Power
	if e.counter == nil {
		u, err := e.util.Sample()
		if err != nil {
			return fmt.Errorf("model: sample utilisation: %w", err)
		}
		if p, err = e.linear.Power(u); err != nil {
			return err
		}
		u = math.Min(math.Max(u, 0), 1)
		// W × ns = nJ; / 1e3 = µJ. float64(dt) is exact below 2^53 ns.
		e.accUJ += float64(p) * float64(dt) / 1e3
		e.snap.Utilisation, e.snap.UtilisationKnown = u, true
		e.snap.Energy = units.Energy(math.Round(e.accUJ))
	} else {
		cur, err := e.counter.ReadEnergy()
		if err != nil {
			return fmt.Errorf("model: read energy counter %s: %w", e.energySrc.Name, err)
		}
		var d units.Energy
		if cur > e.energy { // the counter is monotonic by contract; guard anyway
			d = cur - e.energy
		}
		p = units.AveragePower(d, dt)
		e.energy = cur
		e.snap.Energy = cur
	}
	e.twin.Step(dt, p)
	e.at = now
	e.snap.At = now
	e.snap.Power = p
	e.snap.Temperature = e.twin.Temperature()
	return nil
}

// Advance brings the estimator up to the clock's current time and returns
// its state. On error it returns the state as of the last successful
// advance.
func (e *Estimator) Advance() (Snapshot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.advance(e.clock.Now())
	return e.snap, err
}

// Last returns the state as of the last advance, without advancing: the
// last power estimate, utilisation, energy and temperature.
func (e *Estimator) Last() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snap
}

// Source describes the energy figures: a tier-3 model source naming the
// power model and its parameters, or the real counter's own Source for an
// estimator made by NewCounterEstimator.
func (e *Estimator) Source() sensors.Source { return e.energySrc }

// ReadEnergy advances the estimator and returns its cumulative energy, in
// µJ. The reading is monotonically non-decreasing.
func (e *Estimator) ReadEnergy() (units.Energy, error) {
	s, err := e.Advance()
	if err != nil {
		return 0, err
	}
	return s.Energy, nil
}

// Thermometer returns a sensors.Thermometer reading the twin's temperature,
// with a tier-3 Source naming both the power source and the twin's
// parameters.
func (e *Estimator) Thermometer() sensors.Thermometer { return twinThermometer{e} }

type twinThermometer struct{ e *Estimator }

func (t twinThermometer) Source() sensors.Source { return t.e.tempSrc }

func (t twinThermometer) ReadTemperature() (units.Celsius, error) {
	s, err := t.e.Advance()
	if err != nil {
		return 0, err
	}
	return s.Temperature, nil
}
