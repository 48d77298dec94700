package clock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/clock/clocktest"
)

func TestSleepOnFake(t *testing.T) {
	c := clocktest.New()
	done := make(chan error, 1)
	go func() { done <- clock.Sleep(context.Background(), c, time.Second) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		c.Advance(999 * time.Millisecond / 100)
	}
	select {
	case err := <-done:
		t.Fatalf("Sleep returned %v before its time (now %v)", err, c.Now().Sub(clocktest.Epoch))
	case <-time.After(20 * time.Millisecond):
	}
	c.Advance(10 * time.Millisecond)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Sleep = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Sleep did not return after its time")
	}
}

func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := clock.Sleep(ctx, clocktest.New(), time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
	if err := clock.Sleep(context.Background(), clock.System(), time.Millisecond); err != nil {
		t.Fatalf("Sleep on the system clock = %v", err)
	}
}

func TestFakeTickerAdvance(t *testing.T) {
	c := clocktest.New()
	tk := c.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	c.Advance(50 * time.Millisecond)
	select {
	case at := <-tk.Chan():
		t.Fatalf("tick at %v before the period passed", at)
	case <-time.After(10 * time.Millisecond):
	}
	// Three periods at once give one tick, as a real ticker drops the
	// ticks a slow receiver misses.
	c.Advance(300 * time.Millisecond)
	select {
	case at := <-tk.Chan():
		if got := at.Sub(clocktest.Epoch); got != 350*time.Millisecond {
			t.Errorf("tick at +%v, want +350ms", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no tick after Advance")
	}
	select {
	case at := <-tk.Chan():
		t.Fatalf("second tick at %v from one Advance", at)
	case <-time.After(10 * time.Millisecond):
	}
}

func TestFakeTickByHand(t *testing.T) {
	c := clocktest.New()
	got := make(chan string, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := c.NewTicker(time.Second), c.NewTicker(time.Second)
	go func() {
		for {
			select {
			case <-a.Chan():
				got <- "a"
			case <-b.Chan():
				got <- "b"
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := c.BlockUntil(ctx, 2); err != nil {
		t.Fatal(err)
	}
	ta, tb := <-c.Tickers(), <-c.Tickers()
	for _, tk := range []*clocktest.Ticker{ta, tb, ta} {
		if err := tk.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"a", "b", "a"} {
		if g := <-got; g != want {
			t.Fatalf("got tick %s, want %s: hand ticks must arrive in order", g, want)
		}
	}
	a.Stop()
	if err := ta.Tick(ctx); err == nil {
		t.Error("Tick on a stopped ticker succeeded")
	}
}

func TestFakeTimer(t *testing.T) {
	c := clocktest.New()
	tm := c.NewTimer(time.Second)
	c.Advance(time.Second)
	select {
	case <-tm.Chan():
	case <-time.After(5 * time.Second):
		t.Fatal("timer did not fire")
	}
	tm2 := c.NewTimer(time.Second)
	if !tm2.Stop() {
		t.Error("Stop of a pending timer = false")
	}
	c.Advance(time.Hour)
	select {
	case <-tm2.Chan():
		t.Fatal("a stopped timer fired")
	case <-time.After(10 * time.Millisecond):
	}
}
