package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Errors returned by plant identification and tuning.
var (
	// ErrTooShort means a record has too few samples, or does not run long
	// enough after the step for the time constant to be told apart from the
	// gain.
	ErrTooShort = errors.New("control: step record too short")
	// ErrNoResponse means the output did not respond to the step
	// distinguishably from noise, or the input did not step at all.
	ErrNoResponse = errors.New("control: no step response")
	// ErrBadSamples means a record holds non-finite values or times that do
	// not strictly increase.
	ErrBadSamples = errors.New("control: malformed samples")
	// ErrBadModel means a model cannot be tuned for: a zero or non-finite
	// gain, a non-positive time constant, a negative dead time, or a gain of
	// the wrong sign for the loop.
	ErrBadModel = errors.New("control: unusable plant model")
)

// Sample is one point of a recorded step experiment.
type Sample struct {
	// T is the time of the sample from any fixed origin; it must increase
	// strictly from one sample to the next.
	T time.Duration
	// Input is the plant input: power in watts for a load step, or the
	// price multiplier for a price step.
	Input float64
	// Output is the measured temperature in °C.
	Output float64
}

// FOPDT is a first-order-plus-dead-time model of a plant,
//
//	G(s) = K·e^(−θs) / (τs + 1).
type FOPDT struct {
	// K is the steady-state gain: kelvin per watt for a power input,
	// kelvin per unit of multiplier for a price input (negative: a higher
	// price cools the host).
	K float64
	// Tau is the time constant τ.
	Tau time.Duration
	// Theta is the dead time θ.
	Theta time.Duration
}

// StepResponse returns the model's output change (K) a time t after an input
// step of size stepSize: 0 before θ, then K·stepSize·(1 − e^(−(t−θ)/τ)).
func (m FOPDT) StepResponse(t time.Duration, stepSize float64) float64 {
	return m.K * stepSize * unitResponse((t-m.Theta).Seconds(), m.Tau.Seconds())
}

func unitResponse(t, tau float64) float64 {
	if t <= 0 {
		return 0
	}
	if tau <= 0 {
		return 1
	}
	return -math.Expm1(-t / tau)
}

func (m FOPDT) validate() error {
	switch {
	case m.K == 0 || math.IsNaN(m.K) || math.IsInf(m.K, 0):
		return fmt.Errorf("%w: gain K = %v", ErrBadModel, m.K)
	case m.Tau <= 0:
		return fmt.Errorf("%w: time constant τ = %v is not positive", ErrBadModel, m.Tau)
	case m.Theta < 0:
		return fmt.Errorf("%w: dead time θ = %v is negative", ErrBadModel, m.Theta)
	}
	return nil
}

type fopdtJSON struct {
	K            float64 `json:"k"`
	TauSeconds   float64 `json:"tau_s"`
	ThetaSeconds float64 `json:"theta_s"`
}

// MarshalJSON encodes m as {"k":…, "tau_s":…, "theta_s":…}, times in
// seconds.
func (m FOPDT) MarshalJSON() ([]byte, error) {
	return json.Marshal(fopdtJSON{m.K, m.Tau.Seconds(), m.Theta.Seconds()})
}

// UnmarshalJSON decodes the form written by MarshalJSON.
func (m *FOPDT) UnmarshalJSON(b []byte) error {
	var w fopdtJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = FOPDT{K: w.K, Tau: seconds(w.TauSeconds), Theta: seconds(w.ThetaSeconds)}
	return nil
}

func seconds(s float64) time.Duration {
	if math.IsNaN(s) || s > math.MaxInt64/1e9 || s < math.MinInt64/1e9 {
		return 0 // caught by validation as a non-positive τ
	}
	return time.Duration(math.Round(s * 1e9))
}

// Series returns an FOPDT approximation of two FOPDT plants in series (for
// example the agents' reaction, multiplier → watts, followed by the host's
// thermal response, watts → °C) by Skogestad's half rule: the smaller time
// constant is split evenly between the larger one and the dead time.
func Series(a, b FOPDT) FOPDT {
	big, small := a.Tau, b.Tau
	if small > big {
		big, small = small, big
	}
	return FOPDT{
		K:     a.K * b.K,
		Tau:   big + small/2,
		Theta: a.Theta + b.Theta + small/2,
	}
}

// Identification limits.
const (
	minPostSamples = 10
	// minCoverage is how many time constants past the dead time a record
	// must run: below about two, the gain and the time constant trade off
	// against each other and neither is trustworthy.
	minCoverage = 2.0
	// minR2 is the least share of the output's variance the fitted step
	// must explain for the record to count as a step response.
	minR2 = 0.5
	// coarseMax bounds the samples used by the coarse grid search.
	coarseMax = 600
)

// FitFOPDT fits a first-order-plus-dead-time model to a step response: the
// input stepped by stepSize at time stepAt (on the samples' clock). If
// stepSize is 0 it is taken from the samples' Input as the mean after the
// step less the mean before it.
//
// The fit is least squares over all four parameters (baseline, K, τ, θ).
// For fixed τ and θ the model is linear in the baseline and the gain, which
// are then solved in closed form (variable projection), so the search is
// over τ and θ only: a coarse grid (log-spaced τ, linear θ) on at most a few
// hundred evenly spread samples, then successively finer grids around the
// best point on all samples. This does not depend on the response crossing
// any particular level, so noisy records fit as well as clean ones.
// Samples at or before stepAt count towards the baseline.
//
// Errors wrap ErrBadSamples (non-finite values, times not increasing),
// ErrTooShort (fewer than 10 samples after the step, or a record that ends
// before θ + 2τ), or ErrNoResponse (no input step, or a response the step
// model explains less than half the variance of).
func FitFOPDT(samples []Sample, stepAt time.Duration, stepSize float64) (FOPDT, error) {
	if math.IsNaN(stepSize) || math.IsInf(stepSize, 0) {
		return FOPDT{}, fmt.Errorf("%w: step size %v", ErrBadSamples, stepSize)
	}
	var (
		post            int
		inPre, inPost   float64
		nPre            int
		minGap          = time.Duration(math.MaxInt64)
		ts              = make([]float64, len(samples))
		ys              = make([]float64, len(samples))
		lastT           time.Duration
		outMin, outMaxV = math.Inf(1), math.Inf(-1)
	)
	for i, s := range samples {
		if math.IsNaN(s.Output) || math.IsInf(s.Output, 0) || math.IsNaN(s.Input) || math.IsInf(s.Input, 0) {
			return FOPDT{}, fmt.Errorf("%w: sample %d (t=%v) is not finite", ErrBadSamples, i, s.T)
		}
		if i > 0 {
			if s.T <= lastT {
				return FOPDT{}, fmt.Errorf("%w: sample %d time %v does not follow %v", ErrBadSamples, i, s.T, lastT)
			}
			minGap = min(minGap, s.T-lastT)
		}
		lastT = s.T
		ts[i] = (s.T - stepAt).Seconds()
		ys[i] = s.Output
		outMin, outMaxV = min(outMin, s.Output), max(outMaxV, s.Output)
		if s.T > stepAt {
			post++
			inPost += s.Input
		} else {
			nPre++
			inPre += s.Input
		}
	}
	if post < minPostSamples {
		return FOPDT{}, fmt.Errorf("%w: %d samples after the step, need %d", ErrTooShort, post, minPostSamples)
	}
	if stepSize == 0 {
		if nPre == 0 {
			return FOPDT{}, fmt.Errorf("%w: step size not given and no samples before the step to infer it", ErrNoResponse)
		}
		stepSize = inPost/float64(post) - inPre/float64(nPre)
		if stepSize == 0 {
			return FOPDT{}, fmt.Errorf("%w: input did not step", ErrNoResponse)
		}
	}
	if outMin == outMaxV {
		return FOPDT{}, fmt.Errorf("%w: output is constant at %v", ErrNoResponse, outMin)
	}

	// Centre the outputs: the fit is unchanged, the sums are smaller.
	var mean float64
	for _, y := range ys {
		mean += y
	}
	mean /= float64(len(ys))
	var sst float64
	for i := range ys {
		ys[i] -= mean
		sst += ys[i] * ys[i]
	}

	span := ts[len(ts)-1]
	// The time constant is searched from a tenth of the sampling interval
	// to twice the record; the dead time from 0 to the whole record.
	tauLo := max(minGap.Seconds()/10, span*1e-6)
	tauHi := 2 * span

	coarse := subsample(ts, ys, coarseMax)
	best := searchGrid(coarse, 0, span*0.9, tauLo, tauHi, 48, 48)
	full := fitData{ts, ys}
	// Refine: each round searches a 9×9 grid spanning two cells of the
	// previous grid on each side of the best point, on all samples.
	thStep := span * 0.9 / 47
	lnStep := math.Log(tauHi/tauLo) / 47
	for round := range 8 {
		thLo := max(0, best.theta-2*thStep)
		thHi := min(span, best.theta+2*thStep)
		tLo := max(tauLo, best.tau*math.Exp(-2*lnStep))
		tHi := min(tauHi, best.tau*math.Exp(2*lnStep))
		// The coarse residual is over fewer samples, so the first
		// full-data round replaces it unconditionally.
		if r := searchGrid(full, thLo, thHi, tLo, tHi, 9, 9); round == 0 || r.sse <= best.sse {
			best = r
		}
		thStep /= 2
		lnStep /= 2
	}

	// Quality: how much of the output's variance the step explains.
	if r2 := 1 - best.sse/sst; !(r2 >= minR2) {
		return FOPDT{}, fmt.Errorf("%w: a step explains only %.0f%% of the output's variance", ErrNoResponse, 100*max(r2, 0))
	}
	if need := best.theta + minCoverage*best.tau; span < need {
		return FOPDT{}, fmt.Errorf("%w: record runs %.3gs after the step, need at least θ+%gτ = %.3gs (fitted τ=%.3gs, θ=%.3gs)",
			ErrTooShort, span, minCoverage, need, best.tau, best.theta)
	}
	return FOPDT{
		K:     best.gain / stepSize,
		Tau:   seconds(best.tau),
		Theta: seconds(best.theta),
	}, nil
}

type fitData struct{ t, y []float64 }

type fitPoint struct {
	theta, tau float64
	base, gain float64
	sse        float64
}

// subsample returns at most n samples spread evenly through t and y.
func subsample(t, y []float64, n int) fitData {
	if len(t) <= n {
		return fitData{t, y}
	}
	d := fitData{make([]float64, n), make([]float64, n)}
	for i := range n {
		j := i * (len(t) - 1) / (n - 1)
		d.t[i], d.y[i] = t[j], y[j]
	}
	return d
}

// searchGrid evaluates an nTh×nTau grid, θ linear in [thLo, thHi] and τ
// logarithmic in [tauLo, tauHi], and returns the best point.
func searchGrid(d fitData, thLo, thHi, tauLo, tauHi float64, nTh, nTau int) fitPoint {
	best := fitPoint{sse: math.Inf(1)}
	for i := range nTh {
		th := thLo
		if nTh > 1 {
			th += (thHi - thLo) * float64(i) / float64(nTh-1)
		}
		for j := range nTau {
			tau := tauLo
			if nTau > 1 {
				tau = tauLo * math.Pow(tauHi/tauLo, float64(j)/float64(nTau-1))
			}
			if p := evaluate(d, th, tau); p.sse < best.sse {
				best = p
			}
		}
	}
	return best
}

// evaluate solves for the baseline and gain that best fit d given θ and τ,
// and returns them with the sum of squared residuals. d.y is centred (see
// FitFOPDT), which keeps the one-pass residual free of cancellation.
func evaluate(d fitData, theta, tau float64) fitPoint {
	// Normal equations for y ≈ base + gain·g.
	var n, sg, sgg, sy, sgy, syy float64
	for i, t := range d.t {
		g := unitResponse(t-theta, tau)
		y := d.y[i]
		n++
		sg += g
		sgg += g * g
		sy += y
		sgy += g * y
		syy += y * y
	}
	p := fitPoint{theta: theta, tau: tau}
	det := n*sgg - sg*sg
	if det <= 1e-12*n*n {
		return fitPoint{theta: theta, tau: tau, sse: math.Inf(1)}
	}
	p.gain = (n*sgy - sg*sy) / det
	p.base = (sy - p.gain*sg) / n
	// At the least-squares solution the residual is Σy² − base·Σy − gain·Σgy.
	p.sse = max(0, syy-p.base*sy-p.gain*sgy)
	return p
}

// SIMC returns Skogestad's SIMC PI tuning for the FOPDT plant m with
// closed-loop time constant tauC:
//
//	Kc = τ / (K·(τc + θ)),  τI = min(τ, 4·(τc + θ)).
//
// A non-positive tauC selects τc = θ, Skogestad's choice for tight control
// with good robustness (gain margin about 3, phase margin about 47°). Kc has the sign of K and the units of 1/K (watts per kelvin, or
// multiplier per kelvin). A plant with no dead time needs an explicit
// tauC > 0. A model that cannot be tuned for gives an error wrapping
// ErrBadModel.
func SIMC(m FOPDT, tauC time.Duration) (Kc float64, TauI time.Duration, err error) {
	if err := m.validate(); err != nil {
		return 0, 0, err
	}
	if tauC <= 0 {
		tauC = m.Theta
	}
	if tauC <= 0 {
		return 0, 0, fmt.Errorf("%w: dead time is zero, so τc must be given", ErrBadModel)
	}
	sum := (tauC + m.Theta).Seconds()
	Kc = m.Tau.Seconds() / (m.K * sum)
	TauI = min(m.Tau, 4*(tauC+m.Theta))
	return Kc, TauI, nil
}

// PriceGains tunes the price controller by SIMC (see SIMC for tauC) for m,
// the plant from price multiplier to temperature, which must have a negative
// gain (a higher price cools the host); identify it with FitFOPDT from a
// multiplier step. It returns PI gains in this package's reverse-acting
// form: Kp = |Kc| and Ki = |Kc|/τI, with no derivative action.
func PriceGains(m FOPDT, tauC time.Duration) (Gains, error) {
	if m.K > 0 {
		return Gains{}, fmt.Errorf("%w: gain %v K per unit multiplier is positive; a price loop needs a higher price to cool the host", ErrBadModel, m.K)
	}
	kc, ti, err := SIMC(m, tauC)
	if err != nil {
		return Gains{}, err
	}
	kp := -kc
	return Gains{Kp: kp, Ki: kp / ti.Seconds()}, nil
}
