package hub

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/clock"
)

// EventWindow is the period over which the hub counts events to limit
// them (see Options.EventBurst and Options.MaxEvents).
const EventWindow = time.Second

// maxSummaries bounds the summaries delivered at the end of one window
// that each name one peer; the peers beyond are summed up per kind and
// code.
const maxSummaries = 64

// eventKey groups events that say the same thing about the same peer: a
// cell, or, for a process outside any cell, its PID.
type eventKey struct {
	kind EventKind
	code proto.Code
	cell string
	pid  int // 0 when cell is set
}

func keyOf(e Event) eventKey {
	k := eventKey{kind: e.Kind, code: e.Code, cell: e.Cell}
	if e.Cell == "" {
		k.pid = e.PID
	}
	return k
}

func (k eventKey) compare(o eventKey) int {
	return cmp.Or(cmp.Compare(k.kind, o.kind), cmp.Compare(k.code, o.code),
		cmp.Compare(k.cell, o.cell), cmp.Compare(k.pid, o.pid))
}

// tally is what one key did in the current window.
type tally struct {
	passed int   // delivered as they happened
	held   int   // held back, to be summed up at the window's end
	last   Event // the last one held
}

// limiter delivers events to a callback, at most burst of one key and
// at most most in all as they happen in each window of EventWindow; it
// holds back the rest and, when the window ends, delivers one summary per
// key that had events held back (Event.Count says how many). Summaries
// come when the window ends, or as soon as the limiter is closed.
type limiter struct {
	deliver func(Event)
	clock   clock.Clock
	burst   int // events of one key delivered as they happen, per window
	most    int // events of all keys delivered as they happen, per window

	mu       sync.Mutex
	start    time.Time // when the current window began
	passed   int       // events delivered in the current window
	held     int       // events held back in the current window
	keys     map[eventKey]*tally
	flushing bool // a goroutine waits for the window's end to flush it
	closed   bool
	done     chan struct{} // closed by close
}

func newLimiter(deliver func(Event), c clock.Clock, burst, most int) *limiter {
	return &limiter{deliver: deliver, clock: c, burst: burst, most: most,
		keys: make(map[eventKey]*tally), done: make(chan struct{})}
}

// emit delivers e now, or holds it back for the window's summary.
func (l *limiter) emit(e Event) {
	l.mu.Lock()
	now := l.clock.Now()
	var out []Event
	if !now.Before(l.start.Add(EventWindow)) {
		out = l.rollLocked(now)
	}
	t := l.keys[keyOf(e)]
	if t == nil {
		t = &tally{}
		l.keys[keyOf(e)] = t
	}
	if t.passed < l.burst && l.passed < l.most {
		t.passed++
		l.passed++
		out = append(out, e)
	} else {
		t.held++
		l.held++
		t.last = e
		if !l.flushing {
			l.flushing = true
			go l.flusher()
		}
	}
	l.mu.Unlock()
	for _, ev := range out {
		l.deliver(ev)
	}
}

// flusher waits for the end of the window that holds events back and
// delivers their summaries, unless an event did so first. It returns once
// no event is held back.
func (l *limiter) flusher() {
	for {
		l.mu.Lock()
		if l.held == 0 {
			l.flushing = false
			l.mu.Unlock()
			return
		}
		now := l.clock.Now()
		wait := l.start.Add(EventWindow).Sub(now)
		if wait <= 0 || l.closed {
			out := l.rollLocked(now)
			l.flushing = false
			l.mu.Unlock()
			for _, ev := range out {
				l.deliver(ev)
			}
			return
		}
		l.mu.Unlock()
		t := l.clock.NewTimer(wait)
		select {
		case <-t.Chan():
		case <-l.done:
		}
		t.Stop()
	}
}

// close makes the summaries of held-back events come at once, now and
// from then on. It is idempotent.
func (l *limiter) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
}

// rollLocked ends the current window at now, returns its summaries and
// starts the next window.
func (l *limiter) rollLocked(now time.Time) []Event {
	var out []Event
	if l.held > 0 {
		keys := make([]eventKey, 0, len(l.keys))
		for k, t := range l.keys {
			if t.held > 0 {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, eventKey.compare)
		type group struct {
			kind  EventKind
			code  proto.Code
			count int
			peers int
			last  Event
		}
		var groups []*group
		for i, k := range keys {
			t := l.keys[k]
			if i < maxSummaries {
				out = append(out, summary(t.last, t.held))
				continue
			}
			if n := len(groups); n == 0 || groups[n-1].kind != k.kind || groups[n-1].code != k.code {
				groups = append(groups, &group{kind: k.kind, code: k.code})
			}
			g := groups[len(groups)-1]
			g.count += t.held
			g.peers++
			g.last = t.last
		}
		for _, g := range groups {
			out = append(out, Event{Kind: g.kind, Code: g.code, Count: g.count, At: g.last.At,
				Detail: fmt.Sprintf("%d more %s events from %d other peers in the last %v; the last: %s",
					g.count, g.kind, g.peers, EventWindow, g.last.Detail)})
		}
	}
	clear(l.keys)
	l.start, l.passed, l.held = now, 0, 0
	return out
}

// summary is the event that stands for the n events of last's key held
// back in one window.
func summary(last Event, n int) Event {
	who := "cell " + last.Cell
	if last.Cell == "" {
		who = fmt.Sprintf("pid %d", last.PID)
	}
	what := fmt.Sprintf("%d more %s events for %s", n, last.Kind, who)
	switch last.Kind {
	case EventRefused:
		what = fmt.Sprintf("refused %d more connections from %s", n, who)
	case EventProtocolError:
		what = fmt.Sprintf("rejected %d more messages from %s", n, who)
	}
	s := last
	s.Count = n
	s.Detail = fmt.Sprintf("%s in the last %v; the last: %s", what, EventWindow, last.Detail)
	return s
}
