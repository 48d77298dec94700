package economy

import (
	"context"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Bounds of what the economy remembers for its State.
const (
	historyLen = 600 // a minute of ticks at 100 ms
	eventsLen  = 200
	// watchBuffer is how many events a watcher may fall behind by; a
	// watcher further behind misses events (and is told how many).
	watchBuffer = 4096
)

// accounts is what the economy adds up from the decisions, host-wide.
type accounts struct {
	last       engine.Decision
	energy     units.Energy // host energy since the start
	idle       units.Energy // the part of energy that is idle power × time (power model only)
	lastE      units.Energy // the counter's reading in the last decision
	lastTime   time.Time    // when the last decision was kept
	haveE      bool
	busy       time.Duration // busy CPU time of the CPUs sold, since the start
	apoptoses  uint64
	history    []api.PricePoint
	eventsLost uint64
}

// cellAccount is what the economy adds up for one cell.
type cellAccount struct {
	report engine.CellReport
	energy units.Energy // attributed since admission
	freed  uint64       // bytes freed since admission, as metered
	rent   units.Credits
	won    uint64 // slots won since admission
	ticks  uint64 // ticks decided in
	spends []spentAt
}

// spentAt is what a cell had spent in all (payment, tax and rent) at a
// time: the samples of its burn rate over api.BurnWindow.
type spentAt struct {
	t     time.Time
	spent units.Credits
}

// spent is what the cell has spent since admission.
func (c *cellAccount) spent() units.Credits {
	return c.report.PaidTotal + c.report.TaxTotal + c.rent
}

// sample adds the cell's spending at now and forgets the samples older
// than the window needs.
func (c *cellAccount) sample(now time.Time) {
	c.spends = append(c.spends, spentAt{now, c.spent()})
	// Keep the newest sample at or before now - window: the window's start.
	i := 0
	for i+1 < len(c.spends) && !c.spends[i+1].t.After(now.Add(-api.BurnWindow)) {
		i++
	}
	c.spends = slices.Delete(c.spends, 0, i)
}

// burnRate is what the cell spent per second over the samples' span (at
// most api.BurnWindow, since the oldest sample kept).
func (c *cellAccount) burnRate() float64 {
	if len(c.spends) < 2 {
		return 0
	}
	first, last := c.spends[0], c.spends[len(c.spends)-1]
	dt := last.t.Sub(first.t).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(last.spent-first.spent) / dt
}

// decided keeps what a decision carries (the driver's OnDecision).
func (e *Economy) decided(dec engine.Decision) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := &e.acct
	a.last = dec
	now := e.clock.Now()
	a.lastTime = now
	if a.haveE && dec.Energy >= a.lastE {
		spent := dec.Energy - a.lastE
		a.energy += spent
		a.idle += min(e.tel.IdlePower.Over(dec.Dt), spent)
	}
	a.lastE, a.haveE = dec.Energy, true
	a.busy += time.Duration(dec.Utilisation * float64(dec.Dt) * float64(len(e.opts.CPUs)))
	for _, r := range dec.Cells {
		m, ok := e.cells[r.Name]
		if !ok {
			continue
		}
		m.acct.report = r
		m.acct.energy += r.Energy
		m.acct.freed += r.FreedBytes
		m.acct.rent += r.Rent
		m.acct.won += uint64(max(r.Won, 0))
		m.acct.ticks++
		m.acct.sample(now)
	}
	a.history = append(a.history, api.PricePoint{Tick: dec.Tick, Time: now, Celsius: finite(float64(dec.Temperature)),
		Multiplier: dec.Multiplier, Reserve: dec.Reserve, Clearing: dec.Clearing})
	if n := len(a.history); n > historyLen {
		a.history = slices.Delete(a.history, 0, n-historyLen)
	}
}

// note records an event, logs it and hands it to the watchers.
func (e *Economy) note(ev event.Event) {
	if ev.Time.IsZero() {
		ev.Time = e.clock.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Tick == 0 {
		ev.Tick = e.acct.last.Tick
	}
	if ev.Kind == event.Apoptosis {
		e.acct.apoptoses++
	}
	e.events = append(e.events, ev)
	if n := len(e.events); n > eventsLen {
		e.events = slices.Delete(e.events, 0, n-eventsLen)
	}
	for w := range e.watchers {
		select {
		case w <- ev:
		default:
			e.acct.eventsLost++
		}
	}
	switch ev.Kind {
	case event.AgentConnected, event.AgentDisconnected, event.AgentRefused, event.AgentProtocolError:
		e.log.Debug("event", "kind", ev.Kind, "cell", ev.Cell, "detail", ev.Detail)
	default:
		e.log.Info("event", "kind", ev.Kind, "cell", ev.Cell, "detail", ev.Detail)
	}
}

// Watch returns every event from now on, in order, until ctx ends (then
// the channel is closed). A watcher that falls more than a few thousand
// events behind misses the rest; State counts them.
func (e *Economy) Watch(ctx context.Context) <-chan event.Event {
	w := make(chan event.Event, watchBuffer)
	e.mu.Lock()
	e.watchers[w] = struct{}{}
	e.mu.Unlock()
	context.AfterFunc(ctx, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.watchers[w]; ok {
			delete(e.watchers, w)
			close(w)
		}
	})
	return w
}

// State returns a snapshot of the economy: the host, the market, every
// cell and what happened recently, from the last decision. It reads no
// sensor.
func (e *Economy) State(ctx context.Context) (api.State, error) {
	if err := ctx.Err(); err != nil {
		return api.State{}, err
	}
	// The wallets as the core has them now (an operator's fund shows at
	// once), read before the economy's lock: the core's lock is held
	// during a tick, whose events take the economy's.
	e.mu.Lock()
	names := slices.Clone(e.order)
	e.mu.Unlock()
	type wallet struct {
		st life.State
		w  engine.Wallet
	}
	wallets := make(map[string]wallet, len(names))
	for _, n := range names {
		if st, w, ok := e.driver.Cell(n); ok {
			wallets[n] = wallet{st, w}
		}
	}
	counters := e.hub.Snapshot()
	setpoint, budget := e.driver.Host()

	e.mu.Lock()
	defer e.mu.Unlock()
	a := &e.acct
	dec := a.last
	en, te := e.tel.Sources()
	s := api.State{
		Time: e.clock.Now(), Started: e.started, Tick: dec.Tick, TickSeconds: e.econf.Tick.Seconds(), Slots: e.econf.Slots,
		IdleEnergyJoules: a.idle.Joules(), LedgerErrors: e.ledgerErrors.Load(),
		AgentRefused: e.agentRefused.Load(), AgentProtocolErrors: e.agentProtocolErrors.Load(),
		Policy:       string(e.econf.Policy),
		EnergyJoules: a.energy.Joules(), BusyCPUSeconds: a.busy.Seconds(),
		Multiplier: dec.Multiplier, Reserve: dec.Reserve, Clearing: dec.Clearing, FailSafe: dec.FailSafe,
		Binding: string(dec.Binding), PowerBudgetWatts: float64(budget), Profile: e.profile,
		Apoptoses: a.apoptoses, EventsLost: a.eventsLost,
		Temperature: api.Temperature{Celsius: finite(float64(dec.Temperature)), Setpoint: float64(setpoint),
			Error: dec.TempErr, Source: api.SourceOf(te)},
		Power: api.Power{Watts: finite(float64(dec.Power)), IdleWatts: float64(e.tel.IdlePower), Source: api.SourceOf(en)},
	}
	if dec.Tick > 0 {
		s.TickTime = a.lastTime
	}
	if dec.Tick == 0 {
		s.Temperature.Error = "no tick yet"
		s.Power.Error = "no tick yet"
	}
	for _, name := range e.order {
		// A cell spawned or adopted since the wallets were read, or not
		// yet admitted to the core, shows from the next snapshot on.
		w, ok := wallets[name]
		if !ok {
			continue
		}
		m := e.cells[name]
		r := m.acct.report
		row := api.Cell{
			Name: name, State: w.st, PID: m.c.PID(), Backend: m.c.Backend(), Cgroup: m.cgroup, ContainerID: m.containerID,
			Argv: m.argv, User: m.user, OwnerUID: m.owner,
			Balance: w.w.Balance, Endowment: w.w.Endowment, TapRate: w.w.TapRate, TapCap: w.w.TapCap,
			Payment: r.Payment, Paid: r.PaidTotal, Tax: r.TaxTotal, Income: r.IncomeTotal, BidPrice: r.BidPrice, BidUnits: r.BidUnits, Won: r.Won,
			Rent: m.acct.rent, WonSlots: m.acct.won, Ticks: m.acct.ticks,
			FreedBytes: m.acct.freed, Energy: m.acct.energy.Joules(), EnergyEstimated: en.Estimated(),
			CPUShare: r.Share, CPUSeconds: r.CPUTime.Seconds(), MemoryBytes: r.MemoryBytes, Standing: m.standing,
		}
		row.IncomeStopped = e.incomeStopped(name)
		e.adoptedRow(&row)
		if w.st != life.Dead {
			row.BurnRate = m.acct.burnRate()
		}
		if c, ok := counters[name]; ok {
			row.Counters = maps.Clone(c.Counters)
			if c.Useful != nil {
				row.Useful = &api.Useful{Counter: c.Useful.Counter, Unit: c.Useful.Unit, Work: c.Counters[c.Useful.Counter]}
			}
		}
		s.Cells = append(s.Cells, row)
	}
	s.Events = slices.Clone(e.events)
	s.History = slices.Clone(a.history)
	return s, nil
}

// finite turns NaN and infinities, which JSON cannot carry, into 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
