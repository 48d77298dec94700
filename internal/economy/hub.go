package economy

import (
	"log/slog"

	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/hub"
)

// Auctioneer adapts the agent hub to engine.Auctioneer: it announces each
// auction to the bidding agents and collects their bids.
type Auctioneer struct {
	H   *hub.Hub
	Log *slog.Logger
}

// Open implements engine.Auctioneer.
func (a Auctioneer) Open(tick uint64, quotes map[string]engine.Quote) {
	err := a.H.OpenAuction(tick, func(cell string) (hub.TickInfo, bool) {
		q, ok := quotes[cell]
		if !ok {
			return hub.TickInfo{}, false
		}
		return hub.TickInfo{Reserve: q.Reserve, Multiplier: q.Multiplier, SlotEnergy: q.SlotEnergy,
			Balance: q.Balance, Won: q.Won, Paid: q.Paid}, true
	})
	if err != nil && a.Log != nil {
		a.Log.Warn("open auction", "tick", tick, "err", err)
	}
}

// Close implements engine.Auctioneer.
func (a Auctioneer) Close(tick uint64) map[string]engine.Bid {
	bids := a.H.CloseAuction(tick)
	out := make(map[string]engine.Bid, len(bids))
	for cell, b := range bids {
		out[cell] = engine.Bid{Price: b.Price, Units: b.Units}
	}
	return out
}
