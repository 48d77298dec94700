package workload

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

func runFor[T interface {
	Run(context.Context, func(map[string]uint64)) error
}](t *testing.T, w T, d time.Duration) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var last map[string]uint64
	err := w.Run(ctx, func(c map[string]uint64) { mu.Lock(); last = c; mu.Unlock() })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	return last
}

// TestService: the open-loop generator sends about Rate requests a
// second to its own server, every one is served, and the histogram holds
// them all, with a quantile inside its bounds.
func TestService(t *testing.T) {
	c := runFor(t, Service{Rate: 200, Work: 4096, Interval: 50 * time.Millisecond}, 500*time.Millisecond)
	n := c[CounterRequests]
	if n < 60 || n > 110 || c[CounterRequestErrors] > 2 {
		t.Errorf("%d requests served (%d errors) in 0.5 s at 200/s", n, c[CounterRequestErrors])
	}
	if c[CounterLatencyLE+"inf"] != n {
		t.Errorf("histogram holds %d of %d requests", c[CounterLatencyLE+"inf"], n)
	}
	p99, err := LatencyQuantile(c, 0.99)
	if err != nil || p99 < LatencyBounds[0] || p99 > 2*LatencyBounds[len(LatencyBounds)-1] {
		t.Errorf("p99 %d µs, %v", p99, err)
	}
	t.Logf("served %d, p99 ≤ %d µs", n, p99)
}

// TestLatencyQuantile reads the cumulative histogram.
func TestLatencyQuantile(t *testing.T) {
	c := map[string]uint64{}
	for i, b := range LatencyBounds {
		c[CounterLatencyLE+strconv.FormatUint(b, 10)] = uint64(min(i+1, 10)) * 10
	}
	c[CounterLatencyLE+"inf"] = 100
	for q, want := range map[float64]uint64{0.1: 250, 0.5: 5000, 0.99: 200_000, 1: 200_000} {
		if got, err := LatencyQuantile(c, q); err != nil || got != want {
			t.Errorf("q %v: %d, %v; want %d", q, got, err, want)
		}
	}
	if _, err := LatencyQuantile(map[string]uint64{}, 0.5); !errors.Is(err, ErrNoLatency) {
		t.Errorf("empty: %v", err)
	}
}

// TestSorter: runs come out sorted and are freed whole.
func TestSorter(t *testing.T) {
	c := runFor(t, Sorter{RunSize: 4 << 20, Interval: 20 * time.Millisecond}, 400*time.Millisecond)
	if c[CounterRuns] == 0 || c[CounterRecordsSorted] != c[CounterRuns]*(4<<20)/8 || c[CounterBytesFreed] != c[CounterRuns]*(4<<20) {
		t.Errorf("counters %v", c)
	}
	if err := (Sorter{RunSize: 4}).Run(context.Background(), func(map[string]uint64) {}); err == nil {
		t.Error("a run of 4 bytes")
	}
}
