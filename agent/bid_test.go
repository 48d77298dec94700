package agent_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
)

// dialBidding connects a bidding Client to f; the host agrees to bid if
// agree is set.
func dialBidding(t *testing.T, f *fakeHost, agree bool) (*agent.Client, *host) {
	t.Helper()
	type result struct {
		c   *agent.Client
		err error
	}
	done := make(chan result)
	go func() {
		c, err := agent.Dial(context.Background(), agent.Config{Address: f.path, Bidding: true})
		done <- result{c, err}
	}()
	h := f.accept()
	if m, ok := h.recv().(*proto.Hello); !ok || !m.Bidding {
		t.Fatalf("hello = %#v, want bidding", m)
	}
	if agree {
		h.send(`{"v":1,"type":"welcome","cell":"c7","protocol":1,"bidding":true}`)
	} else {
		h.send(`{"v":1,"type":"welcome","cell":"c7","protocol":1}`)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	if r.c.Bidding() != agree {
		t.Errorf("Bidding() = %v, want %v", r.c.Bidding(), agree)
	}
	return r.c, h
}

func bid(c *agent.Client, ctx context.Context, tick, price uint64, units int) <-chan error {
	done := make(chan error, 1)
	go func() { done <- c.Bid(ctx, tick, price, units) }()
	return done
}

func nextTick(t *testing.T, c *agent.Client) proto.Tick {
	t.Helper()
	select {
	case tk, ok := <-c.Ticks():
		if !ok {
			t.Fatal("Ticks closed")
		}
		return tk
	case <-time.After(5 * time.Second):
		t.Fatal("no tick within 5s")
	}
	return proto.Tick{}
}

func TestBidAckAndRefusal(t *testing.T) {
	c, h := dialBidding(t, newFakeHost(t), true)
	h.send(`{"v":1,"type":"tick","tick":9,"reserve":300,"multiplier":1.5,"slot_energy":200,"balance":-4,"won":1,"paid":250}`)
	want := proto.Tick{Tick: 9, Reserve: 300, Multiplier: 1.5, SlotEnergy: 200, Balance: -4, Won: 1, Paid: 250}
	if got := nextTick(t, c); got != want {
		t.Fatalf("tick = %+v, want %+v", got, want)
	}

	done := bid(c, context.Background(), 9, 400, 2)
	if m, ok := h.recv().(*proto.Bid); !ok || *m != (proto.Bid{Tick: 9, Price: 400, Units: 2}) {
		t.Fatalf("host got %#v, want bid tick 9 price 400 units 2", m)
	}
	h.send(`{"v":1,"type":"ack","tick":9}`)
	if err := wait(t, done); err != nil {
		t.Fatalf("Bid: %v", err)
	}

	done = bid(c, context.Background(), 8, 400, 2)
	h.recv()
	h.send(`{"v":1,"type":"error","code":"out_of_turn","message":"too late","tick":8}`)
	err := wait(t, done)
	var pe *agent.ProtocolError
	if !errors.As(err, &pe) || pe.Code != proto.CodeOutOfTurn || pe.Fatal || pe.Tick != 8 {
		t.Fatalf("Bid(too late) = %#v, want non-fatal out_of_turn for tick 8", err)
	}
	// Still usable.
	done = report(c, context.Background(), 1)
	h.recv()
	h.send(`{"v":1,"type":"ack","seq":1}`)
	if err := wait(t, done); err != nil {
		t.Fatalf("Report after a refused bid: %v", err)
	}
}

func TestBidLocalValidation(t *testing.T) {
	c, h := dialBidding(t, newFakeHost(t), true)
	for _, b := range []struct {
		price uint64
		units int
	}{{1, 0}, {1, -1}, {1, proto.MaxBidUnits + 1}, {proto.MaxPrice + 1, 1}} {
		err := c.Bid(context.Background(), 1, b.price, b.units)
		var pe *agent.ProtocolError
		if !errors.As(err, &pe) || pe.Code != proto.CodeInvalidBid || pe.Fatal {
			t.Errorf("Bid(price %d, units %d) = %v, want non-fatal invalid_bid", b.price, b.units, err)
		}
	}
	// None was sent: the host's next message is this report.
	done := report(c, context.Background(), 1)
	if m, ok := h.recv().(*proto.Report); !ok || m.Seq != 1 {
		t.Fatalf("host got %#v, want report seq 1", m)
	}
	h.send(`{"v":1,"type":"ack","seq":1}`)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestTicksNewestWins(t *testing.T) {
	c, h := dialBidding(t, newFakeHost(t), true)
	for _, n := range []string{"1", "2", "3"} {
		h.send(`{"v":1,"type":"tick","tick":` + n + `,"reserve":1,"multiplier":1,"slot_energy":1,"balance":0,"won":0,"paid":0}`)
	}
	// The reader handles messages in order: once the ack is in, so are the
	// three ticks.
	done := report(c, context.Background(), 1)
	h.recv()
	h.send(`{"v":1,"type":"ack","seq":1}`)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if got := nextTick(t, c); got.Tick != 3 {
		t.Errorf("tick = %d, want the newest, 3", got.Tick)
	}
	select {
	case tk := <-c.Ticks():
		t.Errorf("second tick %+v, want only the newest", tk)
	default:
	}
	h.conn.Close()
	select {
	case _, ok := <-c.Ticks():
		if ok {
			t.Error("tick after the host hung up")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ticks not closed after the host hung up")
	}
}

func TestAnswersInOrder(t *testing.T) {
	c, h := dialBidding(t, newFakeHost(t), true)
	// A report and a bid in flight at once; the host answers in order.
	rdone := report(c, context.Background(), 1)
	h.recv()
	bdone := bid(c, context.Background(), 4, 10, 1)
	h.recv()
	h.send(`{"v":1,"type":"ack","seq":1}`)
	h.send(`{"v":1,"type":"error","code":"out_of_turn","tick":4}`)
	if err := wait(t, rdone); err != nil {
		t.Errorf("Report = %v, want nil", err)
	}
	if err := wait(t, bdone); !errors.Is(err, &proto.Error{Code: proto.CodeOutOfTurn}) {
		t.Errorf("Bid = %v, want out_of_turn", err)
	}

	// A bid that timed out: its late ack is skipped, the next bid gets its own.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := bid(c, ctx, 5, 10, 1)
	h.recv()
	if err := wait(t, done); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Bid with a silent host = %v, want DeadlineExceeded", err)
	}
	done = bid(c, context.Background(), 5, 11, 1)
	h.recv()
	h.send(`{"v":1,"type":"ack","tick":5}`)
	h.send(`{"v":1,"type":"error","code":"not_your_wallet","tick":5}`)
	if err := wait(t, done); !errors.Is(err, &proto.Error{Code: proto.CodeNotYourWallet}) {
		t.Errorf("second Bid = %v, want the second answer, not_your_wallet", err)
	}

	// An ack for something never sent breaks the protocol.
	done = report(c, context.Background(), 2)
	h.recv()
	h.send(`{"v":1,"type":"ack","seq":99}`)
	var pe *agent.ProtocolError
	if err := wait(t, done); !errors.As(err, &pe) || !pe.Fatal {
		t.Errorf("Report answered by a wrong ack = %v, want a fatal protocol error", err)
	}
}

func TestRunBidder(t *testing.T) {
	c, h := dialBidding(t, newFakeHost(t), true)
	var mu sync.Mutex
	var seen []uint64
	strategy := func(tk proto.Tick) (uint64, int, bool) {
		mu.Lock()
		seen = append(seen, tk.Tick)
		mu.Unlock()
		if tk.Reserve > 1000 {
			return 0, 0, false // too dear: wait
		}
		return tk.Reserve + 1, 3, true
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- agent.RunBidder(ctx, c, strategy) }()

	h.send(`{"v":1,"type":"tick","tick":1,"reserve":100,"multiplier":1,"slot_energy":100,"balance":5,"won":0,"paid":0}`)
	if m, ok := h.recv().(*proto.Bid); !ok || *m != (proto.Bid{Tick: 1, Price: 101, Units: 3}) {
		t.Fatalf("host got %#v, want bid tick 1 price 101 units 3", m)
	}
	// Refused (too late): RunBidder carries on.
	h.send(`{"v":1,"type":"error","code":"out_of_turn","tick":1}`)
	h.send(`{"v":1,"type":"tick","tick":2,"reserve":5000,"multiplier":50,"slot_energy":100,"balance":5,"won":0,"paid":0}`)
	h.send(`{"v":1,"type":"tick","tick":3,"reserve":200,"multiplier":2,"slot_energy":100,"balance":5,"won":0,"paid":0}`)
	// No bid for tick 2, whether or not the strategy saw it.
	if m, ok := h.recv().(*proto.Bid); !ok || *m != (proto.Bid{Tick: 3, Price: 201, Units: 3}) {
		t.Fatalf("host got %#v, want bid tick 3 price 201 units 3", m)
	}
	h.send(`{"v":1,"type":"ack","tick":3}`)
	h.conn.Close()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("RunBidder after the host hung up = %v, want the connection's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunBidder did not return after the host hung up")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 || seen[0] != 1 || seen[len(seen)-1] != 3 {
		t.Errorf("strategy saw ticks %v, want 1, maybe 2, then 3", seen)
	}
}

func TestRunBidderStops(t *testing.T) {
	t.Run("context", func(t *testing.T) {
		c, _ := dialBidding(t, newFakeHost(t), true)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- agent.RunBidder(ctx, c, func(proto.Tick) (uint64, int, bool) { return 1, 1, true })
		}()
		cancel()
		if err := wait(t, done); !errors.Is(err, context.Canceled) {
			t.Errorf("RunBidder = %v, want Canceled", err)
		}
	})
	t.Run("host does not bid", func(t *testing.T) {
		c, _ := dialBidding(t, newFakeHost(t), false)
		err := agent.RunBidder(context.Background(), c, func(proto.Tick) (uint64, int, bool) { return 1, 1, true })
		if !errors.Is(err, agent.ErrNotBidding) {
			t.Errorf("RunBidder = %v, want ErrNotBidding", err)
		}
	})
	t.Run("bad strategy", func(t *testing.T) {
		c, h := dialBidding(t, newFakeHost(t), true)
		h.send(`{"v":1,"type":"tick","tick":1,"reserve":1,"multiplier":1,"slot_energy":1,"balance":0,"won":0,"paid":0}`)
		err := agent.RunBidder(context.Background(), c, func(proto.Tick) (uint64, int, bool) { return 1, 100, true })
		if !errors.Is(err, &proto.Error{Code: proto.CodeInvalidBid}) {
			t.Errorf("RunBidder with a strategy bidding 100 units = %v, want invalid_bid", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		c, _ := dialBidding(t, newFakeHost(t), true)
		done := make(chan error, 1)
		go func() {
			done <- agent.RunBidder(context.Background(), c, func(proto.Tick) (uint64, int, bool) { return 1, 1, true })
		}()
		c.Close()
		if err := wait(t, done); !errors.Is(err, agent.ErrClosed) {
			t.Errorf("RunBidder after Close = %v, want ErrClosed", err)
		}
	})
}
