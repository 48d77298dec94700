package control

import (
	"fmt"
	"math"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Predictor configures a PID's model-based predictor. With a predictor the
// PID acts not on the temperature measured now but on ŷ, the temperature
// the identified model predicts for Horizon ahead: the moment at which an
// output published now starts to act on the host.
//
// The host's thermal part is first order, C·dT/dt = P − (T − Ambient)/R,
// so its state is the temperature and the power it is heating with now
// shows in the heating rate: P − (T − Ambient)/R = C·dT/dt. Held constant
// for a time h, that power takes the temperature to
//
//	T(t+h) = T + τ·(1 − e^(−h/τ))·dT/dt,
//
// with no need to know R, C, the ambient or the power itself. The predictor
// adds the effect, by time t+h, of the outputs published within the last h
// that the agents have not yet reacted to (the Smith predictor's in-flight
// term): an output change Δu made a time a ago acts from a time h − a from
// now, and by t+h has moved the temperature by Gain·Δu·(1 − e^(−a/τ)).
//
// A predictor that knew the model exactly would take the dead time out of
// the loop, which can then be tuned as if it had none (PredictiveGains).
// The heating rate is what lets the price rise while the temperature is
// still approaching the setpoint, before it crosses.
type Predictor struct {
	// Horizon is how far ahead to predict: the loop's dead time θ, the
	// time the agents take to react to a new price. Zero turns the
	// predictor off: the PID then acts on the measurement.
	Horizon time.Duration
	// Tau is the thermal time constant τ of the host.
	Tau time.Duration
	// Lead is how much further than Horizon to look. Zero predicts the
	// temperature at the moment an output published now starts to act.
	Lead time.Duration
	// Gain is the loop's steady-state gain in kelvin per unit of output
	// (negative for the price loop: a higher price cools the host), used
	// for the outputs still in flight. Zero leaves them out.
	Gain float64
	// Knee is the output up to which the agents' demand does not respond
	// to it: the highest value any agent puts on CPU time, in multiplier
	// units. Output changes below it are not counted in flight. Zero
	// means demand responds to every change.
	Knee float64
	// RateFilter is the time constant of the first-order low-pass filter
	// on the measured heating rate dT/dt. Zero means no filter; a real
	// thermometer that reads in whole degrees needs one of a few
	// sampling intervals.
	RateFilter time.Duration
}

// PredictorFor returns the predictor for a loop identified as m (price
// multiplier → °C, fitted by FitFOPDT from a multiplier step): horizon θ,
// thermal time constant τ and gain K, with no rate filter.
func PredictorFor(m FOPDT) Predictor {
	return Predictor{Horizon: m.Theta, Tau: m.Tau, Gain: m.K}
}

// enabled reports whether p predicts at all.
func (p Predictor) enabled() bool { return p.Horizon > 0 }

func (p Predictor) validate() error {
	switch {
	case p.Horizon < 0:
		return fmt.Errorf("%w: predictor horizon %v is negative", ErrInvalidConfig, p.Horizon)
	case p.RateFilter < 0:
		return fmt.Errorf("%w: predictor rate filter %v is negative", ErrInvalidConfig, p.RateFilter)
	case math.IsNaN(p.Gain) || math.IsInf(p.Gain, 0):
		return fmt.Errorf("%w: predictor gain %v is not a finite number", ErrInvalidConfig, p.Gain)
	case math.IsNaN(p.Knee) || math.IsInf(p.Knee, 0):
		return fmt.Errorf("%w: predictor knee %v is not a finite number", ErrInvalidConfig, p.Knee)
	case p.enabled() && p.Tau <= 0:
		return fmt.Errorf("%w: predictor time constant %v is not positive", ErrInvalidConfig, p.Tau)
	}
	return nil
}

// maxInFlight bounds the output changes a predictor remembers. With more
// than this many steps inside one horizon the oldest are forgotten early,
// as if the agents had already reacted to them.
const maxInFlight = 64

// inFlight is an output change the agents have not yet reacted to.
type inFlight struct {
	age   time.Duration
	delta float64
}

// prediction is the predictor's state: the filtered heating rate and the
// output changes in flight.
type prediction struct {
	rate    float64 // K/s, filtered: Δy/h over the intervals observed
	hasRate bool
	last    time.Duration // the last interval observed
	flight  [maxInFlight]inFlight
	n       int // changes in flight: flight[:n], oldest first
}

// observe updates the heating-rate estimate with a new measurement y taken
// dt after prev, and ages the outputs in flight by dt.
func (s *prediction) observe(p Predictor, dt time.Duration, prev, y float64) {
	h := dt.Seconds()
	raw := (y - prev) / h
	if tf := p.RateFilter.Seconds(); s.hasRate && tf > 0 {
		s.rate = (tf*s.rate + h*raw) / (tf + h)
	} else {
		s.rate = raw
	}
	s.hasRate = true
	s.last = dt
	kept := 0
	for _, f := range s.flight[:s.n] {
		f.age += dt
		if f.age < p.Horizon+dt {
			s.flight[kept] = f
			kept++
		}
	}
	clear(s.flight[kept:s.n])
	s.n = kept
}

// publish records an output change from prev to out made now.
func (s *prediction) publish(p Predictor, prev, out float64) {
	delta := max(out, p.Knee) - max(prev, p.Knee)
	if delta == 0 {
		return
	}
	if s.n == maxInFlight {
		copy(s.flight[:], s.flight[1:])
		s.n--
	}
	s.flight[s.n] = inFlight{delta: delta}
	s.n++
}

// predict returns ŷ for measurement y.
func (s *prediction) predict(p Predictor, y float64) float64 {
	if !p.enabled() {
		return y
	}
	tau := p.Tau.Seconds()
	ahead := (p.Horizon + p.Lead).Seconds()
	reach := -math.Expm1(-ahead / tau) // 1 − e^(−(θ+L)/τ)
	yh := y
	if s.hasRate {
		// Under a power held over an interval h, a first-order host
		// closes the gap to its steady state T∞ by the fraction
		// 1 − e^(−h/τ): Δy = (T∞ − prev)·(1 − e^(−h/τ)), so T∞ − y is
		// Δy·e^(−h/τ)/(1 − e^(−h/τ)), τ·dT/dt in the limit of small h.
		h := s.last.Seconds()
		gap := s.rate * h * math.Exp(-h/tau) / -math.Expm1(-h/tau)
		yh += reach * gap
	}
	if p.Gain == 0 {
		return yh
	}
	for _, f := range s.flight[:s.n] {
		if f.age <= p.Horizon {
			// Acts from Horizon − age from now.
			yh += p.Gain * f.delta * -math.Expm1(-(f.age+p.Lead).Seconds()/tau)
			continue
		}
		// Began to act age − Horizon ago, within the last interval,
		// whose heating the gap holds only in part.
		w := 1 - (f.age-p.Horizon).Seconds()/s.last.Seconds()
		yh += w * p.Gain * f.delta * reach
	}
	return yh
}

// reset forgets the heating rate and the outputs in flight.
func (s *prediction) reset() {
	*s = prediction{}
}

// PredictiveGains tunes the price controller for use with a predictor on
// the loop m (price multiplier → °C, negative gain, identified by
// FitFOPDT from a multiplier step), stepped every interval. With the dead
// time predicted away the loop is K/(τs+1), and SIMC for it gives
//
//	Kc = τ/(|K|·τc),  τI = min(τ, 4·τc).
//
// What dead time remains is the sampling: half an interval for the price
// held over the tick, half for the heating rate measured as a difference
// over the last one. A non-positive tauC therefore selects τc = interval,
// SIMC's τc = θ for that effective dead time. It returns PI gains and
// PredictorFor(m); the caller adds the agents' Knee if it has one. Errors
// wrap ErrBadModel, or ErrInvalidConfig for a non-positive interval.
func PredictiveGains(m FOPDT, interval, tauC time.Duration) (Gains, Predictor, error) {
	if err := m.validate(); err != nil {
		return Gains{}, Predictor{}, err
	}
	if m.K > 0 {
		return Gains{}, Predictor{}, fmt.Errorf("%w: gain %v K per unit multiplier is positive; a price loop needs a higher price to cool the host", ErrBadModel, m.K)
	}
	if interval <= 0 {
		return Gains{}, Predictor{}, fmt.Errorf("%w: interval %v is not positive", ErrInvalidConfig, interval)
	}
	if tauC <= 0 {
		tauC = interval
	}
	kp := m.Tau.Seconds() / (-m.K * tauC.Seconds())
	ti := min(m.Tau, 4*tauC)
	return Gains{Kp: kp, Ki: kp / ti.Seconds()}, PredictorFor(m), nil
}

// Knee estimates the agents' knee (see Predictor.Knee) from two steady
// states of the host under full desire: full, the temperature with the
// price at cost (multiplier base, normally 1), and steady, the temperature
// with the price held at at, inside the range where demand follows price
// (the operating point of the multiplier step that identified m). Demand
// is taken to fall linearly with the price above the knee, as m's gain
// says, and not at all below it:
//
//	knee = at − (full − steady)/|K|.
//
// A knee at or below base (demand follows every price) is returned as 0.
// Errors wrap ErrBadModel for an unusable m or ErrInvalidConfig for
// non-finite figures or at ≤ base.
func Knee(m FOPDT, base, at float64, full, steady units.Celsius) (float64, error) {
	if err := m.validate(); err != nil {
		return 0, err
	}
	for _, v := range []float64{base, at, float64(full), float64(steady)} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("%w: knee from %v, %v, %v °C, %v °C: not finite", ErrInvalidConfig, base, at, float64(full), float64(steady))
		}
	}
	if at <= base {
		return 0, fmt.Errorf("%w: operating point %v is not above the base price %v", ErrInvalidConfig, at, base)
	}
	k := at - float64(full-steady)/math.Abs(m.K)
	if k <= base {
		return 0, nil
	}
	return min(k, at), nil
}
