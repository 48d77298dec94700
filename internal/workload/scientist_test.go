package workload

import (
	"github.com/maxwellhq/maxwell/internal/clock/clocktest"

	"context"
	"errors"
	"testing"
	"time"
)

// primePi returns pi where pi[n] is the number of primes ≤ n, by the plain
// sieve of Eratosthenes.
func primePi(n int) []uint32 {
	composite := make([]bool, n+1)
	pi := make([]uint32, n+1)
	var count uint32
	for i := 2; i <= n; i++ {
		if !composite[i] {
			count++
			for j := i * i; j <= n; j += i {
				composite[j] = true
			}
		}
		pi[i] = count
	}
	return pi
}

func runScientist(t *testing.T, s Scientist) map[string]uint64 {
	t.Helper()
	s.Clock = clocktest.New() // no ticks: only the final report
	var last map[string]uint64
	calls := 0
	err := s.Run(context.Background(), func(c map[string]uint64) { last = c; calls++ })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if calls != 1 {
		t.Fatalf("report called %d times, want once", calls)
	}
	return last
}

func TestScientistPi(t *testing.T) {
	tests := []struct {
		limit   uint64
		threads int
		segment uint64
		want    uint64
	}{
		{1_000_000, 1, 0, 78498},
		{1_000_000, 4, 0, 78498},
		{1_000_000, 4, 65536, 78498},
		{10_000_000, 1, 0, 664579},
		{10_000_000, 4, 0, 664579},
	}
	for _, tt := range tests {
		got := runScientist(t, Scientist{Limit: tt.limit, Threads: tt.threads, SegmentSize: tt.segment})
		segment := tt.segment
		if segment == 0 {
			segment = DefaultSegmentSize
		}
		if got[CounterPrimes] != tt.want || got[CounterRangeEnd] != tt.limit || got[CounterSegments] != (tt.limit+segment)/segment {
			t.Errorf("limit %d, %d threads, segment %d: counters %v, want primes %d, range_end %d, segments %d",
				tt.limit, tt.threads, segment, got, tt.want, tt.limit, (tt.limit+segment)/segment)
		}
	}
}

func TestScientistSmallRanges(t *testing.T) {
	pi := primePi(1000)
	for _, limit := range []uint64{1, 2, 3, 4, 5, 9, 10, 25, 49, 97, 100, 121, 999, 1000} {
		for _, segment := range []uint64{2, 3, 7, 10, 64, 1 << 20} {
			got := runScientist(t, Scientist{Limit: limit, Threads: 3, SegmentSize: segment})
			if got[CounterPrimes] != uint64(pi[limit]) || got[CounterRangeEnd] != limit {
				t.Errorf("limit %d segment %d: %v, want primes %d", limit, segment, got, pi[limit])
			}
		}
	}
}

// TestScientistConsistent checks snapshots taken while threads race:
// primes must equal π(range_end) in every one, and every counter must be
// monotonic. The test ticks as fast as Run takes ticks until it has 50
// snapshots and the sieve has passed half a million.
func TestScientistConsistent(t *testing.T) {
	const segment, target = 128, 500_000
	for _, threads := range []int{1, 4} {
		clock := clocktest.New()
		ctx, cancel := context.WithCancel(context.Background())
		reports := make(chan map[string]uint64)
		errc := make(chan error, 1)
		go func() {
			s := Scientist{Threads: threads, SegmentSize: segment, Clock: clock}
			errc <- s.Run(ctx, func(c map[string]uint64) { reports <- c })
		}()
		tk := <-clock.Tickers()
		if tk.Period() != DefaultInterval {
			t.Errorf("report ticker period %v, want %v", tk.Period(), DefaultInterval)
		}
		var snaps []map[string]uint64
		for len(snaps) < 50 || snaps[len(snaps)-1][CounterRangeEnd] < target {
			if err := tk.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			snaps = append(snaps, <-reports)
		}
		cancel()
		snaps = append(snaps, <-reports) // the final report
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want Canceled", err)
		}
		last := snaps[len(snaps)-1]
		pi := primePi(int(last[CounterRangeEnd]))
		var prev map[string]uint64
		for i, c := range snaps {
			end := c[CounterRangeEnd]
			if c[CounterPrimes] != uint64(pi[end]) {
				t.Fatalf("%d threads, snapshot %d: %v, but π(%d) = %d", threads, i, c, end, pi[end])
			}
			if c[CounterSegments] > 0 && end != c[CounterSegments]*segment-1 {
				t.Fatalf("%d threads, snapshot %d: %v, want range_end = segments × %d - 1", threads, i, c, segment)
			}
			for k, v := range prev {
				if c[k] < v {
					t.Fatalf("%d threads, snapshot %d: %s went from %d to %d", threads, i, k, v, c[k])
				}
			}
			prev = c
		}
		t.Logf("%d threads: %d snapshots up to range_end %d", threads, len(snaps), last[CounterRangeEnd])
	}
}

func TestScientistCancel(t *testing.T) {
	clock := clocktest.New()
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan map[string]uint64)
	errc := make(chan error, 1)
	go func() {
		errc <- Scientist{Threads: 2, Clock: clock}.Run(ctx, func(c map[string]uint64) { reports <- c })
	}()
	tk := <-clock.Tickers()
	pi := primePi(1 << 22)
	var prevEnd uint64
	for range 5 { // unbounded: the range keeps growing
		if err := tk.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		c := <-reports
		if end := c[CounterRangeEnd]; end < uint64(len(pi)) && c[CounterPrimes] != uint64(pi[end]) {
			t.Fatalf("%v: π(%d) = %d", c, end, pi[end])
		}
		if c[CounterRangeEnd] < prevEnd {
			t.Fatalf("range_end went back to %d from %d", c[CounterRangeEnd], prevEnd)
		}
		prevEnd = c[CounterRangeEnd]
	}
	cancel()
	select {
	case <-reports: // the final report
	case <-time.After(5 * time.Second):
		t.Fatal("no final report after cancel")
	}
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestScientistInvalid(t *testing.T) {
	for _, s := range []Scientist{
		{Threads: -1},
		{SegmentSize: 1},
		{Limit: 1 << 63},
	} {
		if err := s.Run(context.Background(), func(map[string]uint64) { t.Error("report called") }); err == nil {
			t.Errorf("%+v: Run = nil, want an error", s)
		}
	}
}

func TestCountSegment(t *testing.T) {
	pi := primePi(10000)
	base := oddPrimes(100)
	buf := make([]byte, 10000)
	for _, r := range [][2]uint64{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {2, 3}, {3, 4}, {0, 10000}, {4, 9}, {9, 10}, {97, 98}, {1000, 1013}, {9973, 10000}} {
		want := uint64(0)
		if r[1] > 0 {
			want = uint64(pi[r[1]-1])
		}
		if r[0] > 0 {
			want -= uint64(pi[r[0]-1])
		}
		if got := countSegment(r[0], r[1], base, buf); got != want {
			t.Errorf("countSegment(%d, %d) = %d, want %d", r[0], r[1], got, want)
		}
	}
}

func TestIsqrt(t *testing.T) {
	for _, n := range []uint64{0, 1, 2, 3, 4, 15, 16, 17, 1<<52 + 1, 1<<62 - 1, 1 << 62} {
		r := isqrt(n)
		if r*r > n || (r+1)*(r+1) <= n {
			t.Errorf("isqrt(%d) = %d", n, r)
		}
	}
}

func TestAvailableCPUs(t *testing.T) {
	if n := AvailableCPUs(); n < 1 {
		t.Fatalf("AvailableCPUs() = %d", n)
	}
}

func BenchmarkScientist(b *testing.B) {
	for b.Loop() {
		Scientist{Limit: 10_000_000, Clock: clocktest.New()}.Run(context.Background(), func(map[string]uint64) {})
	}
}

func TestCountPrimes(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct{ lo, hi, want uint64 }{
		{0, 0, 0}, {0, 2, 0}, {0, 3, 1}, {2, 3, 1}, {0, 100, 25}, {100, 200, 21},
		{0, 1_000_001, 78498}, {999_983, 999_984, 1}, {1 << 20, 1<<20 + 3*DefaultSegmentSize + 17, 0},
	} {
		got, err := CountPrimes(ctx, tt.lo, tt.hi)
		if err != nil {
			t.Fatal(err)
		}
		want := tt.want
		if tt.lo == 1<<20 { // across segment edges: by trial division
			want = 0
			for n := tt.lo; n < tt.hi; n++ {
				if isPrimeTrial(n) {
					want++
				}
			}
		}
		if got != want {
			t.Errorf("CountPrimes(%d, %d) = %d, want %d", tt.lo, tt.hi, got, want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := CountPrimes(cancelled, 0, 1<<30); err == nil {
		t.Error("a cancelled count went on")
	}
}

func isPrimeTrial(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
