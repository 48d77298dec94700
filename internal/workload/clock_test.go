package workload

import (
	"sync"
	"time"
)

// fakeClock is a Clock the test moves by hand. Its tickers tick only when
// the test calls tick, and each tick blocks until the workload receives it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	created chan *fakeTicker
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), created: make(chan *fakeTicker, 10)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fakeClock) NewTicker(d time.Duration) Ticker {
	t := &fakeTicker{d: d, c: make(chan time.Time), clock: f}
	f.created <- t
	return t
}

type fakeTicker struct {
	d     time.Duration
	c     chan time.Time
	clock *fakeClock
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Stop()               {}

// tick delivers one tick, or gives up when done is closed.
func (t *fakeTicker) tick(done <-chan struct{}) bool {
	select {
	case t.c <- t.clock.Now():
		return true
	case <-done:
		return false
	}
}
