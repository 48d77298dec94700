package dash

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/api/apitest"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
)

func TestSnapshotOf(t *testing.T) {
	start := time.Unix(1000, 0)
	st := api.State{
		Time: start.Add(90 * time.Second), Started: start, Tick: 900,
		Temperature: api.Temperature{Celsius: 57.5, Setpoint: 55, Source: api.Source{Kind: "model", Name: "rc-twin", Tier: 3, Estimated: true}},
		Power:       api.Power{Watts: 12.5, Source: api.Source{Kind: "rapl", Name: "package-0", Tier: 2}},
		Cells: []api.Cell{
			{Name: "scientist", State: life.Running, Balance: 500, BidPrice: 1500, BidUnits: 2, Won: 2, Payment: 3000, Tax: 7, BurnRate: 30000},
			{Name: "miner", State: life.Dead, Balance: -20, BidPrice: 9000, BidUnits: 2, Tax: 99},
			{Name: "waiter", State: life.Paused, Balance: 100, BidPrice: 10, BidUnits: 1},
		},
		Events:  []event.Event{{Time: start.Add(8 * time.Second), Kind: event.Apoptosis, Cell: "miner", Detail: "broke"}},
		History: []api.PricePoint{{Tick: 899, Celsius: 57, Reserve: 1000, Clearing: 1500}, {Tick: 900, Celsius: 57.5, Reserve: 1100}},
	}
	s := SnapshotOf(st)
	if s.Tick != 900 || s.Uptime != 90*time.Second {
		t.Errorf("tick %d uptime %v", s.Tick, s.Uptime)
	}
	if s.Thermal.Temperature.Value != 57.5 || !s.Thermal.Temperature.Estimated() || s.Thermal.Power.Tier != "sensor" || s.Thermal.Setpoint != 55 {
		t.Errorf("thermal %+v", s.Thermal)
	}
	if len(s.Prices) != 2 || s.Prices[1].Sold || !s.Prices[0].Sold || s.Prices[0].Clearing != 1500 || len(s.Thermal.History) != 2 {
		t.Errorf("prices %+v history %v", s.Prices, s.Thermal.History)
	}
	if len(s.Wallets) != 3 || s.Wallets[1].State != life.Dead || s.Wallets[1].TaxPaid != 99 {
		t.Errorf("wallets %+v", s.Wallets)
	}
	// The dead miner is off the auction board; the waiter bid and lost.
	if len(s.Auction) != 2 || !s.Auction[0].Won || s.Auction[0].Slot != 1 || s.Auction[1].Won || s.Auction[1].Slot != 0 {
		t.Errorf("auction %+v", s.Auction)
	}
	if len(s.Events) != 1 || s.Events[0].At != 8*time.Second || s.Events[0].Agent != "miner" || s.Events[0].Kind != event.Apoptosis {
		t.Errorf("events %+v", s.Events)
	}
}

// TestFeedOverTheAPI feeds the dashboard from a control API client, the
// way `maxwell top` does.
func TestFeedOverTheAPI(t *testing.T) {
	b := &apitest.Backend{}
	b.SetCells(api.Cell{Name: "agent-1", State: life.Running, Balance: 10})
	c, err := api.Dial(apitest.Serve(t, b))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := &Feed{B: c, Interval: 10 * time.Millisecond}
	snap, err := f.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Wallets) != 1 || snap.Wallets[0].Agent != "agent-1" {
		t.Errorf("snapshot wallets %+v", snap.Wallets)
	}
	// The backend's tick does not move: the next snapshot waits for one.
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if _, err := f.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next without a new tick: %v", err)
	}
	if err := f.Fund(ctx, "agent-1", 5); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(ctx); st.Cells[0].Balance != 15 {
		t.Errorf("balance after fund %d, want 15", st.Cells[0].Balance)
	}
	if err := f.Kill(ctx, "nobody"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("kill nobody: %v", err)
	}
	// A daemon that is not there: a clear error, no panic.
	gone, err := api.Dial(t.TempDir() + "/none.sock")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Feed{B: gone}).Next(ctx); !errors.Is(err, api.ErrNotRunning) {
		t.Errorf("Next against no daemon: %v", err)
	}
}
