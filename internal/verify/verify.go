// Package verify checks what agents claim as useful work, so that the
// economy pays income only for work the host can check (docs/INCOME.md).
//
// A claim is checkable when the host can recompute it: the Scientist
// reports primes = π(range_end) exactly (package workload), so the primes
// it claims between two of its reports are the primes in the range it
// claims to have sieved between them, which the host can count itself. The
// host does not recount everything — that would double the work — but a
// random sample of the claimed ranges, a Fraction of them by size; an
// agent cannot know which range will be checked, and one wrong count ends
// its income for good. A counter the host cannot check earns nothing.
package verify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/workload"
)

// DefaultFraction is the share of a Scientist's claimed range the host
// recounts: half a percent, so that checking costs the host under 1 % of
// the work it checks (docs/INCOME.md has the measurement).
const DefaultFraction = 0.005

// ErrFalseClaim is wrapped by the error of a claim that failed its check.
var ErrFalseClaim = errors.New("verify: false claim of useful work")

// Counter names a counter a verifier can check.
type Counter string

// CounterPrimes is the Scientist's primes (with its range_end).
const CounterPrimes Counter = Counter(workload.CounterPrimes)

// Checkable reports whether the host can check a claim in counter.
func Checkable(counter string) bool { return Counter(counter) == CounterPrimes }

// Check is one recount: the range, what was claimed for it and what was
// found, and how long counting took.
type Check struct {
	Lo, Hi         uint64 // [Lo, Hi)
	Claimed, Found uint64
	Took           time.Duration
}

// OK reports whether the claim held.
func (c Check) OK() bool { return c.Claimed == c.Found }

// Primes checks one Scientist's claims, report after report. It is safe
// for concurrent use.
type Primes struct {
	// Fraction of the claimed ranges, by size, to recount; 0 means
	// DefaultFraction, 1 recounts everything.
	Fraction float64
	// Rand draws the samples; nil means a generator seeded from the
	// runtime's randomness (tests give a seeded one).
	Rand *rand.Rand
	// Count counts the primes in [lo, hi); nil means workload.CountPrimes.
	Count func(ctx context.Context, lo, hi uint64) (uint64, error)
	// OnCheck, if set, hears every recount as it ends.
	OnCheck func(Check)

	mu       sync.Mutex
	seen     bool
	end      uint64 // range_end at the last report: [2, end] sieved
	primes   uint64 // primes claimed then
	failed   error
	checking bool
	checks   sync.WaitGroup
}

// Observe takes the counters of the agent's latest report: its claimed
// primes and range_end. It returns the new primes to pay for — those
// claimed since the previous report — or 0 once a claim has failed its
// check, with the error that says why (wrapping ErrFalseClaim), or for a
// report that is inconsistent on its face (the counters went back, or
// claim more primes than numbers). With probability Fraction it recounts
// the new range, whole, in a goroutine of its own, one at a time (a
// report that comes while a recount runs is not drawn), bounded by ctx;
// the verdict comes with a later Observe.
func (p *Primes) Observe(ctx context.Context, primes, rangeEnd uint64) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed != nil {
		return 0, p.failed
	}
	if !p.seen {
		// The first report: its range starts at 2.
		p.seen, p.end, p.primes = true, 1, 0
	}
	if rangeEnd < p.end || primes < p.primes {
		p.failed = fmt.Errorf("%w: counters went back (range_end %d → %d, primes %d → %d)", ErrFalseClaim, p.end, rangeEnd, p.primes, primes)
		return 0, p.failed
	}
	lo, hi := p.end+1, rangeEnd+1 // the new range, [lo, hi)
	claimed := primes - p.primes
	if claimed > hi-lo {
		p.failed = fmt.Errorf("%w: %d primes claimed among %d numbers (%d..%d)", ErrFalseClaim, claimed, hi-lo, lo, rangeEnd)
		return 0, p.failed
	}
	p.end, p.primes = rangeEnd, primes
	if hi > lo && !p.checking && p.draw() {
		p.checking = true
		p.checks.Add(1)
		go p.recount(ctx, lo, hi, claimed)
	}
	return claimed, nil
}

// draw decides whether to recount a report's range: with probability
// Fraction, so that over reports alike in size a Fraction of the numbers
// is recounted; ranges are recounted whole, so a small Fraction checks few
// but whole ranges.
func (p *Primes) draw() bool {
	f := p.Fraction
	if f <= 0 {
		f = DefaultFraction
	}
	if f >= 1 {
		return true
	}
	r := p.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		p.Rand = r
	}
	return r.Float64() < f
}

// recount counts the primes in [lo, hi) and fails the verifier if they
// are not claimed.
func (p *Primes) recount(ctx context.Context, lo, hi, claimed uint64) {
	defer p.checks.Done()
	count := p.Count
	if count == nil {
		count = workload.CountPrimes
	}
	start := time.Now()
	found, err := count(ctx, lo, hi)
	c := Check{Lo: lo, Hi: hi, Claimed: claimed, Found: found, Took: time.Since(start)}
	p.mu.Lock()
	p.checking = false
	if err == nil && !c.OK() && p.failed == nil {
		p.failed = fmt.Errorf("%w: %d primes claimed in [%d, %d), the host counted %d", ErrFalseClaim, claimed, lo, hi, found)
	}
	p.mu.Unlock()
	if err == nil && p.OnCheck != nil {
		p.OnCheck(c)
	}
}

// Failed returns the error of the claim that failed, or nil.
func (p *Primes) Failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// Wait waits for a recount in progress to end.
func (p *Primes) Wait() { p.checks.Wait() }
