// Package clock is Maxwell's one source of time. Every package that needs
// the time, a ticker or a timer takes a Clock, so that tests drive whole
// runs — a daemon's ticks, a workload's reports, the thermal twin — with
// the fake in package clocktest instead of sleeping.
//
// The interface is ours, not a library's: it is three methods, and the
// fake our tests need hands each tick over synchronously when a test ticks
// a ticker by hand (the workload tests check that pacing happens before a
// report), which the fakes of github.com/jonboulle/clockwork and
// github.com/benbjohnson/clock do not offer: they only fire tickers by
// advancing time.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and makes tickers and timers.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker that ticks every d (d > 0).
	NewTicker(d time.Duration) Ticker
	// NewTimer returns a timer that fires once, after d.
	NewTimer(d time.Duration) Timer
}

// Ticker delivers ticks on Chan, like time.Ticker: a receiver that falls
// behind misses ticks rather than queueing them.
type Ticker interface {
	Chan() <-chan time.Time
	Stop()
}

// Timer fires once on Chan, like time.Timer.
type Timer interface {
	Chan() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// System returns the real clock.
func System() Clock { return system{} }

type system struct{}

func (system) Now() time.Time { return time.Now() }

func (system) NewTicker(d time.Duration) Ticker { return sysTicker{time.NewTicker(d)} }

func (system) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTicker struct{ t *time.Ticker }

func (t sysTicker) Chan() <-chan time.Time { return t.t.C }
func (t sysTicker) Stop()                  { t.t.Stop() }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) Chan() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool             { return t.t.Stop() }

// Sleep waits for d on c, or until ctx is done, whose error it returns.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Chan():
		return nil
	}
}
