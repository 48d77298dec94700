package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/model"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Ledger records the economy's money. The driver posts each tick's
// postings in one call; an error means none of them was recorded.
type Ledger interface {
	Post(ctx context.Context, postings []Posting) error
}

// Quote is what a cell is told before an auction.
type Quote struct {
	Reserve    units.Credits // per slot
	Multiplier float64       // thermal multiplier
	SlotEnergy units.Credits // per slot at multiplier 1
	Balance    units.Credits
	Won        int           // slots won in the previous auction
	Paid       units.Credits // paid in it
}

// Auctioneer carries the auction to the agents: it announces each auction
// and collects the bids made for it. The agent hub is one.
type Auctioneer interface {
	Open(tick uint64, quotes map[string]Quote)
	Close(tick uint64) map[string]Bid
}

// FreedMeter tells how many bytes each cell has freed so far (cumulative
// since the meter first saw it), for Landauer's tax. The driver asks once a
// tick for every cell.
type FreedMeter interface {
	Freed(cells map[string]cell.Cell) (map[string]uint64, error)
}

// Utilisation gives the busy fraction of the CPUs sold since its previous
// call. *model.CPUSampler is one.
type Utilisation interface {
	Sample() (float64, error)
}

// DefaultGrace is the Driver's default Grace.
const DefaultGrace = 5 * time.Second

// Driver runs a Core against real cells: the I/O half of the engine. Every
// tick it reads the thermometer and the host's energy counter once, measures
// every cell, attributes the tick's energy to the cells, has the core
// decide, posts the decision to the ledger and carries it out. The decision
// carries what it was made from (temperature, power, each cell's CPU time
// and energy), so whoever watches the economy — an API, a dashboard, a
// recorder — reads it from the decision and never reads a sensor again: on
// a host without sensors, a second reading would advance the thermal twin.
//
// Set the fields, then call Run. Admit, Fund, Retire and Hold may be called
// from other goroutines while Run runs.
type Driver struct {
	Core   *Core
	Temp   sensors.Thermometer
	Energy sensors.EnergyCounter
	// Util is the utilisation of the CPUs sold, for attributing energy
	// (busy time that is no cell's keeps its share); nil counts the cells'
	// CPU time alone as busy.
	Util Utilisation
	// Meter measures freed memory for Landauer's tax; nil taxes nothing.
	Meter  FreedMeter
	Ledger Ledger
	// Income says what each cell earned for checked useful work since it
	// was last asked; nil means nobody earns.
	Income IncomeSource
	// Auction collects bids from agents; nil means only standing bids.
	Auction Auctioneer
	Clock   clock.Clock
	Log     *slog.Logger
	// Note, if set, hears every event, stamped with the clock's time.
	Note func(event.Event)
	// OnDecision, if set, sees every decision after it is carried out
	// (state for the API, metrics, dashboards and records). It is called
	// from Run's goroutine and should not block.
	OnDecision func(Decision)
	// OnStep, if set, receives how long each tick's work took (see
	// Step), from Run's goroutine; it should not block.
	OnStep func(Step)
	// Journal, if set, receives every change to the core, in order, for
	// exact replay (see Replay). It is called with the core locked.
	Journal func(JournalEntry)
	// Grace is how long a new cell that has no standing bid gets a
	// startup bid: one slot at the reserve, placed for it each tick until
	// its agent bids for itself (an agent needs a moment to start and
	// connect; frozen, it never could). It pays for what it uses like any
	// winner. A cell that has not bid by the end of its grace stays frozen
	// until it does. 0 means DefaultGrace.
	Grace time.Duration

	mu   sync.Mutex // guards last
	last Decision

	// coreMu serialises the Core and everything below between Run and
	// Admit, Fund, Retire, Hold and Cell.
	coreMu    sync.Mutex
	started   bool // Run has journalled the core: later changes are journalled as they come
	cells     map[string]*driven
	won       map[string]wonAt // what each cell won in the last committed tick
	energy    units.Energy     // the counter's last reading
	haveE     bool
	down      bool // the ledger is unavailable
	meterDown bool
}

// driven is what the driver keeps about one cell.
type driven struct {
	c        cell.Cell
	standing Bid  // the bid that stands until replaced
	hasBid   bool // it has bid at least once (or has a standing bid by policy)
	policy   bool // the standing bid is the operator's (spawn --max-bid), not the agent's
	idle     int  // ticks its policy bid sits out, having left its last slot idle
	held     bool // paused by an operator: no bids, frozen
	frozen   bool // use setFrozen
	thaws    int  // times frozen went from true to false
	// seen is frozen and thaws at the last measure, and mem the memory
	// read then; memAge counts the measures since memory was read.
	seen struct {
		frozen bool
		thaws  int
	}
	mem     uint64
	memAge  int
	limited float64 // the CPU limit set, in cores; 0 none
	since   time.Time
	freed   uint64        // the meter's last cumulative count
	cpu     time.Duration // CPU time at the last tick
	exited  string        // why it ended, once seen
}

// IncomeSource is what a Driver asks, each tick, about every cell's
// income for useful work the host has checked.
type IncomeSource interface {
	// Earned returns the credits cell has earned since the last call.
	Earned(cell string) units.Credits
}

// setFrozen records whether the driver holds the cell frozen.
func (dc *driven) setFrozen(v bool) {
	if dc.frozen && !v {
		dc.thaws++
	}
	dc.frozen = v
}

// steady reports whether the cell has been frozen by a cgroup freezer (or
// a VM's pause) since the last measure, without a moment thawed: its CPU
// time cannot have moved. A signal cell's can (SIGCONT from any process of
// its user), so it never counts as steady.
func (dc *driven) steady() bool {
	return dc.frozen && dc.seen.frozen && dc.seen.thaws == dc.thaws && dc.c.Freezer() != cell.FreezerSignal
}

// memEvery is how many measures a steady cell's memory is read only
// once in: a frozen cell allocates nothing, and what the kernel reclaims
// from it meanwhile shows a second later.
const memEvery = 10

// Run runs the economy every Core tick until ctx ends, and then resumes
// every cell it froze and lifts every CPU limit: whatever happens, no cell
// stays frozen behind the driver. It returns ctx's error.
func (d *Driver) Run(ctx context.Context) error {
	if d.Core == nil || d.Temp == nil || d.Energy == nil || d.Ledger == nil || d.Clock == nil {
		return errors.New("engine: driver is missing a dependency")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Grace == 0 {
		d.Grace = DefaultGrace
	}
	d.coreMu.Lock()
	d.started = true
	if d.Journal != nil {
		cfg := d.Core.Config()
		d.Journal(JournalEntry{Config: &cfg})
		if t := d.Core.Tick(); t > 0 {
			d.Journal(JournalEntry{StartAt: t})
		}
		for _, name := range d.Core.Names() {
			_, w, _ := d.Core.Cell(name)
			d.Journal(JournalEntry{Admit: &JournalAdmit{Name: name, Wallet: w}})
		}
	}
	if e, err := d.Energy.ReadEnergy(); err == nil {
		d.energy, d.haveE = e, true
	}
	if d.Util != nil {
		d.Util.Sample() // the first interval starts now
	}
	var quotes map[string]Quote
	if d.Auction != nil {
		quotes = d.quotes(Decision{})
	}
	d.coreMu.Unlock()
	defer func() {
		d.coreMu.Lock()
		defer d.coreMu.Unlock()
		d.release()
	}()

	tick := d.Core.Tick() + 1
	if d.Auction != nil {
		d.Auction.Open(tick, quotes)
	}
	last := d.Clock.Now()
	t := d.Clock.NewTicker(d.Core.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.Chan():
		}
		now := d.Clock.Now()
		d.coreMu.Lock()
		st := Step{Tick: tick, Interval: now.Sub(last)}
		dec, err := d.step(ctx, tick, now.Sub(last), &st)
		if err == nil && d.Auction != nil {
			quotes = d.quotes(dec)
		}
		d.coreMu.Unlock()
		st.Total = d.Clock.Now().Sub(now)
		if d.OnStep != nil {
			d.OnStep(st)
		}
		last = now
		if err != nil {
			d.note(event.Event{Kind: event.EngineError, Detail: err.Error()})
			continue
		}
		if d.OnDecision != nil {
			d.OnDecision(dec)
		}
		tick++
		if d.Auction != nil {
			d.Auction.Open(tick, quotes)
		}
	}
}

// note stamps e with the time and the last tick and hands it on.
func (d *Driver) note(e event.Event) {
	if d.Note == nil {
		return
	}
	e.Time = d.Clock.Now()
	if e.Tick == 0 {
		e.Tick = d.Core.Tick()
	}
	d.Note(e)
}

// measure reads the host and every cell for one tick of length dt.
func (d *Driver) measure(ctx context.Context, in *Input) {
	in.Temperature, in.TempErr = d.Temp.ReadTemperature()
	var spent units.Energy
	if e, err := d.Energy.ReadEnergy(); err == nil {
		if d.haveE && e >= d.energy {
			spent = e - d.energy
		}
		d.energy, d.haveE = e, true
		in.Energy = e
		in.Power = units.AveragePower(spent, in.Dt)
	}
	if d.Auction != nil {
		for name, b := range d.Auction.Close(in.Tick) {
			if dc, ok := d.cells[name]; ok {
				dc.standing, dc.hasBid = b, dc.hasBid || b.Units > 0 // a bid stands until replaced
			}
		}
	}
	var freed map[string]uint64
	if d.Meter != nil {
		live := make(map[string]cell.Cell, len(d.cells))
		for name, dc := range d.cells {
			// A cell frozen since the last tick has made no syscall.
			if dc.exited == "" && !dc.steady() {
				live[name] = dc.c
			}
		}
		var err error
		if freed, err = d.Meter.Freed(live); err != nil && !d.meterDown {
			d.note(event.Event{Kind: event.MeterError, Detail: err.Error() + "; no Landauer tax until it recovers"})
		}
		d.meterDown = err != nil
	}
	iv := model.Interval{Elapsed: in.Dt, Energy: spent, NumCPU: d.Core.cfg.Slots}
	if d.Util != nil {
		iv.Utilisation, _ = d.Util.Sample()
		in.Utilisation = iv.Utilisation
	}
	names := d.Core.Names()
	for _, name := range names {
		dc, ok := d.cells[name]
		if !ok {
			continue
		}
		ci := CellInput{Name: name, Bid: d.bidOf(dc)}
		if d.Income != nil {
			ci.Income = d.Income.Earned(name)
		}
		if dc.exited == "" {
			select {
			case <-dc.c.Done():
				dc.exited = "process exited"
				if err := dc.c.Wait(ctx); err != nil {
					dc.exited = "process exited: " + err.Error()
				}
			default:
			}
		}
		ci.Exited, ci.ExitCause = dc.exited != "", dc.exited
		// A cell frozen since the last measure is read only now and then:
		// the daemon's cost grows with the cells that run, not with all.
		prev := dc.cpu
		if !dc.steady() || dc.memAge+1 >= memEvery {
			if st, err := cell.ReadUsage(dc.c); err == nil {
				dc.mem, dc.memAge = st.MemoryBytes, 0
				dc.cpu = max(st.CPUTime, dc.cpu)
			}
		} else {
			dc.memAge++
		}
		dc.seen.frozen, dc.seen.thaws = dc.frozen, dc.thaws
		ci.ResidentBytes = dc.mem
		ci.CPUTime = dc.cpu
		iv.CellCPU = append(iv.CellCPU, dc.cpu-prev)
		if f, ok := freed[name]; ok {
			if f >= dc.freed {
				ci.FreedBytes = f - dc.freed
			}
			dc.freed = f
		}
		in.Cells = append(in.Cells, ci)
	}
	split := model.Attribute(iv)
	for i := range in.Cells {
		in.Cells[i].Energy, in.Cells[i].Share = split.Energy[i], split.Share[i]
	}
}

// probeEvery is how many ticks a policy bid sits out after leaving its
// slots idle, before it bids again to see whether the cell has work.
const probeEvery = 10

// idleShare is the share of its slots below which a cell counts as idle.
const idleShare = 0.01

// bidOf is the cell's bid for this tick: nothing while an operator holds
// it; its own (or its policy's) standing bid; else, in its grace, a
// startup bid of one slot at the reserve. A policy bid sits out while the
// cell has no runnable work: having won slots it left idle, it bids again
// only every probeEvery ticks (pay per use makes the probe cheap).
func (d *Driver) bidOf(dc *driven) Bid {
	switch {
	case dc.held:
		return Bid{}
	case dc.hasBid:
		if dc.policy && dc.idle > 0 {
			dc.idle--
			return Bid{}
		}
		return dc.standing
	case d.Clock.Now().Sub(dc.since) < d.Grace:
		return Bid{Units: 1, AtReserve: true}
	}
	return Bid{}
}

// noteIdle marks policy bids of cells that left the slots they won idle.
func (d *Driver) noteIdle(dec Decision) {
	for _, r := range dec.Cells {
		dc, ok := d.cells[r.Name]
		if !ok || !dc.policy || dc.idle > 0 {
			continue
		}
		if prev, ok := d.won[r.Name]; ok && prev.won > 0 && dec.Dt > 0 {
			used := r.CPUTime - prev.cpu
			if float64(used) < idleShare*float64(time.Duration(prev.won)*dec.Dt) {
				dc.idle = probeEvery
			}
		}
	}
	clear(d.won)
	for _, r := range dec.Cells {
		d.won[r.Name] = wonAt{won: r.Won, cpu: r.CPUTime}
	}
}

// wonAt is what a cell won in a tick and its CPU time then.
type wonAt struct {
	won int
	cpu time.Duration
}

// Step is how long one tick's work took, by the Driver's clock: the
// phases of step, and Total from the tick's wake-up to its end (quotes
// for the next auction included). Interval is the time since the previous
// tick's wake-up: the tick's length as it happened, whose spread from the
// configured tick is the daemon's jitter.
type Step struct {
	Tick                         uint64
	Interval                     time.Duration
	Measure, Decide, Post, Apply time.Duration
	Total                        time.Duration
}

// step runs one tick: measure, decide, post, act; st receives the phases'
// durations.
func (d *Driver) step(ctx context.Context, tick uint64, dt time.Duration, st *Step) (Decision, error) {
	in := Input{Tick: tick, Dt: dt}
	t0 := d.Clock.Now()
	d.measure(ctx, &in)
	t1 := d.Clock.Now()
	dec, err := d.Core.Decide(in)
	t2 := d.Clock.Now()
	st.Measure, st.Decide = t1.Sub(t0), t2.Sub(t1)
	if err != nil {
		return dec, err
	}
	perr := d.Ledger.Post(ctx, dec.Postings)
	t3 := d.Clock.Now()
	st.Post = t3.Sub(t2)
	defer func() { st.Apply = d.Clock.Now().Sub(t3) }()
	if d.Journal != nil {
		d.Journal(JournalEntry{Tick: &JournalTick{Input: in.Record(), Decision: dec, Committed: perr == nil}})
	}
	if perr != nil {
		d.Core.Abandon(dec)
		if !d.down {
			d.note(event.Event{Tick: tick, Kind: event.LedgerUnavailable, Detail: perr.Error() + "; charging stopped and nobody is frozen until the ledger recovers"})
		}
		d.down = true
		d.resumeAll(ctx)
		// The wallets did not change: the cells keep their last lines,
		// with this tick's measurements.
		d.mu.Lock()
		prev := d.last.Cells
		d.mu.Unlock()
		dec = abandoned(dec, prev)
	} else {
		if d.down {
			d.note(event.Event{Tick: tick, Kind: event.LedgerRecovered, Detail: "charging resumed"})
		}
		d.down = false
		d.Core.Commit(dec)
		d.apply(ctx, dec)
		d.noteIdle(dec)
	}
	for _, e := range dec.Events {
		d.note(e)
	}
	d.mu.Lock()
	d.last = dec
	d.mu.Unlock()
	return dec, nil
}

// abandoned is a decision the ledger refused, as it stands: no actions, no
// postings, and every cell's wallet as it was (prev), with this tick's
// measurements.
func abandoned(dec Decision, prev []CellReport) Decision {
	was := make(map[string]CellReport, len(prev))
	for _, r := range prev {
		was[r.Name] = r
	}
	for i, r := range dec.Cells {
		p, ok := was[r.Name]
		if !ok {
			p = CellReport{Name: r.Name, State: life.Paused}
		}
		p.FreedBytes, p.MemoryBytes, p.CPUTime, p.Energy, p.Share = r.FreedBytes, r.MemoryBytes, r.CPUTime, r.Energy, r.Share
		p.BidPrice, p.BidUnits = r.BidPrice, r.BidUnits
		p.Won, p.Payment, p.Tax, p.Rent, p.Tap = 0, 0, 0, 0, 0
		if p.State != life.Dead {
			p.State = life.Running // nobody is frozen while charging is down
		}
		dec.Cells[i] = p
	}
	dec.Actions, dec.Postings = nil, nil
	return dec
}

// apply carries out a committed decision's actions.
func (d *Driver) apply(ctx context.Context, dec Decision) {
	for _, a := range dec.Actions {
		dc, ok := d.cells[a.Cell]
		if !ok {
			continue
		}
		switch a.Kind {
		case ActRun:
			if dc.held {
				continue
			}
			if l, ok := dc.c.(cell.CPULimiter); ok && dc.limited != a.Cores {
				if err := l.LimitCPU(a.Cores); err != nil {
					d.Log.Warn("limit cpu", "cell", a.Cell, "err", err)
				}
				dc.limited = a.Cores
			}
			if dc.frozen {
				if err := dc.c.Resume(ctx); err != nil {
					d.note(event.Event{Kind: event.ResumeFailed, Cell: a.Cell, Detail: err.Error()})
					continue
				}
				dc.setFrozen(false)
			}
		case ActPause:
			if !dc.frozen {
				if err := dc.c.Pause(ctx); err != nil {
					if !errors.Is(err, cell.ErrExited) {
						d.note(event.Event{Kind: event.PauseFailed, Cell: a.Cell, Detail: err.Error()})
					}
					continue
				}
				dc.setFrozen(true)
			}
		case ActKill:
			kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := dc.c.Kill(kctx)
			cancel()
			if err != nil && !errors.Is(err, cell.ErrExited) {
				d.note(event.Event{Kind: event.KillFailed, Cell: a.Cell, Detail: err.Error()})
			}
			dc.setFrozen(false)
		}
	}
}

// resumeAll thaws every cell the driver froze.
func (d *Driver) resumeAll(ctx context.Context) {
	for name, dc := range d.cells {
		if dc.frozen && !dc.held {
			if err := dc.c.Resume(ctx); err != nil && !errors.Is(err, cell.ErrExited) {
				d.Log.Warn("resume", "cell", name, "err", err)
			}
			dc.setFrozen(false)
		}
	}
}

// release leaves the cells as the driver found them: thawed and unlimited.
func (d *Driver) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, dc := range d.cells {
		if dc.frozen {
			if err := dc.c.Resume(ctx); err != nil && !errors.Is(err, cell.ErrExited) {
				d.Log.Warn("resume", "cell", name, "err", err)
			}
			dc.setFrozen(false)
		}
		if l, ok := dc.c.(cell.CPULimiter); ok && dc.limited != 0 {
			if err := l.LimitCPU(0); err != nil {
				d.Log.Debug("unlimit cpu", "cell", name, "err", err)
			}
			dc.limited = 0
		}
	}
}

// quotes returns the tick message for every cell that can read it. A
// frozen cell cannot: messages to it would pile up in its socket until the
// hub's write deadline cut it off, so it gets none; its standing bid speaks
// for it, and it hears again from the tick after it wins.
func (d *Driver) quotes(dec Decision) map[string]Quote {
	reports := make(map[string]CellReport, len(dec.Cells))
	for _, r := range dec.Cells {
		reports[r.Name] = r
	}
	slot := units.Credits(d.Core.cfg.SlotEnergy)
	q := map[string]Quote{}
	for _, name := range d.Core.Names() {
		st, w, _ := d.Core.Cell(name)
		if dc := d.cells[name]; st == life.Dead || dc == nil || dc.frozen {
			continue
		}
		quote := Quote{Reserve: dec.Reserve, Multiplier: dec.Multiplier, SlotEnergy: slot, Balance: w.Balance}
		if quote.Reserve == 0 {
			quote.Reserve, quote.Multiplier = slot, 1
		}
		if r, ok := reports[name]; ok {
			quote.Won, quote.Paid = r.Won, r.Payment
		}
		q[name] = quote
	}
	return q
}

// Admit puts a cell under the economy with wallet w: it is frozen now, and
// stays frozen until it wins a slot. standing, if not nil, is the bid made
// for it by policy each tick (for programs that do not speak the agent
// protocol); without one it gets a startup bid for its Grace (see Grace).
func (d *Driver) Admit(ctx context.Context, name string, c cell.Cell, w Wallet, standing *Bid) error {
	if err := c.Pause(ctx); err != nil {
		return fmt.Errorf("engine: freezing %s at admission: %w", name, err)
	}
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	if err := d.Core.Admit(name, w); err != nil {
		return err
	}
	if d.Journal != nil && d.started {
		d.Journal(JournalEntry{Admit: &JournalAdmit{Name: name, Wallet: w}})
	}
	if d.cells == nil {
		d.cells, d.won = map[string]*driven{}, map[string]wonAt{}
	}
	// memAge staggered: the frozen cells' memory reads spread over the
	// ticks of memEvery, not all in one.
	dc := &driven{c: c, since: d.Clock.Now(), frozen: true, memAge: len(d.cells) % memEvery}
	if standing != nil {
		dc.standing, dc.hasBid, dc.policy = *standing, true, true
	}
	d.cells[name] = dc
	return nil
}

// Hold pauses (hold true) or releases a cell at an operator's request: a
// held cell is frozen, makes no bids and pays nothing until released.
func (d *Driver) Hold(ctx context.Context, name string, hold bool) error {
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	dc, ok := d.cells[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, name)
	}
	if st, _, _ := d.Core.Cell(name); st == life.Dead {
		return fmt.Errorf("%w: %s", ErrDead, name)
	}
	dc.held = hold
	if hold && !dc.frozen {
		if err := dc.c.Pause(ctx); err != nil {
			return err
		}
		dc.setFrozen(true)
	}
	return nil
}

// Fund credits a cell's wallet (see Core.Fund). The caller posts the
// credit to the ledger first.
func (d *Driver) Fund(name string, amount units.Credits) error {
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	if err := d.Core.Fund(name, amount); err != nil {
		return err
	}
	if d.Journal != nil && d.started {
		d.Journal(JournalEntry{Fund: &JournalFund{Name: name, Amount: amount}})
	}
	return nil
}

// SetHost changes the host's limits (Core.SetHost).
func (d *Driver) SetHost(h HostSettings) error {
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	if err := d.Core.SetHost(h); err != nil {
		return err
	}
	if d.Journal != nil && d.started {
		d.Journal(JournalEntry{Host: &h})
	}
	return nil
}

// SetTerms changes a cell's tap (Core.SetTap) and, where bid is set, its
// standing bid: a policy bid, as spawn --max-bid makes (Units 0 removes
// it, leaving the cell to bid for itself). record, if set, records the
// new tap in the ledger first, between ticks: a tick decided under the
// old terms is posted before it, never after (the ledger checks taps
// against the terms in force when they come).
func (d *Driver) SetTerms(name string, rate, cap units.Credits, bid *Bid, record func() error) error {
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	dc, ok := d.cells[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, name)
	}
	if record != nil {
		if err := record(); err != nil {
			return err
		}
	}
	if err := d.Core.SetTap(name, rate, cap); err != nil {
		return err
	}
	if d.Journal != nil && d.started {
		d.Journal(JournalEntry{Tap: &JournalTap{Name: name, Rate: rate, Cap: cap}})
	}
	if bid != nil {
		if bid.Units > 0 {
			dc.standing, dc.hasBid, dc.policy, dc.idle = *bid, true, true, 0
		} else if dc.policy {
			dc.standing, dc.hasBid, dc.policy = Bid{}, false, false
		}
	}
	return nil
}

// Retire marks a cell dead at an operator's request and kills it.
func (d *Driver) Retire(ctx context.Context, name string) error {
	d.coreMu.Lock()
	dc := d.cells[name]
	err := d.Core.Kill(name)
	if err == nil && d.Journal != nil && d.started {
		d.Journal(JournalEntry{Kill: name})
	}
	d.coreMu.Unlock()
	if err != nil {
		return err
	}
	if dc != nil {
		if err := dc.c.Kill(ctx); err != nil && !errors.Is(err, cell.ErrExited) {
			return err
		}
	}
	return nil
}

// Cell returns a cell's state and wallet as the core has them now.
func (d *Driver) Cell(name string) (life.State, Wallet, bool) {
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	return d.Core.Cell(name)
}

// SetGrace changes the startup grace (see Grace) for the ticks to come.
func (d *Driver) SetGrace(g time.Duration) {
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	d.Grace = g
}

// Host returns the setpoint and the power budget in force (Core.Host).
func (d *Driver) Host() (units.Celsius, units.Power) {
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	return d.Core.Host()
}

// Last returns the last decision.
func (d *Driver) Last() Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}
