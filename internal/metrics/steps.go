package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/maxwellhq/maxwell/internal/engine"
)

// Phases of a tick's work (maxwell_tick_phase_seconds), as engine.Step
// times them.
const (
	phaseMeasure = "measure"
	phaseDecide  = "decide"
	phasePost    = "post"
	phaseApply   = "apply"
)

// latencyBuckets are the bounds, in seconds, of the tick work histograms:
// a tick's work is a few milliseconds on an idle host, and anything near
// the tick's length (100 ms by default) delays the next tick.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// intervalFactors are the bounds of the tick interval histogram, in
// configured tick lengths.
var intervalFactors = []float64{0.5, 0.9, 0.95, 0.99, 1.01, 1.05, 1.1, 1.25, 1.5, 2, 3, 5, 10}

// steps are the histograms of how each tick went.
type steps struct {
	latency  prometheus.Histogram
	phases   *prometheus.HistogramVec
	interval prometheus.Histogram
}

func newSteps(tick time.Duration) *steps {
	ib := make([]float64, len(intervalFactors))
	for i, f := range intervalFactors {
		ib[i] = f * tick.Seconds()
	}
	st := &steps{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "maxwell_tick_latency_seconds",
			Help:    "How long each tick's work took, in seconds, measured by the daemon's clock from the tick's wake-up to its end (measure, decide, post to the ledger, apply, and the next auction's quotes).",
			Buckets: latencyBuckets,
		}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "maxwell_tick_phase_seconds",
			Help:    `How long each phase of a tick's work took, in seconds: phase="measure" (sensors and every cell), "decide" (the auction and the wallets), "post" (the ledger transaction), "apply" (freezing and thawing the cells).`,
			Buckets: latencyBuckets,
		}, []string{"phase"}),
		interval: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "maxwell_tick_interval_seconds",
			Help:    "Time between one tick's wake-up and the next's, in seconds: the tick lengths as they happened (maxwell_tick_configured_seconds is the one configured); buckets are multiples of the configured tick.",
			Buckets: ib,
		}),
	}
	for _, p := range []string{phaseMeasure, phaseDecide, phasePost, phaseApply} {
		st.phases.WithLabelValues(p) // every phase's series from the start
	}
	return st
}

// ObserveStep records how one tick went. It is an economy.Options.OnStep
// (engine.Driver.OnStep): called from the tick loop, it does not block.
func (x *Exporter) ObserveStep(s engine.Step) {
	st := x.steps
	st.latency.Observe(s.Total.Seconds())
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{phaseMeasure, s.Measure}, {phaseDecide, s.Decide}, {phasePost, s.Post}, {phaseApply, s.Apply}} {
		st.phases.WithLabelValues(p.name).Observe(p.d.Seconds())
	}
	if s.Interval > 0 {
		st.interval.Observe(s.Interval.Seconds())
	}
}
