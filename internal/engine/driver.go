package engine

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

// Ledger records the economy's money. The driver posts each tick's
// postings in one call; an error means none of them was recorded.
type Ledger interface {
	Post(ctx context.Context, postings []Posting) error
}

// Quote is what a cell is told before an auction.
type Quote struct {
	Reserve    uint64  // credits per slot
	Multiplier float64 // thermal multiplier
	SlotEnergy uint64  // credits per slot at multiplier 1
	Balance    int64
	Won        int   // slots won in the previous auction
	Paid       int64 // credits paid in it
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

// DefaultGrace is the Driver's default Grace.
const DefaultGrace = 5 * time.Second

// Driver runs a Core against real cells: the I/O half of the engine. It
// implements experiment.Governor.
type Driver struct {
	Core *Core
	Temp sensors.Thermometer
	// Meter measures freed memory for Landauer's tax; nil taxes nothing.
	Meter  FreedMeter
	Ledger Ledger
	// Auction collects bids from agents; nil means only Standing bids.
	Auction Auctioneer
	// Standing are bids by policy for cells that do not bid themselves
	// (a budgeted agent: an operator's spend cap, set at spawn).
	Standing map[string]Bid
	Clock    clock.Clock
	Log      *slog.Logger
	// OnDecision, if set, sees every decision (dashboards, metrics).
	OnDecision func(Decision)
	// Journal, if set, receives every change to the core, in order, for
	// exact replay (see Replay). It is called with the core locked.
	Journal func(JournalEntry)
	// Grace is how long a new cell may run before its first bid without
	// being frozen (an agent needs a moment to start and connect; frozen,
	// it never could). 0 means DefaultGrace.
	Grace time.Duration

	mu   sync.Mutex // guards last
	last Decision
	// coreMu serialises the Core between the tick loop and Admit, Fund
	// and Retire, which a daemon calls from its control API.
	coreMu    sync.Mutex
	cells     map[string]cell.Cell
	standing  map[string]Bid
	freed     map[string]uint64
	frozen    map[string]bool
	since     map[string]time.Time // when the driver first saw each cell
	held      map[string]bool      // paused by an operator: no bids, frozen
	hasBid    map[string]bool
	limited   map[string]int
	down      bool // the ledger is unavailable
	meterDown bool
}

// Govern runs the economy on cells every Core tick until ctx ends, and
// then resumes every cell it froze and lifts every CPU limit: whatever
// happens, no cell stays frozen behind the driver.
func (d *Driver) Govern(ctx context.Context, cells map[string]cell.Cell, note func(kind, cell, detail string)) error {
	if d.Core == nil || d.Temp == nil || d.Ledger == nil || d.Clock == nil {
		return errors.New("engine: driver is missing a dependency")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d.coreMu.Lock()
	if d.standing == nil {
		d.standing = map[string]Bid{}
	}
	for k, v := range d.Standing {
		d.standing[k] = v
	}
	if d.cells == nil {
		d.cells = make(map[string]cell.Cell, len(cells))
	}
	for name, c := range cells {
		d.cells[name] = c
	}
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
	d.freed, d.frozen, d.limited = map[string]uint64{}, map[string]bool{}, map[string]int{}
	d.since, d.hasBid = map[string]time.Time{}, map[string]bool{}
	if d.Grace == 0 {
		d.Grace = DefaultGrace
	}
	if d.Meter != nil {
		if f, err := d.Meter.Freed(d.cells); err == nil {
			d.freed = f
		} else {
			note("meter_error", "", err.Error())
		}
	}
	d.coreMu.Unlock()
	defer func() {
		d.coreMu.Lock()
		defer d.coreMu.Unlock()
		d.release(d.cells)
	}()

	tick := d.Core.Tick() + 1
	if d.Auction != nil {
		d.coreMu.Lock()
		q := d.quotes(Decision{})
		d.coreMu.Unlock()
		d.Auction.Open(tick, q)
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
		dec, err := d.step(ctx, tick, now.Sub(last), d.cells, note)
		var quotes map[string]Quote
		if err == nil && d.Auction != nil {
			quotes = d.quotes(dec)
		}
		d.coreMu.Unlock()
		last = now
		if err != nil {
			note("engine_error", "", err.Error())
			continue
		}
		tick++
		if d.Auction != nil {
			d.Auction.Open(tick, quotes)
		}
	}
}

// step runs one tick: measure, decide, post, act.
func (d *Driver) step(ctx context.Context, tick uint64, dt time.Duration, cells map[string]cell.Cell, note func(kind, cell, detail string)) (Decision, error) {
	in := Input{Tick: tick, Dt: dt}
	in.Temperature, in.TempErr = d.Temp.ReadTemperature()
	if d.Auction != nil {
		for name, b := range d.Auction.Close(tick) {
			d.standing[name] = b // a bid stands until replaced
		}
	}
	var freed map[string]uint64
	if d.Meter != nil {
		var err error
		if freed, err = d.Meter.Freed(cells); err != nil && !d.meterDown {
			note("meter_error", "", err.Error()+"; no Landauer tax until it recovers")
		}
		d.meterDown = err != nil
	}
	for _, name := range d.Core.Names() {
		c, ok := cells[name]
		if !ok {
			continue
		}
		ci := CellInput{Name: name, Bid: d.standing[name]}
		if d.held[name] {
			ci.Bid = Bid{} // an operator's pause: it neither bids nor pays
		}
		if _, ok := d.since[name]; !ok {
			d.since[name] = d.Clock.Now()
		}
		if ci.Bid.Units > 0 {
			d.hasBid[name] = true
		}
		select {
		case <-c.Done():
			ci.Exited = true
			ci.ExitCause = "process exited"
			if err := c.Wait(ctx); err != nil {
				ci.ExitCause = "process exited: " + err.Error()
			}
		default:
		}
		if st, err := c.Stats(); err == nil {
			ci.ResidentBytes = st.MemoryBytes
		}
		if f, ok := freed[name]; ok {
			if f >= d.freed[name] {
				ci.FreedBytes = f - d.freed[name]
			}
			d.freed[name] = f
		}
		in.Cells = append(in.Cells, ci)
	}
	dec, err := d.Core.Decide(in)
	if err != nil {
		return dec, err
	}
	perr := d.Ledger.Post(ctx, dec.Postings)
	if d.Journal != nil {
		d.Journal(JournalEntry{Tick: &JournalTick{Input: in.Record(), Decision: dec, Committed: perr == nil}})
	}
	if err := perr; err != nil {
		d.Core.Abandon(dec)
		if !d.down {
			note("ledger_unavailable", "", err.Error()+"; charging stopped and nobody is frozen until the ledger recovers")
		}
		d.down = true
		d.resumeAll(ctx, cells)
		d.mu.Lock()
		dec.Cells = d.last.Cells // the wallets did not change
		d.mu.Unlock()
	} else {
		if d.down {
			note("ledger_recovered", "", "charging resumed")
		}
		d.down = false
		d.Core.Commit(dec)
		d.apply(ctx, dec, cells, note)
	}
	for _, e := range dec.Events {
		note(e.Kind, e.Cell, e.Detail)
	}
	d.mu.Lock()
	d.last = dec
	d.mu.Unlock()
	if d.OnDecision != nil {
		d.OnDecision(dec)
	}
	return dec, nil
}

// apply carries out a committed decision's actions.
func (d *Driver) apply(ctx context.Context, dec Decision, cells map[string]cell.Cell, note func(kind, cell, detail string)) {
	for _, a := range dec.Actions {
		c, ok := cells[a.Cell]
		if !ok {
			continue
		}
		switch a.Kind {
		case ActRun:
			if d.held[a.Cell] {
				continue
			}
			if l, ok := c.(cell.CPULimiter); ok && d.limited[a.Cell] != a.Cores {
				if err := l.LimitCPU(float64(a.Cores)); err != nil {
					d.Log.Warn("limit cpu", "cell", a.Cell, "err", err)
				}
				d.limited[a.Cell] = a.Cores
			}
			if d.frozen[a.Cell] {
				if err := c.Resume(ctx); err != nil {
					note("resume_failed", a.Cell, err.Error())
					continue
				}
				d.frozen[a.Cell] = false
			}
		case ActPause:
			if !d.hasBid[a.Cell] && d.Clock.Now().Sub(d.since[a.Cell]) < d.Grace {
				continue // still starting: let it connect and bid
			}
			if !d.frozen[a.Cell] {
				if err := c.Pause(ctx); err != nil {
					if !errors.Is(err, cell.ErrExited) {
						note("pause_failed", a.Cell, err.Error())
					}
					continue
				}
				d.frozen[a.Cell] = true
			}
		case ActKill:
			kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.Kill(kctx)
			cancel()
			if err != nil && !errors.Is(err, cell.ErrExited) {
				note("kill_failed", a.Cell, err.Error())
			}
			d.frozen[a.Cell] = false
		}
	}
}

// resumeAll thaws every cell the driver froze.
func (d *Driver) resumeAll(ctx context.Context, cells map[string]cell.Cell) {
	for name, frozen := range d.frozen {
		if frozen {
			if err := cells[name].Resume(ctx); err != nil && !errors.Is(err, cell.ErrExited) {
				d.Log.Warn("resume", "cell", name, "err", err)
			}
			d.frozen[name] = false
		}
	}
}

// release leaves the cells as the driver found them: thawed and unlimited.
func (d *Driver) release(cells map[string]cell.Cell) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.resumeAll(ctx, cells)
	for name := range d.limited {
		if l, ok := cells[name].(cell.CPULimiter); ok {
			if err := l.LimitCPU(0); err != nil {
				d.Log.Debug("unlimit cpu", "cell", name, "err", err)
			}
		}
	}
}

// quotes returns the tick message for every cell that can read it. A
// frozen cell cannot: messages to it would pile up in its socket until the
// hub's write deadline cut it off, so it gets none; its standing bid speaks
// for it, and it hears again from the tick after it wins.
func (d *Driver) quotes(dec Decision) map[string]Quote {
	q := map[string]Quote{}
	for _, name := range d.Core.Names() {
		st, w, _ := d.Core.Cell(name)
		if st == Dead || d.frozen[name] {
			continue
		}
		quote := Quote{Reserve: dec.Reserve, Multiplier: dec.Multiplier, SlotEnergy: uint64(d.Core.cfg.SlotEnergy), Balance: w.Balance}
		if quote.Reserve == 0 {
			quote.Reserve, quote.Multiplier = uint64(d.Core.cfg.SlotEnergy), 1
		}
		for _, r := range dec.Cells {
			if r.Name == name {
				quote.Won, quote.Paid = r.Won, r.Payment
			}
		}
		q[name] = quote
	}
	return q
}

// Admit puts a running cell under the economy with wallet w. standing, if
// not nil, is the bid it makes by policy each tick (for programs that do not
// speak the agent protocol). It may be called while Govern runs.
func (d *Driver) Admit(name string, c cell.Cell, w Wallet, standing *Bid) error {
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	if err := d.Core.Admit(name, w); err != nil {
		return err
	}
	if d.Journal != nil {
		d.Journal(JournalEntry{Admit: &JournalAdmit{Name: name, Wallet: w}})
	}
	if d.cells == nil {
		d.cells = map[string]cell.Cell{}
	}
	d.cells[name] = c
	if standing != nil {
		if d.standing == nil {
			d.standing = map[string]Bid{}
		}
		d.standing[name] = *standing
	}
	return nil
}

// Hold pauses (hold true) or releases a cell at an operator's request: a
// held cell is frozen, makes no bids and pays nothing until released.
func (d *Driver) Hold(ctx context.Context, name string, hold bool) error {
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	c, ok := d.cells[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, name)
	}
	if st, _, _ := d.Core.Cell(name); st == Dead {
		return fmt.Errorf("%w: %s", ErrDead, name)
	}
	if d.held == nil {
		d.held = map[string]bool{}
	}
	if d.frozen == nil {
		d.frozen = map[string]bool{}
	}
	d.held[name] = hold
	if hold && !d.frozen[name] {
		if err := c.Pause(ctx); err != nil {
			return err
		}
		d.frozen[name] = true
	}
	return nil
}

// Fund credits a cell's wallet (see Core.Fund). The caller posts the
// credit to the ledger first.
func (d *Driver) Fund(name string, amount int64) error {
	d.coreMu.Lock()
	defer d.coreMu.Unlock()
	if err := d.Core.Fund(name, amount); err != nil {
		return err
	}
	if d.Journal != nil {
		d.Journal(JournalEntry{Fund: &JournalFund{Name: name, Amount: amount}})
	}
	return nil
}

// Retire marks a cell dead at an operator's request and kills it.
func (d *Driver) Retire(ctx context.Context, name string) error {
	d.coreMu.Lock()
	c, ok := d.cells[name]
	err := d.Core.Kill(name)
	if err == nil && d.Journal != nil {
		d.Journal(JournalEntry{Kill: name})
	}
	d.coreMu.Unlock()
	if err != nil {
		return err
	}
	if ok {
		if err := c.Kill(ctx); err != nil && !errors.Is(err, cell.ErrExited) {
			return err
		}
	}
	return nil
}

// Last returns the last decision.
func (d *Driver) Last() Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// Snapshot implements experiment.Governor.
func (d *Driver) Snapshot() (*record.MarketSample, []record.WalletSample) {
	d.mu.Lock()
	dec := d.last
	d.mu.Unlock()
	if dec.Tick == 0 {
		return nil, nil
	}
	m := &record.MarketSample{Tick: dec.Tick, Multiplier: dec.Multiplier, Reserve: dec.Reserve, Clearing: dec.Clearing, FailSafe: dec.FailSafe}
	var ws []record.WalletSample
	for _, r := range dec.Cells {
		ws = append(ws, record.WalletSample{Cell: r.Name, Balance: r.Balance, State: string(r.State), Paid: r.PaidTotal, Tax: r.TaxTotal})
	}
	return m, ws
}
