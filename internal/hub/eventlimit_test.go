package hub

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/clock/clocktest"
)

// sink collects what a limiter delivers.
type sink struct {
	mu  sync.Mutex
	got []Event
	new chan struct{}
}

func newSink() *sink { return &sink{new: make(chan struct{}, 1000)} }

func (s *sink) deliver(e Event) {
	s.mu.Lock()
	s.got = append(s.got, e)
	s.mu.Unlock()
	s.new <- struct{}{}
}

func (s *sink) events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.got...)
}

// waitLen waits until n events have been delivered.
func (s *sink) waitLen(t *testing.T, n int) []Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		if got := s.events(); len(got) >= n {
			return got
		}
		select {
		case <-s.new:
		case <-timeout:
			t.Fatalf("%d events delivered, want %d: %+v", len(s.events()), n, s.events())
		}
	}
}

func refused(pid int) Event {
	return Event{Kind: EventRefused, PID: pid, Code: proto.CodeNotACell, Count: 1,
		Detail: fmt.Sprintf("not_a_cell: pid %d belongs to no cell", pid)}
}

// total is how many events the delivered ones stand for.
func total(evs []Event) int {
	n := 0
	for _, e := range evs {
		n += e.Count
	}
	return n
}

func TestLimiter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("burst then summary at the window's end", func(t *testing.T) {
		c := clocktest.New()
		s := newSink()
		l := newLimiter(s.deliver, c, 3, 100)
		for range 200 {
			l.emit(refused(42))
		}
		if got := s.events(); len(got) != 3 {
			t.Fatalf("%d events before the window ended, want the burst of 3", len(got))
		}
		if err := c.BlockUntil(ctx, 1); err != nil { // the flusher's timer
			t.Fatal(err)
		}
		c.Advance(EventWindow - time.Nanosecond)
		time.Sleep(10 * time.Millisecond)
		if got := s.events(); len(got) != 3 {
			t.Fatalf("summary delivered before the window ended: %+v", got[3:])
		}
		c.Advance(time.Nanosecond)
		got := s.waitLen(t, 4)
		sum := got[3]
		if sum.Count != 197 || sum.Kind != EventRefused || sum.PID != 42 || sum.Code != proto.CodeNotACell ||
			!strings.HasPrefix(sum.Detail, "refused 197 more connections from pid 42 in the last 1s; the last: not_a_cell: pid 42") {
			t.Errorf("summary = %+v", sum)
		}
		if total(got) != 200 {
			t.Errorf("delivered events stand for %d, want 200", total(got))
		}
		// A new window: the key gets its burst again.
		l.emit(refused(42))
		if got := s.events(); len(got) != 5 || got[4].Count != 1 {
			t.Errorf("after the window: %+v", got)
		}
		l.close()
	})

	t.Run("all peers together are bounded", func(t *testing.T) {
		c := clocktest.New()
		s := newSink()
		l := newLimiter(s.deliver, c, 5, 10)
		const peers = 300 // more than maxSummaries
		for pid := 1; pid <= peers; pid++ {
			l.emit(refused(pid))
			l.emit(refused(pid))
		}
		if got := s.events(); len(got) != 10 {
			t.Fatalf("%d events delivered as they happened, want MaxEvents = 10", len(got))
		}
		if err := c.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		c.Advance(EventWindow)
		// 10 passed; 64 peers summed up by name; one summary of the rest.
		got := s.waitLen(t, 10+maxSummaries+1)
		time.Sleep(10 * time.Millisecond)
		if got = s.events(); len(got) != 10+maxSummaries+1 {
			t.Fatalf("%d events, want %d", len(got), 10+maxSummaries+1)
		}
		if total(got) != 2*peers {
			t.Errorf("delivered events stand for %d, want %d", total(got), 2*peers)
		}
		last := got[len(got)-1]
		if last.PID != 0 || last.Cell != "" || !strings.Contains(last.Detail, "other peers") {
			t.Errorf("last summary = %+v, want one for the peers not named", last)
		}
		l.close()
	})

	t.Run("an event after the window delivers its summary first", func(t *testing.T) {
		c := clocktest.New()
		s := newSink()
		l := newLimiter(s.deliver, c, 1, 100)
		cell := Event{Kind: EventProtocolError, Cell: "a", Code: proto.CodeMalformed, Count: 1, Detail: "malformed: x"}
		for range 3 {
			l.emit(cell)
		}
		if err := c.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		c.Advance(EventWindow) // the flusher and the next event race to deliver the summary
		l.emit(cell)
		got := s.waitLen(t, 3)
		time.Sleep(10 * time.Millisecond)
		got = s.events()
		if len(got) != 3 || total(got) != 4 {
			t.Fatalf("events %+v, want the first, a summary of 2, and the new one", got)
		}
		// The flusher may deliver its summary after the new event.
		if sum := got[1:][slices.IndexFunc(got[1:], func(e Event) bool { return e.Count == 2 })]; !strings.HasPrefix(sum.Detail, "rejected 2 more messages from cell a") {
			t.Errorf("summary = %+v", sum)
		}
		l.close()
	})

	t.Run("close flushes at once", func(t *testing.T) {
		c := clocktest.New()
		s := newSink()
		l := newLimiter(s.deliver, c, 1, 100)
		e := Event{Kind: EventConnected, Cell: "a", Count: 1}
		l.emit(e)
		l.emit(e)
		l.close()
		got := s.waitLen(t, 2)
		if got[1].Count != 1 || !strings.HasPrefix(got[1].Detail, "1 more connected events for cell a") {
			t.Errorf("summary on close = %+v", got[1])
		}
		// After close, held events still come, at once.
		l.emit(e)
		if got := s.waitLen(t, 3); got[2].Count != 1 {
			t.Errorf("after close: %+v", got[2])
		}
	})
}
