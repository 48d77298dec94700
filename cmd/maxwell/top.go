package main

import (
	"context"
	"fmt"
	"math"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/dash"
)

func newTopCmd(a *app) *cobra.Command {
	var (
		readOnly bool
		sock     *string
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Watch a running daemon's economy in the terminal, and act on its agents",
		Long: `Attach the terminal dashboard to a running ` + "`maxwell daemon`" + `: temperature against
setpoint, power, prices, this tick's auction, wallets and events. Keys: ? help,
sort by column, / filter, p pause, r resume, x kill, f fund, q quit.
--read-only disables every action.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Ping(cmd.Context()); err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			var acts dash.Actions = topActions{c}
			m := dash.New(ctx, &topSource{c: c}, acts, dash.Options{ReadOnly: readOnly, GoneLinger: 2 * time.Second})
			final, err := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx)).Run()
			cancel()
			if err != nil {
				return err
			}
			if fm, ok := final.(dash.Model); ok && fm.Err() != nil {
				return fm.Err()
			}
			return nil
		},
	}
	sock = socketFlag(cmd)
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "disable pause, resume, kill and fund")
	return cmd
}

// topSource feeds the dashboard from the daemon's state.
type topSource struct {
	c    *api.Client
	tick uint64
}

func (s *topSource) Next(ctx context.Context) (dash.Snapshot, error) {
	st, err := s.c.NextState(ctx, s.tick, 250*time.Millisecond)
	if err != nil {
		return dash.Snapshot{}, err
	}
	s.tick = st.Tick
	return snapshotOf(st), nil
}

// snapshotOf turns the daemon's state into the dashboard's snapshot.
func snapshotOf(st api.State) dash.Snapshot {
	tier := func(s api.Source) string {
		return map[int]string{1: "calibrated", 2: "sensor", 3: "model"}[s.Tier]
	}
	snap := dash.Snapshot{
		Tick: st.Tick, Uptime: st.Time.Sub(st.Started),
		Thermal: dash.Thermal{
			Temperature: dash.Reading{Value: st.Temperature.Celsius, Tier: tier(st.Temperature.Source), Source: st.Temperature.Source.Kind + " " + st.Temperature.Source.Name},
			Setpoint:    st.Temperature.Setpoint,
			Power:       dash.Reading{Value: st.Power.Watts, Tier: tier(st.Power.Source), Source: st.Power.Source.Kind + " " + st.Power.Source.Name},
		},
	}
	for _, p := range st.History {
		clearing := float64(p.Clearing)
		if p.Clearing == 0 {
			clearing = math.NaN()
		}
		snap.Prices = append(snap.Prices, dash.PricePoint{Tick: p.Tick, Reserve: float64(p.Reserve), Clearing: clearing})
		snap.Thermal.History = append(snap.Thermal.History, p.Celsius)
	}
	states := map[api.CellState]dash.State{api.Running: dash.Running, api.Paused: dash.Paused, api.Hibernating: dash.Hibernating, api.Dead: dash.Dead}
	slot := 0
	for _, c := range st.Cells {
		snap.Wallets = append(snap.Wallets, dash.WalletRow{Agent: c.Name, Balance: float64(c.Balance), BurnRate: c.BurnRate, TaxPaid: float64(c.Tax), State: states[c.State]})
		if c.BidUnits > 0 && c.State != api.Dead {
			row := dash.BidRow{Agent: c.Name, Bid: float64(c.BidPrice), Won: c.Won > 0, Weight: float64(c.Won), Payment: float64(c.Payment)}
			if c.Won > 0 {
				slot++
				row.Slot = slot
			}
			snap.Auction = append(snap.Auction, row)
		}
	}
	for _, e := range st.Events {
		snap.Events = append(snap.Events, dash.Event{At: e.Time.Sub(st.Started), Kind: e.Kind, Agent: e.Cell, Detail: e.Detail})
	}
	return snap
}

// topActions carries the dashboard's actions to the daemon.
type topActions struct{ c *api.Client }

func (t topActions) Pause(ctx context.Context, agent string) error  { return t.c.Pause(ctx, agent) }
func (t topActions) Resume(ctx context.Context, agent string) error { return t.c.Resume(ctx, agent) }
func (t topActions) Kill(ctx context.Context, agent string) error   { return t.c.Kill(ctx, agent) }
func (t topActions) Fund(ctx context.Context, agent string, amount float64) error {
	if amount <= 0 || amount > math.MaxInt64/2 || math.IsNaN(amount) {
		return fmt.Errorf("fund %v: want a positive number of credits", amount)
	}
	return t.c.Fund(ctx, agent, int64(amount))
}
