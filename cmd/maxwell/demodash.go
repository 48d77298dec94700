package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/internal/dash"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// demoDash feeds the dashboard from the demo's own engine and carries the
// dashboard's actions to it: the demo is its own daemon.
type demoDash struct {
	driver   *engine.Driver
	ledger   economy.Ledger
	temp     sensors.Thermometer
	energy   sensors.EnergyCounter
	setpoint float64
	tick     time.Duration
	start    time.Time
	done     <-chan struct{}

	mu     sync.Mutex
	prices []dash.PricePoint
	temps  []float64
	events []dash.Event
	lastE  units.Energy
	lastAt time.Time
	power  float64
	funds  int
}

// decided keeps the price history (the driver's OnDecision).
func (s *demoDash) decided(d engine.Decision) {
	t, _ := s.temp.ReadTemperature()
	clearing := float64(d.Clearing)
	if d.Revenue == 0 {
		clearing = math.NaN()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prices = append(s.prices, dash.PricePoint{Tick: d.Tick, Reserve: float64(d.Reserve), Clearing: clearing})
	s.temps = append(s.temps, float64(t))
	if n := len(s.prices); n > 600 {
		s.prices, s.temps = s.prices[n-600:], s.temps[n-600:]
	}
}

// event keeps the story's events for the event log.
func (s *demoDash) event(e record.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, dash.Event{At: time.Duration(e.Elapsed), Kind: e.Kind, Agent: e.Cell, Detail: e.Detail})
	if n := len(s.events); n > 200 {
		s.events = s.events[n-200:]
	}
}

// Next implements dash.Source: a snapshot every 250 ms, until the demo ends.
func (s *demoDash) Next(ctx context.Context) (dash.Snapshot, error) {
	t := time.NewTimer(250 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return dash.Snapshot{}, ctx.Err()
	case <-s.done:
		return dash.Snapshot{}, errors.New("the demo is over")
	case <-t.C:
	}
	dec := s.driver.Last()
	c, _ := s.temp.ReadTemperature()
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, err := s.energy.ReadEnergy(); err == nil {
		if !s.lastAt.IsZero() && e >= s.lastE {
			s.power = float64(units.AveragePower(e-s.lastE, now.Sub(s.lastAt)))
		}
		s.lastE, s.lastAt = e, now
	}
	tier := func(src sensors.Source) string {
		return map[sensors.Tier]string{sensors.TierCalibrated: "calibrated", sensors.TierSensor: "sensor", sensors.TierModel: "model"}[src.Tier]
	}
	snap := dash.Snapshot{
		Tick: dec.Tick, Uptime: now.Sub(s.start),
		Thermal: dash.Thermal{
			Temperature: dash.Reading{Value: float64(c), Tier: tier(s.temp.Source()), Source: string(s.temp.Source().Kind) + " " + s.temp.Source().Name},
			Setpoint:    s.setpoint,
			Power:       dash.Reading{Value: s.power, Tier: tier(s.energy.Source()), Source: string(s.energy.Source().Kind) + " " + s.energy.Source().Name},
			History:     append([]float64(nil), s.temps...),
		},
		Prices: append([]dash.PricePoint(nil), s.prices...),
		Events: append([]dash.Event(nil), s.events...),
	}
	states := map[engine.State]dash.State{engine.Running: dash.Running, engine.Paused: dash.Paused, engine.Hibernating: dash.Hibernating, engine.Dead: dash.Dead}
	slot := 0
	for _, r := range dec.Cells {
		burn := float64(r.Payment+r.Tax+r.Rent) / s.tick.Seconds()
		snap.Wallets = append(snap.Wallets, dash.WalletRow{Agent: r.Name, Balance: float64(r.Balance), BurnRate: burn, TaxPaid: float64(r.TaxTotal), State: states[r.State]})
		if r.BidUnits > 0 && r.State != engine.Dead {
			row := dash.BidRow{Agent: r.Name, Bid: float64(r.BidPrice), Won: r.Won > 0, Weight: float64(r.Won), Payment: float64(r.Payment)}
			if r.Won > 0 {
				slot++
				row.Slot = slot
			}
			snap.Auction = append(snap.Auction, row)
		}
	}
	return snap, nil
}

// Pause implements dash.Actions.
func (s *demoDash) Pause(ctx context.Context, agent string) error {
	return s.driver.Hold(ctx, agent, true)
}

// Resume implements dash.Actions.
func (s *demoDash) Resume(ctx context.Context, agent string) error {
	return s.driver.Hold(ctx, agent, false)
}

// Kill implements dash.Actions: the kill switch, with the wallet settled.
func (s *demoDash) Kill(ctx context.Context, agent string) error {
	if err := s.driver.Retire(ctx, agent); err != nil {
		return err
	}
	_, err := s.ledger.L.CloseWallet(ctx, "kill/cell:"+agent, 0, agent)
	return err
}

// Fund implements dash.Actions: the ledger first, then the engine.
func (s *demoDash) Fund(ctx context.Context, agent string, amount float64) error {
	if !(amount > 0) || amount > math.MaxInt64/4 {
		return fmt.Errorf("fund %v: want a positive number of credits", amount)
	}
	s.mu.Lock()
	s.funds++
	key := "dash-fund/cell:" + agent + "/" + strconv.Itoa(s.funds)
	s.mu.Unlock()
	if err := s.ledger.Fund(ctx, key, agent, int64(amount)); err != nil {
		return err
	}
	return s.driver.Fund(agent, int64(amount))
}

// show runs the dashboard until the demo ends or the user quits; quitting
// early stops the demo.
func (s *demoDash) show(ctx context.Context, stop context.CancelFunc) error {
	m := dash.New(ctx, s, s, dash.Options{GoneLinger: 3 * time.Second})
	_, err := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx)).Run()
	stop()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
