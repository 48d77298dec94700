// Package metrics exports the daemon's state as Prometheus metrics, and
// serves them with a liveness check. docs/METRICS.md lists every metric.
//
// An Exporter holds a registry of its own (nothing here touches the global
// one) with:
//
//   - a Collector, which reads an api.State on each scrape and turns it
//     into metrics with conventional names and base units (°C, W, J,
//     bytes, seconds; money in credits, one credit being one µJ of host
//     energy). Figures that come from a sensor or a model carry its name in
//     a "source" label, its kind and tier, and estimated="true" when a
//     model made them. Cumulative figures are counters; a dead cell's
//     series go once it has been dead for a grace period;
//   - histograms of how long each tick's work took, fed by ObserveStep
//     (economy.Options.OnStep);
//   - maxwell_build_info, and client_golang's Go and process collectors.
//
// Its Handler serves /metrics and /healthz, which reports whether the tick
// loop is alive, and 404 for every other path.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/buildinfo"
)

// StateFunc returns the daemon's state; api.Backend's State is one.
type StateFunc func(ctx context.Context) (api.State, error)

// Timeout bounds each call of the StateFunc during a scrape or a health
// check.
const Timeout = 10 * time.Second

// Defaults of Options.
const (
	// DefaultDeadGrace is how long a dead cell's series stay.
	DefaultDeadGrace = 5 * time.Minute
	// DefaultStaleTicks and MinStale: /healthz fails once no tick has been
	// decided for DefaultStaleTicks tick lengths, and never sooner than
	// MinStale (a slow ledger write or a busy host delays a tick or two).
	DefaultStaleTicks = 10
	MinStale          = 2 * time.Second
)

// Options configure an Exporter.
type Options struct {
	// State is read on each scrape and each health check.
	State StateFunc
	// DeadGrace is how long a dead cell's series stay, counted from the
	// first scrape that found it dead (by the state's time); 0 means
	// DefaultDeadGrace, a negative value drops them at once.
	DeadGrace time.Duration
	// Tick is the configured tick length: the tick-interval histogram's
	// buckets are multiples of it. 0 means the default config's 100 ms.
	Tick time.Duration
	// StaleTicks is how many tick lengths without a decided tick make
	// /healthz fail (at least MinStale); 0 means DefaultStaleTicks.
	StaleTicks int
	// Build is what maxwell_build_info reports; the zero value means
	// buildinfo.Read().
	Build buildinfo.Info
	// NoRuntime leaves out the Go and process collectors (tests that
	// compare whole expositions).
	NoRuntime bool
}

// Exporter is the daemon's metrics: its registry, the tick histograms and
// the health check. It is safe for concurrent use.
type Exporter struct {
	opts  Options
	reg   *prometheus.Registry
	coll  *Collector
	steps *steps
}

// New returns an Exporter of opts.State's metrics.
func New(opts Options) (*Exporter, error) {
	if opts.State == nil {
		return nil, errors.New("metrics: no state to export")
	}
	if opts.DeadGrace == 0 {
		opts.DeadGrace = DefaultDeadGrace
	}
	if opts.Tick <= 0 {
		opts.Tick = 100 * time.Millisecond
	}
	if opts.StaleTicks <= 0 {
		opts.StaleTicks = DefaultStaleTicks
	}
	if opts.Build == (buildinfo.Info{}) {
		opts.Build = buildinfo.Read()
	}
	x := &Exporter{opts: opts, reg: prometheus.NewRegistry(), coll: NewCollector(opts.State, opts.DeadGrace), steps: newSteps(opts.Tick)}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "maxwell_build_info",
		Help:        "Which Maxwell this is: module version, VCS revision and Go toolchain, from the binary's build information; always 1.",
		ConstLabels: prometheus.Labels{"version": opts.Build.Version, "revision": opts.Build.Revision, "goversion": opts.Build.GoVersion},
	})
	build.Set(1)
	cs := []prometheus.Collector{x.coll, build, x.steps.latency, x.steps.phases, x.steps.interval}
	if !opts.NoRuntime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := x.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return x, nil
}

// Register adds a collector of the daemon's own (the Kubernetes node
// agent's) to the Exporter's registry.
func (x *Exporter) Register(c prometheus.Collector) error {
	if err := x.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Registry returns the Exporter's registry.
func (x *Exporter) Registry() *prometheus.Registry { return x.reg }

// Handler serves the metrics at /metrics, in the Prometheus exposition
// formats (a scrape whose state cannot be read fails with 500), the tick
// loop's liveness at /healthz (both for GET and HEAD only), and 404 for
// every other path.
func (x *Exporter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(x.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError, Timeout: Timeout + time.Second}))
	mux.Handle("GET /healthz", http.HandlerFunc(x.healthz))
	return mux // 404 for other paths, 405 for other methods
}
