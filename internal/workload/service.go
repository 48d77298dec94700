package workload

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maxwellhq/maxwell/internal/clock"
)

// Counter names reported by the Service.
const (
	CounterRequests      = "requests"       // requests served (200 OK)
	CounterRequestErrors = "request_errors" // requests that failed or were shed
	// CounterLatencyLE is the prefix of the latency histogram: requests
	// whose latency, from their intended start, was at most the bound in
	// microseconds ("latency_le_us_1000" …), cumulative like every
	// counter; latency_le_us_inf counts them all.
	CounterLatencyLE = "latency_le_us_"
)

// LatencyBounds are the Service's histogram bounds, in µs.
var LatencyBounds = []uint64{250, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000}

// Service is a latency-sensitive agent: a small HTTP server on loopback
// and, in the same process, an open-loop load generator that starts Rate
// requests a second at fixed intended times and measures each request's
// latency from its intended start, not from when it was sent, so that a
// pause of the process shows in full (no coordinated omission, as wrk2
// measures). Each request costs the server Work of hashing. Both ends are
// bounded: at most MaxInFlight requests at once (the rest are shed and
// counted as errors) and a deadline per request.
type Service struct {
	// Rate is requests per second; 0 means 200.
	Rate int
	// Work is the bytes the server hashes (SHA-256) per request; 0 means
	// 64 KiB (about 0.1 ms of one CPU here).
	Work int
	// MaxInFlight bounds the requests outstanding; 0 means 256.
	MaxInFlight int
	// Timeout bounds each request; 0 means 2 s.
	Timeout time.Duration
	// Interval is the report interval. 0 means DefaultInterval.
	Interval time.Duration
	// Clock times the schedule and the latencies. nil means
	// clock.System().
	Clock clock.Clock
}

// Run serves and loads until ctx ends, calling report with the counters
// (CounterRequests, CounterRequestErrors and the latency histogram) every
// Interval and once more before returning ctx's error.
func (s Service) Run(ctx context.Context, report func(map[string]uint64)) error {
	rate, work, most, timeout := s.Rate, s.Work, s.MaxInFlight, s.Timeout
	if rate == 0 {
		rate = 200
	}
	if work == 0 {
		work = 64 << 10
	}
	if most == 0 {
		most = 256
	}
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	if rate < 0 || rate > 100_000 || work < 0 || most < 0 {
		return fmt.Errorf("workload: service: rate %d, work %d, in flight %d", rate, work, most)
	}
	clk := orClock(s.Clock)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("workload: service: %w", err)
	}
	payload := make([]byte, work)
	srv := &http.Server{ReadHeaderTimeout: timeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		sum := sha256.Sum256(payload)
		w.Write(sum[:8])
	})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: most, MaxConnsPerHost: most}}
	defer client.CloseIdleConnections()

	var (
		served, failed atomic.Uint64
		hist           = make([]atomic.Uint64, len(LatencyBounds)+1)
		inflight       = make(chan struct{}, most)
		wg             sync.WaitGroup
	)
	counters := func() map[string]uint64 {
		c := map[string]uint64{CounterRequests: served.Load(), CounterRequestErrors: failed.Load()}
		var cum uint64
		for i, b := range LatencyBounds {
			cum += hist[i].Load()
			c[CounterLatencyLE+strconv.FormatUint(b, 10)] = cum
		}
		c[CounterLatencyLE+"inf"] = cum + hist[len(LatencyBounds)].Load()
		return c
	}
	one := func(intended time.Time) {
		defer wg.Done()
		defer func() { <-inflight }()
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			if ctx.Err() == nil {
				failed.Add(1)
			}
			return
		}
		lat := uint64(clk.Now().Sub(intended) / time.Microsecond)
		i := 0
		for i < len(LatencyBounds) && lat > LatencyBounds[i] {
			i++
		}
		hist[i].Add(1)
		served.Add(1)
	}
	period := time.Second / time.Duration(rate)
	start := clk.Now()
	tick := clk.NewTicker(period)
	defer tick.Stop()
	rep := clk.NewTicker(orInterval(s.Interval))
	defer rep.Stop()
	var sent uint64
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			report(counters())
			return ctx.Err()
		case <-rep.Chan():
			report(counters())
		case now := <-tick.Chan():
			// Every request whose intended time has come, even those a
			// pause delayed: each keeps its intended start.
			for due := uint64(now.Sub(start) / period); sent < due; sent++ {
				intended := start.Add(time.Duration(sent+1) * period)
				select {
				case inflight <- struct{}{}:
					wg.Add(1)
					go one(intended)
				default:
					failed.Add(1) // shed: too many in flight
				}
			}
		}
	}
}

// ErrNoLatency means a histogram held no requests.
var ErrNoLatency = errors.New("workload: no requests in the latency histogram")

// LatencyQuantile returns the q-quantile (0 < q ≤ 1) of the latency in µs
// from the Service's cumulative histogram counters: the bound of the first
// bucket that holds at least q of the requests (an upper bound on the true
// quantile; the buckets are LatencyBounds). A quantile past the last bound
// is reported as twice it. Counters at a run's start may be subtracted
// first to take a window.
func LatencyQuantile(counters map[string]uint64, q float64) (uint64, error) {
	total := counters[CounterLatencyLE+"inf"]
	if total == 0 {
		return 0, ErrNoLatency
	}
	want := q * float64(total)
	for _, b := range LatencyBounds {
		if float64(counters[CounterLatencyLE+strconv.FormatUint(b, 10)]) >= want {
			return b, nil
		}
	}
	return 2 * LatencyBounds[len(LatencyBounds)-1], nil
}
