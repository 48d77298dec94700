package workload

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// DefaultSegmentSize is how many consecutive integers one sieve segment
// covers when Scientist.SegmentSize is zero (256 Ki; its odd-only sieve is
// 128 KiB, cache-sized).
const DefaultSegmentSize = 1 << 18

// Counter names reported by the Scientist.
const (
	CounterPrimes   = "primes"    // π(range_end): primes ≤ range_end
	CounterRangeEnd = "range_end" // every integer in [2, range_end] has been sieved
	CounterSegments = "segments"  // segments folded into primes
)

// Scientist counts primes with a segmented sieve of Eratosthenes over
// [2, N] for growing N. Threads sieve consecutive segments; a segment's
// count is folded in only once every segment below it is, so every report
// has primes = π(range_end) exactly, which anyone can check.
type Scientist struct {
	// Threads is the number of sieving goroutines. 0 means AvailableCPUs().
	Threads int
	// SegmentSize is how many integers one segment covers, at least 2.
	// 0 means DefaultSegmentSize.
	SegmentSize uint64
	// Limit, if non-zero, makes Run return after sieving [2, Limit].
	Limit uint64
	// Interval is the report interval. 0 means DefaultInterval.
	Interval time.Duration
	// Clock supplies the report ticker. nil means clock.System().
	Clock clock.Clock
	// Inflate, if above 1, makes the Scientist lie: it reports
	// Inflate × the primes it found. It exists to test a host's
	// verification of useful work (the host recounts and stops paying).
	Inflate float64
}

// Run sieves until ctx ends or Limit is reached, calling report with a new
// map of counters (CounterPrimes, CounterRangeEnd, CounterSegments) every
// Interval and once more before returning. report runs on Run's goroutine.
// Run returns nil when Limit is reached and ctx's error when ctx ends.
func (s Scientist) Run(ctx context.Context, report func(counters map[string]uint64)) error {
	threads := orThreads(s.Threads)
	if threads < 1 {
		return fmt.Errorf("workload: scientist: %d threads", s.Threads)
	}
	size := s.SegmentSize
	if size == 0 {
		size = DefaultSegmentSize
	}
	if size < 2 || size > 1<<32 {
		return fmt.Errorf("workload: scientist: segment size %d out of range [2, 2^32]", size)
	}
	if s.Limit > math.MaxUint64/2 {
		return errors.New("workload: scientist: limit too large")
	}
	tick := orClock(s.Clock).NewTicker(orInterval(s.Interval))
	defer tick.Stop()

	type job struct {
		k, lo, hi uint64
		base      []uint32 // odd primes ≤ √(hi-1), read-only
	}
	type result struct{ k, count uint64 }
	window := 2 * threads // segments in flight, bounding out-of-order results
	jobs := make(chan job, window)
	results := make(chan result, window)
	var wg sync.WaitGroup
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size/2+1)
			for j := range jobs {
				if ctx.Err() != nil {
					continue // drain quickly
				}
				results <- result{j.k, countSegment(j.lo, j.hi, j.base, buf)}
			}
		}()
	}
	defer wg.Wait()
	defer close(jobs)

	var (
		base             []uint32 // odd primes ≤ baseMax
		baseMax          uint64
		next, fold       uint64 // next segment to hand out, next to fold in
		inflight         int
		primes, rangeEnd uint64 = 0, 1
		pending                 = make(map[uint64]uint64, window)
		end                     = s.Limit + 1 // exclusive; 1 when unbounded
		exhausted               = false
	)
	counters := func() map[string]uint64 {
		claimed := primes
		if s.Inflate > 1 {
			claimed = uint64(float64(primes) * s.Inflate)
		}
		return map[string]uint64{CounterPrimes: claimed, CounterRangeEnd: rangeEnd, CounterSegments: fold}
	}
	for {
		for inflight < window && !exhausted {
			lo := next * size
			hi := lo + size
			if s.Limit > 0 && hi >= end {
				hi = end
				exhausted = true
			}
			if hi > 0 && hi-1 > baseMax*baseMax {
				baseMax = max(2*baseMax, isqrt(hi-1)+1)
				base = oddPrimes(baseMax)
			}
			jobs <- job{k: next, lo: lo, hi: hi, base: base}
			next++
			inflight++
		}
		if exhausted && inflight == 0 {
			report(counters())
			return nil
		}
		select {
		case r := <-results:
			inflight--
			pending[r.k] = r.count
			for {
				c, ok := pending[fold]
				if !ok {
					break
				}
				delete(pending, fold)
				primes += c
				hi := (fold + 1) * size
				if s.Limit > 0 {
					hi = min(hi, end)
				}
				rangeEnd = hi - 1
				fold++
			}
		case <-tick.Chan():
			report(counters())
		case <-ctx.Done():
			report(counters())
			return ctx.Err()
		}
	}
}

// countSegment returns the number of primes in [lo, hi), given base, the
// odd primes up to at least √(hi-1) in increasing order. buf must hold at
// least (hi-lo)/2+1 bytes.
func countSegment(lo, hi uint64, base []uint32, buf []byte) uint64 {
	var count uint64
	if lo <= 2 && 2 < hi {
		count = 1
	}
	first := max(lo|1, 3) // first odd candidate; 1 is not prime
	if first >= hi {
		return count
	}
	n := (hi - first + 1) / 2 // odd numbers in [first, hi)
	b := buf[:n]
	clear(b)
	for _, p32 := range base {
		p := uint64(p32)
		start := p * p
		if start >= hi {
			break
		}
		if start < first {
			start = (first + p - 1) / p * p
			if start%2 == 0 {
				start += p
			}
		}
		for j := (start - first) / 2; j < n; j += p {
			b[j] = 1
		}
	}
	return count + uint64(bytes.Count(b, []byte{0}))
}

// oddPrimes returns the odd primes ≤ n in increasing order.
func oddPrimes(n uint64) []uint32 {
	if n < 3 {
		return nil
	}
	composite := make([]bool, n+1)
	var ps []uint32
	for i := uint64(3); i <= n; i += 2 {
		if composite[i] {
			continue
		}
		ps = append(ps, uint32(i))
		for j := i * i; j <= n; j += 2 * i {
			composite[j] = true
		}
	}
	return ps
}

// isqrt returns ⌊√n⌋.
func isqrt(n uint64) uint64 {
	r := uint64(math.Sqrt(float64(n)))
	for r*r > n {
		r--
	}
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// CountPrimes returns the number of primes in [lo, hi) by the Scientist's
// own segmented sieve, one segment at a time, on the calling goroutine: for
// a host that checks what a Scientist claims. It returns ctx's error if ctx
// ends first.
func CountPrimes(ctx context.Context, lo, hi uint64) (uint64, error) {
	if hi <= lo {
		return 0, nil
	}
	if hi > math.MaxUint64/2 {
		return 0, errors.New("workload: count primes: bound too large")
	}
	const size = DefaultSegmentSize
	buf := make([]byte, size/2+1)
	base := oddPrimes(isqrt(hi-1) + 1)
	var n uint64
	for s := lo; s < hi; s += size {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n += countSegment(s, min(s+size, hi), base, buf)
	}
	return n, nil
}
