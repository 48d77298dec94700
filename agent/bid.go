package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
)

// BidTimeout bounds RunBidder's wait for the host to answer one bid. A bid
// the host has not answered by then is left to it, and the next tick gets
// a new one.
const BidTimeout = 2 * time.Second

// ErrNotBidding is returned by RunBidder when the host sends no ticks: the
// Client was dialled without Config.Bidding, or the host runs no auction.
var ErrNotBidding = errors.New("agent: host sends no ticks")

// Strategy decides an agent's bid from a tick: price in credits per full
// slot for each of units slots, or ok false to abstain from this auction.
type Strategy func(t proto.Tick) (price uint64, units int, ok bool)

// RunBidder bids in every auction the host announces on c.Ticks, as
// strategy says, until ctx ends (it returns ctx's error) or the connection
// does (it returns why). Only the newest tick is bid on: an agent that falls
// behind skips auctions rather than bid late. The host refusing a bid
// without closing the connection (proto.CodeOutOfTurn when the bid came too
// late) does not stop RunBidder; a bid the strategy should never have made
// (see proto.ValidateBid) does.
func RunBidder(ctx context.Context, c *Client, strategy Strategy) error {
	if !c.Bidding() {
		return ErrNotBidding
	}
	for {
		var t proto.Tick
		var open bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case t, open = <-c.Ticks():
		}
		if !open {
			if err := c.sticky(); err != nil && !c.isClosed() {
				return err
			}
			return ErrClosed
		}
		price, units, ok := strategy(t)
		if !ok {
			continue
		}
		if err := proto.ValidateBid(&proto.Bid{Tick: t.Tick, Price: price, Units: units}); err != nil {
			return fmt.Errorf("agent: strategy: %w", err)
		}
		bctx, cancel := context.WithTimeout(ctx, BidTimeout)
		err := c.Bid(bctx, t.Tick, price, units)
		cancel()
		var pe *ProtocolError
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
		case errors.As(err, &pe) && !pe.Fatal:
		default:
			return err
		}
	}
}
