package economy

import (
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/units"
	"github.com/maxwellhq/maxwell/internal/verify"
	"github.com/maxwellhq/maxwell/internal/workload"
)

// incomes are the cells paid for their useful work.
type incomes struct {
	mu    sync.Mutex
	cells map[string]*income
}

// income is one cell's pay: nano-credits per unit of its counter, the
// remainder carried between ticks, and the verifier of its claims.
type income struct {
	nanoPerUnit uint64
	remNano     uint64
	check       *verify.Primes
	stopped     bool   // under incomes.mu
	why         string // why it stopped
}

// checkIncome refuses income the host could not check.
func checkIncome(in *api.Income) error {
	if in == nil {
		return nil
	}
	if !verify.Checkable(in.Counter) {
		return fmt.Errorf("%w: income for %q: the host cannot check that counter, so it earns nothing (only %q can be checked)",
			api.ErrBadRequest, in.Counter, verify.CounterPrimes)
	}
	return nil
}

// payIncome starts paying cell for its useful work as in says.
func (e *Economy) payIncome(cell string, in *api.Income) {
	if in == nil {
		return
	}
	e.income.mu.Lock()
	defer e.income.mu.Unlock()
	if e.income.cells == nil {
		e.income.cells = map[string]*income{}
	}
	e.income.cells[cell] = &income{
		nanoPerUnit: uint64(math.Round(in.CreditsPerUnit * 1e9)),
		check:       &verify.Primes{Fraction: e.config().Income.VerifyFraction},
	}
}

// Earned implements engine.IncomeSource: the credits cell earned since the
// last call, for the primes it claimed in its latest report, unless a
// recount of its claims has failed (then nothing, for good, and an event
// says why once).
func (e *Economy) Earned(cell string) units.Credits {
	e.income.mu.Lock()
	in, ok := e.income.cells[cell]
	stopped := ok && in.stopped
	e.income.mu.Unlock()
	if !ok || stopped {
		return 0
	}
	counters, _, ok := e.hub.Counters(cell)
	if !ok {
		return 0
	}
	primes, okP := counters[workload.CounterPrimes]
	end, okE := counters[workload.CounterRangeEnd]
	if !okP || !okE {
		return 0
	}
	n, err := in.check.Observe(e.bg, primes, end)
	if err != nil {
		e.income.mu.Lock()
		in.stopped, in.why = true, err.Error()
		e.income.mu.Unlock()
		e.note(event.Event{Kind: event.IncomeStopped, Cell: cell, Detail: err.Error()})
		return 0
	}
	// n × nano-credits, whole credits out, the rest carried.
	hi, lo := bits.Mul64(n, in.nanoPerUnit)
	lo, carry := bits.Add64(lo, in.remNano, 0)
	hi += carry
	if hi >= 1e9 {
		in.remNano = 0
		return math.MaxInt64 / 4
	}
	q, r := bits.Div64(hi, lo, 1e9)
	in.remNano = r
	return units.Credits(min(q, math.MaxInt64/4))
}

// incomeStopped says why cell earns no more income, "" if it does or
// never did.
func (e *Economy) incomeStopped(cell string) string {
	e.income.mu.Lock()
	defer e.income.mu.Unlock()
	if in, ok := e.income.cells[cell]; ok {
		return in.why
	}
	return ""
}

// stopIncome forgets cell's income (its wallet is closed).
func (e *Economy) stopIncome(cell string) {
	e.income.mu.Lock()
	in, ok := e.income.cells[cell]
	delete(e.income.cells, cell)
	e.income.mu.Unlock()
	if ok {
		in.check.Wait()
	}
}

// waitIncomeChecks waits for the recounts in flight to end (they are
// bounded by the economy's background context).
func (e *Economy) waitIncomeChecks() {
	e.income.mu.Lock()
	var checks []*verify.Primes
	for _, in := range e.income.cells {
		checks = append(checks, in.check)
	}
	e.income.mu.Unlock()
	for _, c := range checks {
		c.Wait()
	}
}
