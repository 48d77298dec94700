// Package clocktest has the fake clock Maxwell's tests drive by hand.
package clocktest

import (
	"context"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/clock"
)

// Epoch is where a New clock starts: a fixed instant, so that recorded
// times are the same in every run.
var Epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// Fake is a clock.Clock that moves only when a test advances it.
//
// Advance fires every timer whose time has come and every ticker whose
// period has passed (once, however many periods passed, as a real ticker
// drops ticks a slow receiver misses). A fired ticker delivers its tick
// when the code under test next receives; until then a later tick replaces
// it. A test can also tick one ticker by hand with Ticker.Tick, which
// returns only once the tick has been received: the way to make the code
// under test handle ticks in a known order.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*Ticker
	timers  []*fakeTimer
	created chan *Ticker
	changed chan struct{} // closed and replaced when tickers or timers come or go
}

var _ clock.Clock = (*Fake)(nil)

// New returns a fake clock at Epoch.
func New() *Fake {
	return &Fake{now: Epoch, created: make(chan *Ticker, 64), changed: make(chan struct{})}
}

// Now implements clock.Clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock on by d and fires what came due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	now := f.now
	var due []*Ticker
	for _, t := range f.tickers {
		if !now.Before(t.next) {
			for !now.Before(t.next) {
				t.next = t.next.Add(t.period)
			}
			due = append(due, t)
		}
	}
	timers := f.timers[:0]
	for _, t := range f.timers {
		if !now.Before(t.at) {
			t.c <- now // buffered: never blocks
		} else {
			timers = append(timers, t)
		}
	}
	if len(timers) != len(f.timers) {
		f.notifyLocked()
	}
	f.timers = timers
	f.mu.Unlock()
	for _, t := range due {
		t.offer(now)
	}
}

// NewTicker implements clock.Clock. Every ticker made is also sent on
// Tickers, for tests that tick by hand.
func (f *Fake) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("clocktest: non-positive ticker period")
	}
	f.mu.Lock()
	t := &Ticker{f: f, period: d, next: f.now.Add(d), c: make(chan time.Time), stop: make(chan struct{}), pending: make(chan time.Time, 1)}
	f.tickers = append(f.tickers, t)
	f.notifyLocked()
	f.mu.Unlock()
	go t.deliver()
	select {
	case f.created <- t:
	default: // nobody collects them
	}
	return t
}

// NewTimer implements clock.Clock.
func (f *Fake) NewTimer(d time.Duration) clock.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{f: f, at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
		return t
	}
	f.timers = append(f.timers, t)
	f.notifyLocked()
	return t
}

// Tickers delivers every ticker made, in order (the first 64 are
// buffered).
func (f *Fake) Tickers() <-chan *Ticker { return f.created }

// BlockUntil waits until at least n tickers and timers are waiting on the
// clock (tickers made and not stopped, timers not yet fired or stopped), or
// ctx is done.
func (f *Fake) BlockUntil(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		have, changed := len(f.tickers)+len(f.timers), f.changed
		f.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Simulate runs simulated time until ctx is done: whenever a timer is
// pending, the clock jumps to the earliest one's deadline. Code that waits
// only on timers (clock.Sleep) then runs as fast as it can, its clock
// reading as if it had slept. Simulate returns when ctx is done.
func (f *Fake) Simulate(ctx context.Context) {
	for {
		f.mu.Lock()
		var next time.Time
		for i, t := range f.timers {
			if i == 0 || t.at.Before(next) {
				next = t.at
			}
		}
		pending, changed, now := len(f.timers) > 0, f.changed, f.now
		f.mu.Unlock()
		if pending {
			f.Advance(next.Sub(now))
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Ticker is a Fake's ticker.
type Ticker struct {
	f       *Fake
	period  time.Duration
	next    time.Time // guarded by f.mu
	c       chan time.Time
	pending chan time.Time // the tick waiting to be delivered, at most one
	stop    chan struct{}
	once    sync.Once
}

// Period returns the ticker's period.
func (t *Ticker) Period() time.Duration { return t.period }

// Chan implements clock.Ticker.
func (t *Ticker) Chan() <-chan time.Time { return t.c }

// Stop implements clock.Ticker.
func (t *Ticker) Stop() {
	t.once.Do(func() {
		close(t.stop)
		t.f.mu.Lock()
		defer t.f.mu.Unlock()
		for i, x := range t.f.tickers {
			if x == t {
				t.f.tickers = append(t.f.tickers[:i], t.f.tickers[i+1:]...)
				break
			}
		}
		t.f.notifyLocked()
	})
}

// Tick delivers one tick at the clock's current time and returns once the
// code under test has received it, or when ctx is done or the ticker is
// stopped (then with an error).
func (t *Ticker) Tick(ctx context.Context) error {
	select {
	case <-t.stop:
		return context.Canceled
	default:
	}
	select {
	case t.c <- t.f.Now():
		return nil
	case <-t.stop:
		return context.Canceled
	case <-ctx.Done():
		return ctx.Err()
	}
}

// offer queues a fired tick, replacing one not yet delivered.
func (t *Ticker) offer(at time.Time) {
	select {
	case <-t.pending:
	default:
	}
	select {
	case t.pending <- at:
	default:
	}
}

// deliver hands fired ticks to the receiver until the ticker stops.
func (t *Ticker) deliver() {
	for {
		select {
		case <-t.stop:
			return
		case at := <-t.pending:
			select {
			case t.c <- at:
			case <-t.stop:
				return
			}
		}
	}
}

type fakeTimer struct {
	f  *Fake
	at time.Time
	c  chan time.Time
}

func (t *fakeTimer) Chan() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	for i, x := range t.f.timers {
		if x == t {
			t.f.timers = append(t.f.timers[:i], t.f.timers[i+1:]...)
			t.f.notifyLocked()
			return true
		}
	}
	return false
}
