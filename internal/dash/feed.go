package dash

import (
	"github.com/maxwellhq/maxwell/internal/life"

	"context"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Backend is what the dashboard watches and acts on: an economy's
// operations. A daemon's control API client (*api.Client, for `maxwell
// top`) and an economy in the same process (*economy.Economy, for `maxwell
// demo`) are both one, so the dashboard shows the same figures from the
// same code either way.
type Backend interface {
	State(ctx context.Context) (api.State, error)
	Pause(ctx context.Context, name string) error
	Resume(ctx context.Context, name string) error
	Kill(ctx context.Context, name string) error
	Fund(ctx context.Context, name string, credits units.Credits) error
}

// Feed is the dashboard's Source and Actions over a Backend: each Next
// polls the state until the economy has decided a new tick.
type Feed struct {
	B Backend
	// Interval is how often Next polls; 0 means 250 ms.
	Interval time.Duration

	tick uint64
}

var (
	_ Source  = (*Feed)(nil)
	_ Actions = (*Feed)(nil)
)

// Next implements Source.
func (f *Feed) Next(ctx context.Context) (Snapshot, error) {
	interval := f.Interval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := f.B.State(ctx)
		if err != nil {
			return Snapshot{}, err
		}
		if st.Tick > f.tick || (st.Tick == 0 && f.tick == 0) {
			f.tick = max(st.Tick, 1)
			return SnapshotOf(st), nil
		}
		select {
		case <-ctx.Done():
			return Snapshot{}, ctx.Err()
		case <-t.C:
		}
	}
}

// Pause implements Actions.
func (f *Feed) Pause(ctx context.Context, agent string) error { return f.B.Pause(ctx, agent) }

// Resume implements Actions.
func (f *Feed) Resume(ctx context.Context, agent string) error { return f.B.Resume(ctx, agent) }

// Kill implements Actions.
func (f *Feed) Kill(ctx context.Context, agent string) error { return f.B.Kill(ctx, agent) }

// Fund implements Actions.
func (f *Feed) Fund(ctx context.Context, agent string, amount units.Credits) error {
	return f.B.Fund(ctx, agent, amount)
}

// SnapshotOf turns an economy's state into the dashboard's snapshot.
func SnapshotOf(st api.State) Snapshot {
	tier := func(s api.Source) string {
		return map[int]string{1: "calibrated", 2: "sensor", 3: "model"}[s.Tier]
	}
	snap := Snapshot{
		Tick: st.Tick, Uptime: st.Time.Sub(st.Started),
		Thermal: Thermal{
			Temperature: Reading{Value: st.Temperature.Celsius, Tier: tier(st.Temperature.Source), Source: st.Temperature.Source.Kind + " " + st.Temperature.Source.Name},
			Setpoint:    st.Temperature.Setpoint,
			Power:       Reading{Value: st.Power.Watts, Tier: tier(st.Power.Source), Source: st.Power.Source.Kind + " " + st.Power.Source.Name},
		},
	}
	for _, p := range st.History {
		snap.Prices = append(snap.Prices, PricePoint{Tick: p.Tick, Reserve: p.Reserve, Clearing: p.Clearing, Sold: p.Clearing > 0})
		snap.Thermal.History = append(snap.Thermal.History, p.Celsius)
	}
	slot := 0
	for _, c := range st.Cells {
		snap.Wallets = append(snap.Wallets, WalletRow{Agent: c.Name, Balance: c.Balance, BurnRate: c.BurnRate, TaxPaid: c.Tax, State: c.State})
		if c.BidUnits > 0 && c.State != life.Dead {
			row := BidRow{Agent: c.Name, Bid: c.BidPrice, Won: c.Won > 0, Weight: float64(c.Won), Payment: c.Payment}
			if c.Won > 0 {
				slot++
				row.Slot = slot
			}
			snap.Auction = append(snap.Auction, row)
		}
	}
	for _, e := range st.Events {
		snap.Events = append(snap.Events, Event{At: e.Time.Sub(st.Started), Kind: e.Kind, Agent: e.Cell, Detail: e.Detail})
	}
	return snap
}
