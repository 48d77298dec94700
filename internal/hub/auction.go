package hub

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/units"
)

// ErrTickOrder is returned by OpenAuction for a tick that is 0 or not after
// the last auction opened.
var ErrTickOrder = errors.New("hub: auction tick must be positive and increasing")

// TickInfo is what the host tells one cell's agent when an auction opens.
// Money is in credits (1 credit is 1 µJ of host energy); a full slot is one
// CPU for one tick.
type TickInfo struct {
	Reserve    units.Credits // reserve price per full slot
	Multiplier float64       // thermal multiplier of the reserve, ≥ 1
	SlotEnergy units.Credits // expected energy of one slot for one tick at multiplier 1
	Balance    units.Credits // the cell's wallet balance
	Won        int           // units the cell won in the previous auction
	Paid       units.Credits // what the cell paid in the previous auction
}

// Bid is one cell's bid in an auction: Units slots at up to Price credits
// per full slot each.
type Bid struct {
	Price units.Credits
	Units int
}

// auction is the state of the host's auctions, guarded by Hub.mu.
type auction struct {
	open bool
	tick uint64 // the open auction, or the last one opened
	bids map[string]Bid
}

// OpenAuction opens bidding for tick and queues a tick message for every
// connected agent that asked for them in its hello (and was welcomed with
// bidding, see Options.Auctions) and for whose cell info returns true. It never waits for an agent: each connection holds at most
// one unsent tick, and a newer one replaces it (counted in
// Sample.TicksDropped). info is called on the caller's goroutine, without
// the hub's lock held.
//
// tick must be positive and greater than every tick opened before, or
// OpenAuction returns ErrTickOrder and changes nothing. An auction still
// open is closed first and its bids are discarded. The returned error also
// reports, joined, ticks that could not be encoded (see proto.ValidateTick);
// those cells get no tick, and the auction is open all the same.
func (h *Hub) OpenAuction(tick uint64, info func(cell string) (TickInfo, bool)) error {
	h.mu.Lock()
	if tick == 0 || tick <= h.auction.tick {
		last := h.auction.tick
		h.mu.Unlock()
		return fmt.Errorf("%w: tick %d after %d", ErrTickOrder, tick, last)
	}
	h.auction = auction{open: true, tick: tick, bids: make(map[string]Bid)}
	type target struct {
		cell string
		ob   *outbox
	}
	targets := make([]target, 0, len(h.bidders))
	for cell, ob := range h.bidders {
		targets = append(targets, target{cell, ob})
	}
	h.mu.Unlock()

	if info == nil {
		return nil
	}
	var errs []error
	var dropped []string
	for _, t := range targets {
		ti, ok := info(t.cell)
		if !ok {
			continue
		}
		line, err := proto.Encode(&proto.Tick{
			Tick:       tick,
			Reserve:    uint64(max(ti.Reserve, 0)),
			Multiplier: ti.Multiplier,
			SlotEnergy: uint64(max(ti.SlotEnergy, 0)),
			Balance:    int64(ti.Balance),
			Won:        ti.Won,
			Paid:       uint64(max(ti.Paid, 0)),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("hub: tick for cell %s: %w", t.cell, err))
			continue
		}
		if t.ob.put(tick, line) {
			dropped = append(dropped, t.cell)
		}
	}
	if len(dropped) > 0 {
		h.mu.Lock()
		for _, cell := range dropped {
			if cs, ok := h.cells[cell]; ok {
				cs.TicksDropped++
			}
		}
		h.mu.Unlock()
	}
	return errors.Join(errs...)
}

// CloseAuction ends bidding for tick and returns the bids received for it,
// keyed by cell: each cell's last valid bid. Later bids for tick are
// refused with proto.CodeOutOfTurn. It returns nil if tick is not the open
// auction. A bid stands even if its agent has disconnected since; the
// caller knows which cells are alive.
func (h *Hub) CloseAuction(tick uint64) map[string]Bid {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.auction.open || h.auction.tick != tick {
		return nil
	}
	bids := h.auction.bids
	h.auction.open = false
	h.auction.bids = nil
	return bids
}

// placeBid records b for the session's cell, or says why it is refused.
func (h *Hub) placeBid(s *session, b *proto.Bid) *proto.Error {
	if b.Wallet != "" && b.Wallet != s.cell {
		return &proto.Error{Code: proto.CodeNotYourWallet,
			Message: fmt.Sprintf("wallet %.64q is not this agent's; its cell is %s", b.Wallet, s.cell)}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ownsLocked(s.cell, s.hd) {
		return errSuperseded
	}
	a := &h.auction
	if !a.open || b.Tick != a.tick {
		return &proto.Error{Code: proto.CodeOutOfTurn, Message: turnMessage(a, b.Tick)}
	}
	a.bids[s.cell] = Bid{Price: units.Credits(b.Price), Units: b.Units}
	return nil
}

func turnMessage(a *auction, tick uint64) string {
	switch {
	case a.open && tick < a.tick:
		return fmt.Sprintf("too late: auction %d is closed; auction %d is open", tick, a.tick)
	case a.open:
		return fmt.Sprintf("too early: auction %d is not open yet; auction %d is", tick, a.tick)
	case tick <= a.tick && a.tick > 0:
		return fmt.Sprintf("too late: auction %d is closed; no auction is open", tick)
	}
	return fmt.Sprintf("too early: auction %d is not open yet; no auction is open", tick)
}

// outbox holds the one unsent tick of a bidding connection.
type outbox struct {
	mu   sync.Mutex
	last uint64        // the newest tick put
	line []byte        // newest unsent tick message; nil if none
	err  error         // why the writer gave up, if it did
	wake chan struct{} // capacity 1: a tick is waiting
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

// put queues line, the message for tick, replacing an unsent one, and
// reports whether it did. A tick older than one already put is ignored, so
// that concurrent OpenAuction calls cannot send ticks out of order.
func (o *outbox) put(tick uint64, line []byte) (dropped bool) {
	o.mu.Lock()
	if tick <= o.last {
		o.mu.Unlock()
		return false
	}
	o.last = tick
	dropped = o.line != nil
	o.line = line
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return dropped
}

func (o *outbox) take() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	line := o.line
	o.line = nil
	return line
}

func (o *outbox) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.err = err
}

func (o *outbox) failure() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// writeTicks sends the outbox's ticks on conn until stop is closed. If a
// write fails (the agent stopped reading for longer than the write timeout,
// or left), it records why and closes conn, which ends the session.
func (h *Hub) writeTicks(conn net.Conn, s *session, ob *outbox, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-ob.wake:
		}
		line := ob.take()
		if line == nil {
			continue
		}
		if err := s.writeLine(conn, line, h.opts.WriteTimeout); err != nil {
			ob.fail(err)
			conn.Close()
			return
		}
	}
}
