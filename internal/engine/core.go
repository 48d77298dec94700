// Package engine is Maxwell's economy: every tick it prices CPU time from
// the temperature, sells slots in an auction, charges the winners and the
// memory churners, and kills (or hibernates) whoever cannot pay.
//
// The package has two halves. Core is the decision core, a pure state
// machine in the manner of etcd's raft: time and measurements come in with
// each tick, decisions come out — which cells run on how many CPUs, which
// pause, which die, what each wallet is charged — and Core does no I/O,
// reads no clock and starts no goroutine, so whole runs replay exactly from
// their recorded inputs. Driver is the I/O half: it reads the sensors and
// cells, collects bids, asks Core to decide, posts the charges to the
// ledger, and only then carries the decisions out on the cells.
package engine

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"time"

	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/market"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Insolvency says what happens to a cell that cannot pay.
type Insolvency string

// The insolvency policies.
const (
	// Apoptosis kills the cell and closes its wallet.
	Apoptosis Insolvency = "kill"
	// Hibernate freezes the cell until an operator funds it.
	Hibernate Insolvency = "hibernate"
)

// MaxUnits is the most slots one cell may bid for in one tick.
const MaxUnits = 64

// Config configures a Core. Money is in credits: one credit is one µJ of
// host energy, and every amount is an integer.
type Config struct {
	// Tick is the length of one auction period.
	Tick time.Duration
	// Slots is the number of CPU slots sold each tick (one CPU each).
	Slots int
	// SlotEnergy is the expected energy of one busy CPU over one tick:
	// the reserve price at multiplier 1, in credits per slot.
	SlotEnergy units.Energy
	// Rule is the auction rule.
	Rule market.Rule
	// Controller prices heat: its output is the thermal multiplier ≥ 1.
	Controller control.Config
	// TaxPicojoulesPerByte is Landauer's tax on freed memory, in pJ per
	// byte (1 credit = 10⁶ pJ).
	TaxPicojoulesPerByte uint64
	// RentPicojoulesPerByteSecond is memory rent on resident bytes; 0
	// turns it off.
	RentPicojoulesPerByteSecond uint64
	// Insolvency is what happens to a cell whose balance falls below zero.
	Insolvency Insolvency
	// LowBalancePercent warns once when a wallet falls below this
	// percentage of its endowment.
	LowBalancePercent int64
}

func (c Config) validate() error {
	switch {
	case c.Tick <= 0:
		return fmt.Errorf("%w: tick %v must be positive", ErrConfig, c.Tick)
	case c.Slots <= 0 || c.Slots > 4096:
		return fmt.Errorf("%w: %d slots, want 1..4096", ErrConfig, c.Slots)
	case c.SlotEnergy == 0:
		return fmt.Errorf("%w: slot energy must be positive", ErrConfig)
	case c.Insolvency != Apoptosis && c.Insolvency != Hibernate:
		return fmt.Errorf("%w: insolvency policy %q, want %q or %q", ErrConfig, c.Insolvency, Apoptosis, Hibernate)
	case c.LowBalancePercent < 0 || c.LowBalancePercent > 100:
		return fmt.Errorf("%w: low-balance warning at %d%%, want 0..100", ErrConfig, c.LowBalancePercent)
	case c.Controller.OutMin < 1:
		return fmt.Errorf("%w: the price multiplier's floor %v must be at least 1", ErrConfig, c.Controller.OutMin)
	}
	return nil
}

// Errors.
var (
	ErrConfig     = errors.New("invalid engine configuration")
	ErrUnknown    = errors.New("no such cell")
	ErrExists     = errors.New("cell already admitted")
	ErrDead       = errors.New("cell is dead")
	ErrBadAmount  = errors.New("amount must be positive")
	ErrStaleInput = errors.New("tick input out of order")
)

// State is where a cell is in its life.
type State string

// The states.
const (
	Running     State = "running"
	Paused      State = "paused"
	Hibernating State = "hibernating"
	Dead        State = "dead"
)

// Wallet is a cell's money: its balance and its income.
type Wallet struct {
	Balance   int64 // credits
	Endowment int64 // credits at admission
	// TapRate is income in credits per second, paid while the balance is
	// below TapCap; 0 means no tap.
	TapRate int64
	TapCap  int64
}

// Bid is a cell's bid for one tick: Units slots at Price credits each.
type Bid struct {
	Price uint64
	Units int
}

// CellInput is what was measured of one cell over the last tick.
type CellInput struct {
	Name string
	// Exited reports that the cell's process has ended on its own.
	Exited bool
	// ExitCause says why, for the event.
	ExitCause string
	// FreedBytes is the memory the cell freed in the tick (the meter's
	// reading, never the agent's claim).
	FreedBytes uint64
	// ResidentBytes is the cell's memory at the end of the tick.
	ResidentBytes uint64
	// Bid is the cell's bid for this tick's auction; zero Units means none.
	Bid Bid
}

// Input is everything a tick decides on.
type Input struct {
	Tick uint64
	// Dt is the time since the previous tick.
	Dt time.Duration
	// Temperature is the host temperature; TempErr says why it could not
	// be read (then the price goes to its ceiling: fail-safe).
	Temperature units.Celsius
	TempErr     error
	Cells       []CellInput
}

// ActionKind is what to do to a cell.
type ActionKind string

// The actions.
const (
	ActRun   ActionKind = "run"   // resume (if paused) with Cores CPUs
	ActPause ActionKind = "pause" // freeze until it wins again
	ActKill  ActionKind = "kill"  // apoptosis
)

// Action is one decision about one cell.
type Action struct {
	Cell  string
	Kind  ActionKind
	Cores int // for ActRun: the slots won
}

// Posting is one charge or credit to post to the ledger. Amount is
// positive for a debit of the cell's wallet, negative for a credit.
type Posting struct {
	Key    string // idempotency key: "tick:N/cell:NAME/KIND"
	Tick   uint64
	Cell   string
	Kind   string // "payment", "tax", "rent", "tap", "close"
	Amount int64
}

// Event is something that happened, for people.
type Event struct {
	Kind   string // "apoptosis", "hibernate", "low_balance", "fail_safe", "sensor_recovered", "exited"
	Cell   string
	Detail string
}

// CellReport is one cell's line of the tick's ledger.
type CellReport struct {
	Name      string
	State     State
	Balance   int64
	Won       int
	Payment   int64
	Tax       int64
	Rent      int64
	Tap       int64
	BidPrice  uint64
	BidUnits  int
	TaxTotal  int64
	PaidTotal int64
}

// Decision is what a tick decided. Nothing in it has happened yet: the
// driver posts Postings to the ledger and, if that succeeds, calls
// Core.Commit and carries out Actions.
type Decision struct {
	Tick       uint64
	Multiplier float64
	// Reserve is the reserve price, credits per slot.
	Reserve uint64
	// Clearing is the auction's clearing price, credits per slot.
	Clearing uint64
	Revenue  uint64
	FailSafe bool
	Actions  []Action
	Postings []Posting
	Events   []Event
	Cells    []CellReport

	next map[string]cellState // the state Commit installs
}

type cellState struct {
	wallet   Wallet
	state    State
	warned   bool
	taxRemPJ uint64 // sub-credit remainder of tax, pJ
	rentRem  uint64 // sub-credit remainder of rent, pJ·µs/s
	tapRem   int64  // sub-credit remainder of tap, credit·ns
	taxTotal int64
	paid     int64
}

// Core is the engine's decision core. It is not safe for concurrent use.
type Core struct {
	cfg     Config
	therm   *control.Thermostat
	auction market.Auction
	slots   []market.Slot
	cells   map[string]cellState
	order   []string // admission order, for determinism
	tick    uint64
	bids    []market.Bid
	owners  []int // bid index → cell index in order
}

// NewCore returns a core with no cells.
func NewCore(cfg Config) (*Core, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	therm, err := control.NewThermostat(cfg.Controller)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c := &Core{cfg: cfg, therm: therm, cells: map[string]cellState{}, auction: market.Auction{Rule: cfg.Rule}}
	for i := range cfg.Slots {
		c.slots = append(c.slots, market.Slot{ID: i, Weight: market.FullSlot})
	}
	return c, nil
}

// Admit adds a cell with wallet w; it starts paused until it wins a slot.
func (c *Core) Admit(name string, w Wallet) error {
	if _, ok := c.cells[name]; ok {
		return fmt.Errorf("%w: %s", ErrExists, name)
	}
	if w.Balance < 0 || w.Endowment < 0 || w.TapRate < 0 || w.TapCap < 0 {
		return fmt.Errorf("%w: wallet of %s has a negative figure", ErrBadAmount, name)
	}
	c.cells[name] = cellState{wallet: w, state: Paused}
	c.order = append(c.order, name)
	return nil
}

// Fund credits amount to a cell's wallet (the ledger posts it as a mint).
// A hibernating cell whose balance becomes non-negative wakes up paused.
func (c *Core) Fund(name string, amount int64) error {
	cs, ok := c.cells[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, name)
	}
	if cs.state == Dead {
		return fmt.Errorf("%w: %s", ErrDead, name)
	}
	if amount <= 0 {
		return ErrBadAmount
	}
	b, ok := addInt64(cs.wallet.Balance, amount)
	if !ok {
		return fmt.Errorf("%w: balance would overflow", ErrBadAmount)
	}
	cs.wallet.Balance = b
	if cs.state == Hibernating && b >= 0 {
		cs.state = Paused
	}
	if cs.wallet.Endowment > 0 && b*100 >= cs.wallet.Endowment*c.cfg.LowBalancePercent {
		cs.warned = false
	}
	c.cells[name] = cs
	return nil
}

// Kill marks a cell dead at an operator's request.
func (c *Core) Kill(name string) error {
	cs, ok := c.cells[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, name)
	}
	cs.state = Dead
	c.cells[name] = cs
	return nil
}

// Cell returns a cell's state and wallet.
func (c *Core) Cell(name string) (State, Wallet, bool) {
	cs, ok := c.cells[name]
	return cs.state, cs.wallet, ok
}

// StartAt makes the next tick tick+1: a restarted daemon continues the
// ticks its ledger already holds, so that idempotency keys never repeat. It
// must be called before the first Decide.
func (c *Core) StartAt(tick uint64) error {
	if c.tick != 0 {
		return fmt.Errorf("%w: the core is already at tick %d", ErrStaleInput, c.tick)
	}
	c.tick = tick
	return nil
}

// Config returns the core's configuration.
func (c *Core) Config() Config { return c.cfg }

// Tick returns the last committed tick.
func (c *Core) Tick() uint64 { return c.tick }

// Decide computes a tick's decisions from its input. It advances the price
// controller (the heat happened whatever the ledger does) but changes no
// wallet or cell state: Commit does that once the driver has posted the
// charges.
func (c *Core) Decide(in Input) (Decision, error) {
	if in.Tick <= c.tick {
		return Decision{}, fmt.Errorf("%w: tick %d after %d", ErrStaleInput, in.Tick, c.tick)
	}
	if in.Dt <= 0 {
		return Decision{}, fmt.Errorf("%w: tick %d has dt %v", ErrStaleInput, in.Tick, in.Dt)
	}
	d := Decision{Tick: in.Tick, next: make(map[string]cellState, len(c.cells))}

	// 1. Price the heat. A failed or implausible reading puts the price at
	// its ceiling (fail-safe); the thermostat says why once, and again
	// when the reading is trusted again.
	td := c.therm.Step(in.Dt, in.Temperature, in.TempErr)
	d.Multiplier, d.FailSafe = td.Multiplier, td.FailSafe
	if td.Reason != "" {
		kind := "sensor_recovered"
		if td.FailSafe {
			kind = "fail_safe"
		}
		d.Events = append(d.Events, Event{Kind: kind, Detail: td.Reason})
	}
	d.Reserve = control.ReservePrice(c.cfg.SlotEnergy, d.Multiplier)

	inputs := make(map[string]CellInput, len(in.Cells))
	for _, ci := range in.Cells {
		inputs[ci.Name] = ci
	}

	// 2. Income, and cells that ended on their own.
	for _, name := range c.order {
		cs := c.cells[name]
		ci := inputs[name]
		if cs.state != Dead && ci.Exited {
			cs.state = Dead
			d.Events = append(d.Events, Event{Kind: "exited", Cell: name, Detail: fmt.Sprintf("%s; final balance %d credits", ci.ExitCause, cs.wallet.Balance)})
			d.Postings = append(d.Postings, Posting{Key: key(in.Tick, name, "close"), Tick: in.Tick, Cell: name, Kind: "close"})
		}
		d.next[name] = cs
	}

	// 3. The auction: every living cell with money bids its units. A bid
	// is a promise to pay, not capped by the balance: a cell that bids
	// beyond its means goes into debt and dies at the end of the tick.
	c.bids, c.owners = c.bids[:0], c.owners[:0]
	for i, name := range c.order {
		cs := d.next[name]
		b := inputs[name].Bid
		if cs.state == Dead || cs.state == Hibernating || b.Units <= 0 || cs.wallet.Balance <= 0 {
			continue
		}
		units := min(b.Units, MaxUnits, c.cfg.Slots)
		for u := range units {
			c.bids = append(c.bids, market.Bid{Bidder: i*MaxUnits + u, Price: b.Price})
			c.owners = append(c.owners, i)
		}
	}
	res, err := c.auction.Clear(c.slots, c.bids, d.Reserve)
	if err != nil {
		return Decision{}, fmt.Errorf("auction: %w", err)
	}
	d.Clearing, d.Revenue = res.ClearingPrice, res.Revenue
	won := make([]int, len(c.order))
	paid := make([]int64, len(c.order))
	for _, a := range res.Allocations {
		i := a.Bidder / MaxUnits
		won[i]++
		paid[i] += int64(min(a.Payment, math.MaxInt64/2))
	}

	// 4. Charges, insolvency, actions.
	for i, name := range c.order {
		cs := d.next[name]
		ci := inputs[name]
		rep := CellReport{Name: name, BidPrice: ci.Bid.Price, BidUnits: ci.Bid.Units}
		if cs.state == Dead {
			if c.cells[name].state != Dead {
				d.Actions = append(d.Actions, Action{Cell: name, Kind: ActKill})
			}
			rep.State, rep.Balance = Dead, cs.wallet.Balance
			rep.TaxTotal, rep.PaidTotal = cs.taxTotal, cs.paid
			d.Cells = append(d.Cells, rep)
			continue
		}
		var tap int64
		if cs.wallet.TapRate > 0 && cs.wallet.Balance < cs.wallet.TapCap {
			ns := cs.tapRem + cs.wallet.TapRate*int64(in.Dt)
			tap = min(ns/int64(time.Second), cs.wallet.TapCap-cs.wallet.Balance)
			cs.tapRem = ns % int64(time.Second)
		}
		// Tax: bytes × pJ/B, 10⁶ pJ to the credit. Rent: bytes × µs ×
		// pJ/(B·s), 10⁶ pJ to the credit and 10⁶ µs to the second.
		tax := fracCharge(ci.FreedBytes, c.cfg.TaxPicojoulesPerByte, 1e6, &cs.taxRemPJ)
		rent := fracCharge(satMul(ci.ResidentBytes, uint64(in.Dt/time.Microsecond)), c.cfg.RentPicojoulesPerByteSecond, 1e12, &cs.rentRem)
		debit := paid[i] + tax + rent
		bal := cs.wallet.Balance + tap - debit
		cs.wallet.Balance = bal
		cs.taxTotal += tax
		cs.paid += paid[i]
		for _, p := range []struct {
			kind   string
			amount int64
		}{{"tap", -tap}, {"payment", paid[i]}, {"tax", tax}, {"rent", rent}} {
			if p.amount != 0 {
				d.Postings = append(d.Postings, Posting{Key: key(in.Tick, name, p.kind), Tick: in.Tick, Cell: name, Kind: p.kind, Amount: p.amount})
			}
		}
		switch {
		case bal < 0 && c.cfg.Insolvency == Apoptosis:
			cs.state = Dead
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActKill})
			d.Postings = append(d.Postings, Posting{Key: key(in.Tick, name, "close"), Tick: in.Tick, Cell: name, Kind: "close"})
			d.Events = append(d.Events, Event{Kind: "apoptosis", Cell: name, Detail: fmt.Sprintf("balance %d credits after paying %d for %d slot(s), %d Landauer tax on %d freed bytes and %d rent; total paid %d, total tax %d",
				bal, paid[i], won[i], tax, ci.FreedBytes, rent, cs.paid, cs.taxTotal)})
		case bal < 0:
			if cs.state != Hibernating {
				d.Events = append(d.Events, Event{Kind: "hibernate", Cell: name, Detail: fmt.Sprintf("balance %d credits: frozen until funded", bal)})
			}
			cs.state = Hibernating
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActPause})
		case won[i] > 0:
			cs.state = Running
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActRun, Cores: won[i]})
		default:
			cs.state = Paused
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActPause})
		}
		if cs.state != Dead && !cs.warned && cs.wallet.Endowment > 0 && bal >= 0 && bal*100 < cs.wallet.Endowment*c.cfg.LowBalancePercent {
			cs.warned = true
			d.Events = append(d.Events, Event{Kind: "low_balance", Cell: name, Detail: fmt.Sprintf("balance %d credits is below %d%% of the %d endowment", bal, c.cfg.LowBalancePercent, cs.wallet.Endowment)})
		}
		rep.State, rep.Balance, rep.Won, rep.Payment, rep.Tax, rep.Rent, rep.Tap = cs.state, bal, won[i], paid[i], tax, rent, tap
		rep.TaxTotal, rep.PaidTotal = cs.taxTotal, cs.paid
		d.Cells = append(d.Cells, rep)
		d.next[name] = cs
	}
	return d, nil
}

// Commit installs a decision's wallets and states: call it once the
// decision's postings are in the ledger.
func (c *Core) Commit(d Decision) {
	for name, cs := range d.next {
		if _, ok := c.cells[name]; ok {
			c.cells[name] = cs
		}
	}
	c.tick = d.Tick
}

// Abandon records that a decision's postings could not be made: wallets
// and states stay as they were, and only the tick number moves on (the
// price controller has seen the tick's temperature either way).
func (c *Core) Abandon(d Decision) {
	c.tick = d.Tick
}

// Names returns the admitted cells in admission order.
func (c *Core) Names() []string { return slices.Clone(c.order) }

func key(tick uint64, cell, kind string) string {
	return "tick:" + strconv.FormatUint(tick, 10) + "/cell:" + cell + "/" + kind
}

// fracCharge returns the whole credits of n × rate / div, carrying the
// remainder in rem so that nothing is lost or charged twice across ticks.
// Absurd figures saturate at a charge no wallet survives.
func fracCharge(n, rate, div uint64, rem *uint64) int64 {
	const ceiling = math.MaxInt64 / 4
	if n == 0 || rate == 0 {
		return 0
	}
	hi, lo := bits.Mul64(n, rate)
	lo, carry := bits.Add64(lo, *rem, 0)
	hi += carry
	if hi >= div {
		*rem = 0
		return ceiling
	}
	q, r := bits.Div64(hi, lo, div)
	*rem = r
	return int64(min(q, ceiling))
}

// satMul multiplies, saturating at the largest uint64.
func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

func addInt64(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
