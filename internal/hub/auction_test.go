package hub_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/hub"
)

func (r *raw) helloBidding() {
	r.t.Helper()
	r.send(`{"v":1,"type":"hello","kind":"test","bidding":true}`)
	if w, ok := r.next().(*proto.Welcome); !ok || !w.Bidding {
		r.t.Fatalf("welcome = %#v, want bidding", w)
	}
}

func (r *raw) expectBidAck(tick uint64) {
	r.t.Helper()
	for {
		switch m := r.next().(type) {
		case *proto.Tick:
			continue // ticks may come at any time
		case *proto.Ack:
			if m.Tick != tick || m.Seq != 0 {
				r.t.Fatalf("ack %+v, want ack for tick %d", m, tick)
			}
			return
		default:
			r.t.Fatalf("got %#v, want ack for tick %d", m, tick)
		}
	}
}

// nextTick returns the next tick, skipping nothing else.
func (r *raw) nextTick() *proto.Tick {
	r.t.Helper()
	m := r.next()
	tk, ok := m.(*proto.Tick)
	if !ok {
		r.t.Fatalf("got %#v, want a tick", m)
	}
	return tk
}

func bid(tick uint64, price uint64, units int) string {
	return `{"v":1,"type":"bid","tick":` + strconv.FormatUint(tick, 10) + `,"price":` +
		strconv.FormatUint(price, 10) + `,"units":` + strconv.Itoa(units) + `}`
}

func info(ti hub.TickInfo) func(string) (hub.TickInfo, bool) {
	return func(string) (hub.TickInfo, bool) { return ti, true }
}

func TestBidErrors(t *testing.T) {
	tests := []struct {
		name string
		line string
		code proto.Code
	}{
		{"NaN price", `{"v":1,"type":"bid","tick":2,"price":NaN,"units":1}`, proto.CodeInvalidBid},
		{"infinite price", `{"v":1,"type":"bid","tick":2,"price":Infinity,"units":1}`, proto.CodeInvalidBid},
		{"negative price", `{"v":1,"type":"bid","tick":2,"price":-5,"units":1}`, proto.CodeInvalidBid},
		{"float price", `{"v":1,"type":"bid","tick":2,"price":5.5,"units":1}`, proto.CodeInvalidBid},
		{"string price", `{"v":1,"type":"bid","tick":2,"price":"5","units":1}`, proto.CodeInvalidBid},
		{"price over 2^53-1", `{"v":1,"type":"bid","tick":2,"price":9007199254740992,"units":1}`, proto.CodeInvalidBid},
		{"price over uint64", `{"v":1,"type":"bid","tick":2,"price":18446744073709551616,"units":1}`, proto.CodeInvalidBid},
		{"no price", `{"v":1,"type":"bid","tick":2,"units":1}`, proto.CodeInvalidBid},
		{"zero units", bid(2, 5, 0), proto.CodeInvalidBid},
		{"65 units", bid(2, 5, 65), proto.CodeInvalidBid},
		{"negative tick", `{"v":1,"type":"bid","tick":-2,"price":5,"units":1}`, proto.CodeInvalidBid},
		{"someone else's wallet", `{"v":1,"type":"bid","tick":2,"price":5,"units":1,"wallet":"cell-b"}`, proto.CodeNotYourWallet},
		{"empty wallet", `{"v":1,"type":"bid","tick":2,"price":5,"units":1,"wallet":""}`, proto.CodeNotYourWallet},
		{"too late", bid(1, 5, 1), proto.CodeOutOfTurn},
		{"too early", bid(3, 5, 1), proto.CodeOutOfTurn},
		{"tick 0", bid(0, 5, 1), proto.CodeOutOfTurn},
		{"tick from an agent", `{"v":1,"type":"tick","tick":2,"reserve":1,"multiplier":1,"slot_energy":1,"balance":1,"won":0,"paid":0}`, proto.CodeUnexpectedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{})
			r := dialRaw(t, th.path)
			r.hello() // no ticks: bids need none
			if err := th.OpenAuction(1, nil); err != nil {
				t.Fatal(err)
			}
			th.CloseAuction(1)
			if err := th.OpenAuction(2, nil); err != nil {
				t.Fatal(err)
			}
			r.send(bid(2, 7, 2))
			r.expectBidAck(2)

			r.send(tt.line)
			e := r.expectError(tt.code, false)
			if e.Message == "" {
				t.Error("error has no message")
			}
			if tt.code == proto.CodeNotYourWallet && e.Tick != 2 {
				t.Errorf("error tick = %d, want the bid's, 2", e.Tick)
			}
			if ev := th.waitEvent(t, hub.EventProtocolError); ev.Code != tt.code || ev.Cell != "cell-a" {
				t.Errorf("event = %+v, want code %s for cell-a", ev, tt.code)
			}
			// The refused bid changed nothing, and the session goes on.
			r.send(`{"v":1,"type":"report","seq":1,"counters":{"a":1}}`)
			r.expectAck(1)
			if got := th.CloseAuction(2); !maps2Equal(got, map[string]hub.Bid{"cell-a": {Price: 7, Units: 2}}) {
				t.Errorf("CloseAuction(2) = %v, want the earlier bid only", got)
			}
		})
	}
}

func maps2Equal(a, b map[string]hub.Bid) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestBidErrorNamesTick(t *testing.T) {
	th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{})
	r := dialRaw(t, th.path)
	r.hello()
	r.send(bid(41, 5, 1))
	if e := r.expectError(proto.CodeOutOfTurn, false); e.Tick != 41 || e.Seq != 0 || !strings.Contains(e.Message, "too early") {
		t.Errorf("error = %+v, want tick 41, too early", e)
	}
	r.send(`{"v":1,"type":"bid","tick":41,"price":5,"units":1,"wallet":"cell-a"}`) // own wallet is fine
	if e := r.expectError(proto.CodeOutOfTurn, false); e.Tick != 41 {
		t.Errorf("error = %+v, want tick 41", e)
	}
}

func TestBidReplacementAndTurns(t *testing.T) {
	th := startHub(t, &ownPID{}, hub.Options{})
	a := dialRaw(t, th.path) // cell-1
	a.hello()
	b := dialRaw(t, th.path) // cell-2
	b.hello()

	// Before any auction: too early.
	a.send(bid(1, 5, 1))
	if e := a.expectError(proto.CodeOutOfTurn, false); !strings.Contains(e.Message, "too early") {
		t.Errorf("bid before any auction: %q, want too early", e.Message)
	}
	if err := th.OpenAuction(1, nil); err != nil {
		t.Fatal(err)
	}
	a.send(bid(1, 5, 1))
	a.expectBidAck(1)
	a.send(`{"v":1,"type":"bid","tick":1,"price":9,"units":4,"wallet":"cell-1"}`) // replaces
	a.expectBidAck(1)
	b.send(bid(1, 3, 64))
	b.expectBidAck(1)
	b.send(bid(2, 3, 1)) // the next auction is not open yet
	b.expectError(proto.CodeOutOfTurn, false)

	got := th.CloseAuction(1)
	want := map[string]hub.Bid{"cell-1": {Price: 9, Units: 4}, "cell-2": {Price: 3, Units: 64}}
	if !maps2Equal(got, want) {
		t.Errorf("CloseAuction(1) = %v, want %v", got, want)
	}
	if got := th.CloseAuction(1); got != nil {
		t.Errorf("second CloseAuction(1) = %v, want nil", got)
	}
	// After the close: too late.
	a.send(bid(1, 10, 1))
	if e := a.expectError(proto.CodeOutOfTurn, false); !strings.Contains(e.Message, "too late") {
		t.Errorf("bid after close: %q, want too late", e.Message)
	}

	// Opening an auction while one is open discards the old one's bids.
	if err := th.OpenAuction(2, nil); err != nil {
		t.Fatal(err)
	}
	a.send(bid(2, 10, 1))
	a.expectBidAck(2)
	if err := th.OpenAuction(3, nil); err != nil {
		t.Fatal(err)
	}
	if got := th.CloseAuction(2); got != nil {
		t.Errorf("CloseAuction(2) after OpenAuction(3) = %v, want nil", got)
	}
	a.send(bid(2, 10, 1))
	if e := a.expectError(proto.CodeOutOfTurn, false); !strings.Contains(e.Message, "too late") {
		t.Errorf("bid for a superseded auction: %q, want too late", e.Message)
	}
	if got := th.CloseAuction(3); got == nil || len(got) != 0 {
		t.Errorf("CloseAuction(3) with no bids = %#v, want an empty map", got)
	}

	for _, tick := range []uint64{0, 2, 3} {
		if err := th.OpenAuction(tick, nil); !errors.Is(err, hub.ErrTickOrder) {
			t.Errorf("OpenAuction(%d) after 3 = %v, want ErrTickOrder", tick, err)
		}
	}
}

func TestTicksReachBidders(t *testing.T) {
	th := startHub(t, &ownPID{}, hub.Options{Auctions: true})
	bidder := dialRaw(t, th.path) // cell-1
	bidder.helloBidding()
	quiet := dialRaw(t, th.path) // cell-2: never asked for ticks
	quiet.hello()
	skipped := dialRaw(t, th.path) // cell-3: the engine has nothing for it
	skipped.helloBidding()

	ti := hub.TickInfo{Reserve: 250000, Multiplier: 1.25, SlotEnergy: 200000, Balance: -3, Won: 2, Paid: 500000}
	var mu sync.Mutex
	var asked []string
	err := th.OpenAuction(7, func(cell string) (hub.TickInfo, bool) {
		mu.Lock()
		asked = append(asked, cell)
		mu.Unlock()
		return ti, cell == "cell-1"
	})
	if err != nil {
		t.Fatal(err)
	}
	want := proto.Tick{Tick: 7, Reserve: 250000, Multiplier: 1.25, SlotEnergy: 200000, Balance: -3, Won: 2, Paid: 500000}
	if got := bidder.nextTick(); *got != want {
		t.Errorf("tick = %+v, want %+v", got, want)
	}
	slices.Sort(asked)
	if !slices.Equal(asked, []string{"cell-1", "cell-3"}) {
		t.Errorf("info asked for %v, want the bidding cells [cell-1 cell-3]", asked)
	}
	// cell-3 got no tick 7: its first tick is 8.
	if err := th.OpenAuction(8, info(ti)); err != nil {
		t.Fatal(err)
	}
	if got := skipped.nextTick(); got.Tick != 8 {
		t.Errorf("cell-3's first tick = %d, want 8", got.Tick)
	}
	if got := bidder.nextTick(); got.Tick != 8 {
		t.Errorf("cell-1's second tick = %d, want 8", got.Tick)
	}
	quiet.send(`{"v":1,"type":"report","seq":1,"counters":{"a":1}}`)
	quiet.expectAck(1)

	// A tick that cannot be encoded is reported; the auction opens anyway.
	bad := ti
	bad.Multiplier = math.NaN()
	if err := th.OpenAuction(9, info(bad)); err == nil || !strings.Contains(err.Error(), "cell-1") {
		t.Errorf("OpenAuction with a NaN multiplier = %v, want an error naming the cells", err)
	}
	bidder.send(bid(9, 1, 1))
	bidder.expectBidAck(9)
}

func TestClientBidsThroughHub(t *testing.T) {
	th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{Auctions: true})
	ctx := context.Background()
	c, err := agent.Dial(ctx, agent.Config{Address: th.path, Bidding: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Bidding() {
		t.Fatal("host did not agree to bid")
	}
	if err := th.OpenAuction(3, info(hub.TickInfo{Reserve: 10, Multiplier: 1, SlotEnergy: 10, Balance: 100})); err != nil {
		t.Fatal(err)
	}
	var tk proto.Tick
	select {
	case tk = <-c.Ticks():
	case <-time.After(5 * time.Second):
		t.Fatal("no tick")
	}
	if tk.Tick != 3 || tk.Reserve != 10 || tk.Balance != 100 {
		t.Errorf("tick = %+v", tk)
	}
	if err := c.Bid(ctx, tk.Tick, 25, 2); err != nil {
		t.Fatalf("Bid: %v", err)
	}
	if err := c.Report(ctx, map[string]uint64{"n": 1}); err != nil {
		t.Fatalf("Report beside bids: %v", err)
	}
	if got := th.CloseAuction(3); !maps2Equal(got, map[string]hub.Bid{"cell-a": {Price: 25, Units: 2}}) {
		t.Errorf("CloseAuction = %v", got)
	}
	err = c.Bid(ctx, 3, 30, 2)
	var pe *agent.ProtocolError
	if !errors.As(err, &pe) || pe.Code != proto.CodeOutOfTurn || pe.Fatal {
		t.Fatalf("Bid after close = %v, want non-fatal out_of_turn", err)
	}
	if err := c.Bid(ctx, 4, 30, 2); !errors.Is(err, &proto.Error{Code: proto.CodeOutOfTurn}) {
		t.Fatalf("Bid before open = %v, want out_of_turn", err)
	}
}

// An agent that asks for ticks and never reads them must not slow the
// host: OpenAuction returns at once, the unsent ticks are dropped and
// counted, and the agent gets the newest tick once it reads again.
func TestSlowBidderDoesNotBlock(t *testing.T) {
	th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{Auctions: true, WriteTimeout: time.Minute})
	r := dialRaw(t, th.path)
	r.helloBidding()
	const n = 5000 // ~650 KB of ticks: more than a Unix socket buffers
	ti := hub.TickInfo{Reserve: 123456789, Multiplier: 1.5, SlotEnergy: 82304526, Balance: 1 << 40, Won: 64, Paid: 1 << 40}
	done := make(chan error, 1)
	go func() {
		for tick := uint64(1); tick <= n; tick++ {
			if err := th.OpenAuction(tick, info(ti)); err != nil {
				done <- err
				return
			}
			th.CloseAuction(tick)
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second): // a liveness bound, not a speed target
		t.Fatal("OpenAuction blocked on an agent that does not read")
	}
	dropped := th.Snapshot()["cell-a"].TicksDropped
	if dropped == 0 || dropped >= n {
		t.Errorf("TicksDropped = %d, want some of %d", dropped, n)
	}

	// Reading again: ticks arrive in order, the newest last.
	var last uint64
	got := 0
	for last != n {
		tk := r.nextTick()
		if tk.Tick <= last {
			t.Fatalf("tick %d after %d", tk.Tick, last)
		}
		last = tk.Tick
		got++
	}
	if uint64(got)+dropped != n {
		t.Errorf("received %d ticks and dropped %d, want %d in all", got, dropped, n)
	}
	// The connection is fine.
	r.send(`{"v":1,"type":"report","seq":1,"counters":{"a":1}}`)
	r.expectAck(1)
}

// An agent that stops reading for longer than the write timeout is
// disconnected, without holding up the host.
func TestStuckBidderDisconnected(t *testing.T) {
	th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{Auctions: true, WriteTimeout: 100 * time.Millisecond})
	r := dialRaw(t, th.path)
	r.helloBidding()
	ti := hub.TickInfo{Reserve: 1, Multiplier: 1, SlotEnergy: 1, Balance: 1}
	deadline := time.Now().Add(20 * time.Second)
	for tick := uint64(1); th.Snapshot()["cell-a"].Connected; tick++ {
		if time.Now().After(deadline) {
			t.Fatal("agent that never reads still connected after 20s")
		}
		if err := th.OpenAuction(tick, info(ti)); err != nil {
			t.Fatal(err)
		}
		if tick%256 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if e := th.waitEvent(t, hub.EventDisconnected); !strings.Contains(e.Detail, "write tick") {
		t.Errorf("disconnected event = %+v, want it to blame the tick write", e)
	}
	// Its cell may connect again.
	r2 := dialRaw(t, th.path)
	r2.helloBidding()
}

// A host that runs no auction says so, and sends no ticks.
func TestNoAuctionsNoTicks(t *testing.T) {
	th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{})
	r := dialRaw(t, th.path)
	r.send(`{"v":1,"type":"hello","bidding":true}`)
	if w, ok := r.next().(*proto.Welcome); !ok || w.Bidding {
		t.Fatalf("welcome = %#v, want bidding false", w)
	}
	asked := false
	if err := th.OpenAuction(1, func(string) (hub.TickInfo, bool) { asked = true; return hub.TickInfo{}, true }); err != nil {
		t.Fatal(err)
	}
	if asked {
		t.Error("OpenAuction asked for tick info of an agent the host told it does not bid")
	}
	// Options.Auctions governs ticks only: a bid in an open auction counts.
	r.send(bid(1, 3, 1))
	r.expectBidAck(1)
}

// Late bids are a race, not a fault: they never add up to too_many_errors.
func TestOutOfTurnIsNoFault(t *testing.T) {
	th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{MaxErrors: 2})
	r := dialRaw(t, th.path)
	r.hello()
	for range 5 {
		r.send(bid(1, 5, 1))
		r.expectError(proto.CodeOutOfTurn, false)
	}
	const theirs = `{"v":1,"type":"bid","tick":1,"price":5,"units":1,"wallet":"cell-b"}`
	r.send(theirs)
	r.expectError(proto.CodeNotYourWallet, false)
	r.send(theirs)
	if e := r.expectError(proto.CodeTooManyErrors, true); e.Tick != 1 {
		t.Errorf("too_many_errors = %+v, want it to name tick 1", e)
	}
	r.expectClosed()
}
