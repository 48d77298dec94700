package verify

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/internal/workload"
)

// scientistReports runs a real Scientist (inflate > 1 makes it lie) for a
// while and returns its reports' (primes, range_end), in order.
func scientistReports(t *testing.T, inflate float64) [][2]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var mu sync.Mutex
	var out [][2]uint64
	s := workload.Scientist{Threads: 1, Interval: 10 * time.Millisecond, Inflate: inflate}
	err := s.Run(ctx, func(c map[string]uint64) {
		mu.Lock()
		out = append(out, [2]uint64{c[workload.CounterPrimes], c[workload.CounterRangeEnd]})
		mu.Unlock()
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	if len(out) < 5 {
		t.Fatalf("the Scientist made %d reports", len(out))
	}
	return out
}

// TestHonestScientistPaid: every claim of an honest Scientist, recounted
// in full, holds, and what it is paid for adds up to what it found.
func TestHonestScientistPaid(t *testing.T) {
	ctx := context.Background()
	var checks []Check
	var mu sync.Mutex
	p := &Primes{Fraction: 1, OnCheck: func(c Check) { mu.Lock(); checks = append(checks, c); mu.Unlock() }}
	var paid uint64
	reports := scientistReports(t, 0)
	for _, r := range reports {
		n, err := p.Observe(ctx, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		paid += n
		p.Wait() // one recount at a time: let each end, so all are checked
	}
	last := reports[len(reports)-1]
	if paid != last[0] {
		t.Errorf("paid for %d primes, the Scientist found %d", paid, last[0])
	}
	if err := p.Failed(); err != nil {
		t.Errorf("an honest Scientist failed: %v", err)
	}
	if len(checks) == 0 {
		t.Fatal("nothing was recounted")
	}
	for _, c := range checks {
		if !c.OK() {
			t.Errorf("check %+v failed", c)
		}
	}
}

// TestLiarLosesIncome: a Scientist that claims 1 % more primes than it found
// is caught by a recount and paid nothing from then on.
func TestLiarLosesIncome(t *testing.T) {
	ctx := context.Background()
	p := &Primes{Fraction: 0.5, Rand: rand.New(rand.NewPCG(1, 2))}
	reports := scientistReports(t, 1.01)
	var after uint64
	caught := false
	for _, r := range reports {
		n, err := p.Observe(ctx, r[0], r[1])
		if caught {
			after += n
		}
		if errors.Is(err, ErrFalseClaim) {
			caught = true
		}
		p.Wait()
	}
	if _, err := p.Observe(ctx, reports[len(reports)-1][0]+1000, reports[len(reports)-1][1]+10000); !errors.Is(err, ErrFalseClaim) {
		t.Fatalf("the liar was not caught in %d reports: %v", len(reports), err)
	}
	if after != 0 {
		t.Errorf("the liar was paid for %d primes after it was caught", after)
	}
	t.Logf("caught: %v", p.Failed())
}

// TestClaimsInconsistentOnTheirFace: counters that go back, or claim more
// primes than numbers, fail at once, without a recount.
func TestClaimsInconsistentOnTheirFace(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		reports [][2]uint64
	}{
		{"primes back", [][2]uint64{{25, 100}, {24, 200}}},
		{"range back", [][2]uint64{{25, 100}, {25, 99}}},
		{"more primes than numbers", [][2]uint64{{25, 100}, {200, 150}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &Primes{Fraction: 1e-9, Rand: rand.New(rand.NewPCG(1, 1))}
			var err error
			for _, r := range tt.reports {
				_, err = p.Observe(ctx, r[0], r[1])
			}
			if !errors.Is(err, ErrFalseClaim) {
				t.Errorf("%v: %v, want ErrFalseClaim", tt.reports, err)
			}
		})
	}
	if !Checkable("primes") || Checkable("requests") || Checkable("hashes") {
		t.Error("Checkable")
	}
}

// BenchmarkRecountCost measures what the host pays to recount a range
// against what the Scientist paid to sieve it, per number, in CPU time of
// one thread each: the host's cost of checking is this ratio × Fraction of
// the Scientist's work.
//
//	go test -run '^$' -bench RecountCost -benchtime 3x ./internal/verify
func BenchmarkRecountCost(b *testing.B) {
	const hi = 1 << 32
	const lo = hi / 2
	var agent, host time.Duration
	runtime.LockOSThread() // the thread's clock must be this goroutine's
	defer runtime.UnlockOSThread()
	for range b.N {
		start := threadCPU(b)
		if _, err := workload.CountPrimes(context.Background(), lo, hi); err != nil {
			b.Fatal(err)
		}
		host += threadCPU(b) - start
		// The Scientist on one thread over [2, hi): its cost per number
		// over the whole range, which rises slowly with the numbers, so
		// this ratio errs against the host.
		start = processCPU(b)
		s := workload.Scientist{Threads: 1, Limit: hi - 1, Interval: time.Hour}
		s.Run(context.Background(), func(map[string]uint64) {})
		agent += (processCPU(b) - start) / 2 // per number of [lo, hi), twice as many sieved
	}
	r := float64(host) / float64(agent)
	b.ReportMetric(r, "host/agent")
	b.ReportMetric(100*DefaultFraction*r, "%host-cost")
}

func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

func processCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
