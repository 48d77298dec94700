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
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/life"

	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/market"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Policy says how the core decides who runs.
type Policy string

// The policies.
const (
	// PolicyMaxwell is Maxwell's economy: an auction every tick under a
	// thermal reserve price, payments, Landauer's tax, insolvency.
	PolicyMaxwell Policy = "maxwell"
	// PolicyCFS governs nothing: every living cell runs as Linux's fair
	// scheduler lets it, nobody bids, pays or dies of insolvency. It is the
	// baseline that experiments compare the economy with, measured by the
	// same engine.
	PolicyCFS Policy = "cfs"

	// The peers: schedulers an operator could run instead of an economy,
	// each holding the same thermal limit with the same controller (its
	// multiplier m, which under PolicyMaxwell prices a slot, here allows
	// Slots/m CPUs' worth of time to the cells). Nobody bids, pays or dies
	// of insolvency under them.

	// PolicyWeights runs every living cell with an equal weight (each
	// cell has a cgroup of its own, whose default weight is the same for
	// all) and shares the allowance among the cells that want CPU: each
	// cell busy in the last tick, and each idle one, may use
	// allowance / (busy cells) — CPU goes where there is demand.
	PolicyWeights Policy = "weights"
	// PolicyThermalCap is what the kernel's power_allocator governor
	// does: it caps every living cell's CPU quota equally,
	// allowance / (living cells), busy or not.
	PolicyThermalCap Policy = "thermal-cap"
	// PolicyOracle knows the parasites (Config.Parasites) and never runs
	// them; the others run as under PolicyWeights. It is the upper bound
	// an economy that is not told who the parasite is aims at.
	PolicyOracle Policy = "oracle"
)

// Policies lists every policy, the economy first.
var Policies = []Policy{PolicyMaxwell, PolicyCFS, PolicyWeights, PolicyThermalCap, PolicyOracle}

// charges reports whether cells pay under p (only the economy's do).
func (p Policy) charges() bool { return p == PolicyMaxwell || p == "" }

// capped reports whether p caps the cells' CPU to hold the thermal limit.
func (p Policy) capped() bool {
	return p == PolicyWeights || p == PolicyThermalCap || p == PolicyOracle
}

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
	// Policy decides who runs; "" means PolicyMaxwell.
	Policy Policy `json:"policy,omitempty"`
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
	// Insolvency is what happens to a cell that cannot pay what it owes.
	Insolvency Insolvency
	// LowBalancePercent warns once when a wallet falls below this
	// percentage of its endowment.
	LowBalancePercent int64
	// Parasites are the cells PolicyOracle never runs (by name); the
	// other policies ignore them.
	Parasites []string `json:"parasites,omitempty"`
	// Ration makes the economy sell less as well as dearer above the
	// setpoint: each slot is 1/m of a CPU (see clear).
	Ration bool `json:"ration,omitempty"`
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
	case c.Policy != "" && !slices.Contains(Policies, c.Policy):
		return fmt.Errorf("%w: policy %q, want one of %v", ErrConfig, c.Policy, Policies)
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

// Wallet is a cell's money: its balance and its income.
type Wallet struct {
	Balance   units.Credits
	Endowment units.Credits // at admission
	// TapRate is income in credits per second, paid while the balance is
	// below TapCap; 0 means no tap.
	TapRate units.Credits
	TapCap  units.Credits
}

// Bid is a cell's bid for one tick: Units slots at Price credits each, or,
// with AtReserve, at the tick's reserve price (the driver's startup bid
// for a cell whose agent has not bid yet).
type Bid struct {
	Price     units.Credits
	Units     int
	AtReserve bool `json:",omitempty"`
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
	// CPUTime is the cell's cumulative CPU time at the end of the tick.
	CPUTime time.Duration
	// Energy is the host energy attributed to the cell over the tick (see
	// model.Attribute), and Share its CPU time over the capacity of the
	// CPUs sold. The core does not price them: they travel with the
	// decision, so that nobody measures them twice.
	Energy units.Energy
	Share  float64
	// Bid is the cell's bid for this tick's auction; zero Units means none.
	Bid Bid
	// Income is what the cell earned since the last tick for useful work
	// the host checked (package verify), in credits, ≥ 0. It is paid
	// under PolicyMaxwell only.
	Income units.Credits
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
	// Power is the host's mean power over the tick, and Energy its energy
	// counter's reading at the end of it (cumulative, from an arbitrary
	// origin). They are the power the decision was made beside: carried,
	// not priced.
	Power  units.Power
	Energy units.Energy
	// Utilisation is the busy fraction of the CPUs sold over the tick, in
	// [0, 1] (carried, not priced).
	Utilisation float64
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
	Cell string
	Kind ActionKind
	// Cores is, for ActRun, the CPUs' worth of time the cell may use in
	// the tick: the slots it won, or a peer policy's cap (fractional);
	// 0 is no limit.
	Cores float64
}

// Posting is one charge or credit to post to the ledger. Amount is
// positive for a debit of the cell's wallet, negative for a credit.
type Posting struct {
	Key    string // idempotency key: "tick:N/cell:NAME/KIND"
	Tick   uint64
	Cell   string
	Kind   ledger.Kind // KindPayment, KindTax, KindRent, KindTap or KindClose
	Amount units.Credits
}

// CellReport is one cell's line of the tick: its wallet, what it bid, won
// and paid, and what was measured of it.
type CellReport struct {
	Name        string
	State       life.State
	Balance     units.Credits
	Won         int
	Payment     units.Credits
	Tax         units.Credits
	Rent        units.Credits
	Tap         units.Credits
	Income      units.Credits
	BidPrice    units.Credits
	BidUnits    int
	TaxTotal    units.Credits
	PaidTotal   units.Credits
	IncomeTotal units.Credits
	// FreedBytes, MemoryBytes (resident), CPUTime, Energy and Share are
	// the tick's measurements (see CellInput).
	FreedBytes  uint64
	MemoryBytes uint64
	CPUTime     time.Duration
	Energy      units.Energy
	Share       float64
}

// Decision is what a tick decided. Nothing in it has happened yet: the
// driver posts Postings to the ledger and, if that succeeds, calls
// Core.Commit and carries out Actions.
type Decision struct {
	Tick uint64
	// Temperature is the reading the price came from; TempErr says why
	// there was none. Power and Energy are the input's.
	Temperature units.Celsius
	TempErr     string       `json:",omitempty"`
	Power       units.Power  `json:",omitempty"`
	Energy      units.Energy `json:",omitempty"`
	// Dt is the tick's length and Utilisation the input's.
	Dt          time.Duration `json:",omitempty"`
	Utilisation float64       `json:",omitempty"`
	Multiplier  float64
	// Binding says which limit set the multiplier: the temperature, the
	// host's power budget, or none (the price is at its floor).
	Binding Limit `json:",omitempty"`
	// Reserve is the reserve price, credits per slot.
	Reserve units.Credits
	// Clearing is the auction's clearing price, credits per slot.
	Clearing units.Credits
	Revenue  units.Credits
	FailSafe bool
	Actions  []Action
	Postings []Posting
	// Events are what people should hear of: Tick, Kind, Cell and Detail
	// are set; the driver stamps Time.
	Events []event.Event
	Cells  []CellReport

	next map[string]cellState // the state Commit installs
}

type cellState struct {
	wallet Wallet
	state  life.State
	warned bool
	// price is what the cell's slots of the last auction cost at full
	// use, and won their number: the next tick charges for the CPU the
	// cell actually used in them (pay per use).
	price units.Credits
	won   int
	// quota is the CPUs' worth of time the slots won give: won × the
	// tick's slot weight.
	quota float64
	// cpu is the cell's CPU time at the last tick.
	cpu         time.Duration
	haveCPU     bool
	taxRemPJ    uint64 // sub-credit remainder of tax, pJ
	rentRem     uint64 // sub-credit remainder of rent, pJ·µs/s
	tapRem      int64  // sub-credit remainder of tap, credit·ns
	taxTotal    units.Credits
	incomeTotal units.Credits
	paid        units.Credits
}

// Limit names the limit that binds the price.
type Limit string

// The limits.
const (
	LimitTemperature Limit = "temperature"
	LimitPower       Limit = "power"
)

// HostSettings are the host's limits an operator may change while the
// economy runs (nil leaves one as it is).
type HostSettings struct {
	// SetpointCelsius is the temperature the controller holds.
	SetpointCelsius *units.Celsius `json:"setpoint_celsius,omitempty"`
	// PowerBudget is the host's budget in watts, priced like the heat
	// (control.PowerLimit); 0 removes it.
	PowerBudget *units.Power `json:"power_budget_watts,omitempty"`
	// Gains retunes the price controller (bumplessly).
	Gains *control.Gains `json:"gains,omitempty"`
}

// SetHost changes the host's limits; a change that cannot be made changes
// nothing.
func (c *Core) SetHost(h HostSettings) error {
	var limit *control.PowerLimit
	if b := h.PowerBudget; b != nil && *b != 0 {
		var err error
		if limit, err = control.NewPowerLimit(*b, c.cfg.Controller.OutMax); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	// Checked before anything changes, so that a bad change changes
	// nothing: the setpoint against the critical temperature, the gains
	// by Retune itself (which changes nothing when it fails).
	if sp := h.SetpointCelsius; sp != nil && !(*sp < c.cfg.Controller.Critical) {
		return fmt.Errorf("%w: setpoint %v °C must be below the critical %v °C", ErrConfig, float64(*sp), float64(c.cfg.Controller.Critical))
	}
	if g := h.Gains; g != nil {
		if err := c.therm.PID().Retune(*g); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	if sp := h.SetpointCelsius; sp != nil {
		if err := c.therm.PID().SetSetpoint(*sp); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	if h.PowerBudget != nil {
		c.power = limit
	}
	return nil
}

// Host returns the setpoint and the power budget (0: none).
func (c *Core) Host() (units.Celsius, units.Power) {
	var b units.Power
	if c.power != nil {
		b = c.power.Budget()
	}
	return c.therm.PID().Config().Setpoint, b
}

// SetTap changes a cell's tap: rate credits a second while its balance is
// below cap.
func (c *Core) SetTap(name string, rate, cap units.Credits) error {
	cs, ok := c.cells[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, name)
	}
	if cs.state == life.Dead {
		return fmt.Errorf("%w: %s", ErrDead, name)
	}
	if rate < 0 || cap < 0 {
		return ErrBadAmount
	}
	cs.wallet.TapRate, cs.wallet.TapCap = rate, cap
	c.cells[name] = cs
	return nil
}

// Core is the engine's decision core. It is not safe for concurrent use.
type Core struct {
	cfg     Config
	therm   *control.Thermostat
	power   *control.PowerLimit // nil: no power budget
	weight  float64             // this tick's slot weight, parts of market.FullSlot
	auction market.Auction
	slots   []market.Slot
	cells   map[string]cellState
	order   []string // admission order, for determinism
	tick    uint64
	bids    []market.Bid
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
	c.cells[name] = cellState{wallet: w, state: life.Paused}
	c.order = append(c.order, name)
	return nil
}

// Fund credits amount to a cell's wallet (the ledger posts it as a mint).
// A hibernating cell whose balance becomes non-negative wakes up paused.
func (c *Core) Fund(name string, amount units.Credits) error {
	cs, ok := c.cells[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, name)
	}
	if cs.state == life.Dead {
		return fmt.Errorf("%w: %s", ErrDead, name)
	}
	if amount <= 0 {
		return ErrBadAmount
	}
	b, ok := cs.wallet.Balance.Add(amount)
	if !ok {
		return fmt.Errorf("%w: balance would overflow", ErrBadAmount)
	}
	cs.wallet.Balance = b
	if cs.state == life.Hibernating && b >= 0 {
		cs.state = life.Paused
	}
	if cs.wallet.Endowment > 0 && !belowPercent(b, cs.wallet.Endowment, c.cfg.LowBalancePercent) {
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
	cs.state = life.Dead
	c.cells[name] = cs
	return nil
}

// Cell returns a cell's state and wallet.
func (c *Core) Cell(name string) (life.State, Wallet, bool) {
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
	d := Decision{Tick: in.Tick, Temperature: in.Temperature, Power: in.Power, Energy: in.Energy, Dt: in.Dt,
		Utilisation: in.Utilisation, next: make(map[string]cellState, len(c.cells))}
	if in.TempErr != nil {
		d.TempErr = in.TempErr.Error()
	}

	// 1. Price the heat. A failed or implausible reading puts the price at
	// its ceiling (fail-safe); the thermostat says why once, and again
	// when the reading is trusted again.
	td := c.therm.Step(in.Dt, in.Temperature, in.TempErr)
	d.Multiplier, d.FailSafe = td.Multiplier, td.FailSafe
	if d.Multiplier > 1 {
		d.Binding = LimitTemperature
	}
	// A power budget prices the power the same way: whichever binds.
	if c.power != nil {
		if m := c.power.Step(in.Dt, in.Power); m > d.Multiplier {
			d.Multiplier, d.Binding = m, LimitPower
		}
	}
	if td.Reason != "" {
		kind := event.SensorRecovered
		if td.FailSafe {
			kind = event.FailSafe
		}
		d.note(kind, "", td.Reason)
	}
	d.Reserve = control.ReservePrice(c.cfg.SlotEnergy, d.Multiplier)

	inputs := make(map[string]CellInput, len(in.Cells))
	for _, ci := range in.Cells {
		inputs[ci.Name] = ci
	}

	// 2. What each living cell owes for the last tick, pay per use: its
	// slots' price times the share of them it used (the CPU time it burnt
	// over the capacity it won), Landauer's tax on what it freed, rent on
	// what it holds; less its tap income. No charge exceeds the balance:
	// what a cell cannot pay is not charged, and the cell is insolvent.
	// A cell that ended on its own pays for its last tick, then closes.
	owes := make([]charge, len(c.order))
	for i, name := range c.order {
		cs := c.cells[name]
		ci := inputs[name]
		if cs.state != life.Dead {
			if c.cfg.Policy.charges() { // under cfs and the peers nobody pays
				owes[i] = c.charge(&cs, ci, in.Dt)
			} else {
				owes[i].used = cs.observeCPU(ci.CPUTime)
			}
			if ci.Exited {
				cs.state = life.Dead
				d.post(name, ledger.KindTap, -owes[i].tap)
				d.post(name, ledger.KindIncome, owes[i].income)
				d.post(name, ledger.KindPayment, owes[i].payment)
				d.post(name, ledger.KindTax, owes[i].tax)
				d.post(name, ledger.KindRent, owes[i].rent)
				d.note(event.Exited, name, fmt.Sprintf("%s; final balance %d credits", ci.ExitCause, cs.wallet.Balance))
				d.post(name, ledger.KindClose, 0)
			}
		}
		d.next[name] = cs
	}

	// 3. The auction: every living cell with money bids its units. Under
	// PolicyCFS there is no auction: every living cell runs.
	if !c.cfg.Policy.charges() {
		c.decideUngoverned(&d, inputs, owes)
		return d, nil
	}
	won, price, err := c.clear(&d, inputs)
	if err != nil {
		return Decision{}, err
	}

	// 4. Charges, insolvency, actions.
	for i, name := range c.order {
		cs := d.next[name]
		ci := inputs[name]
		rep := report(name, ci)
		if cs.state == life.Dead {
			if c.cells[name].state != life.Dead {
				d.Actions = append(d.Actions, Action{Cell: name, Kind: ActKill})
			}
			rep.State, rep.Balance = life.Dead, cs.wallet.Balance
			rep.Payment, rep.Tax, rep.Rent, rep.Tap, rep.Income = owes[i].payment, owes[i].tax, owes[i].rent, owes[i].tap, owes[i].income
			rep.TaxTotal, rep.PaidTotal, rep.IncomeTotal = cs.taxTotal, cs.paid, cs.incomeTotal
			d.Cells = append(d.Cells, rep)
			d.next[name] = cs
			continue
		}
		o := owes[i]
		d.post(name, ledger.KindTap, -o.tap)
		d.post(name, ledger.KindIncome, o.income)
		d.post(name, ledger.KindPayment, o.payment)
		d.post(name, ledger.KindTax, o.tax)
		d.post(name, ledger.KindRent, o.rent)
		bal := cs.wallet.Balance
		cs.price, cs.won, cs.quota = 0, 0, 0
		switch {
		case o.shortfall > 0 && c.cfg.Insolvency == Apoptosis:
			cs.state = life.Dead
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActKill})
			d.post(name, ledger.KindClose, 0)
			d.note(event.Apoptosis, name, fmt.Sprintf("could not pay %d credits of %d owed (%d for %s of CPU, %d Landauer tax on %d freed bytes, %d rent); total paid %d, total tax %d",
				o.shortfall, o.shortfall+o.payment+o.tax+o.rent, o.payment, o.used, o.tax, ci.FreedBytes, o.rent, cs.paid, cs.taxTotal))
		case o.shortfall > 0:
			if cs.state != life.Hibernating {
				d.note(event.Hibernate, name, fmt.Sprintf("could not pay %d credits: frozen until funded", o.shortfall))
			}
			cs.state = life.Hibernating
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActPause})
		case won[i] > 0:
			cs.state = life.Running
			cs.price, cs.won, cs.quota = price[i], won[i], float64(won[i])*c.weight/market.FullSlot
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActRun, Cores: cs.quota})
		default:
			cs.state = life.Paused
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActPause})
		}
		if cs.state != life.Dead && !cs.warned && cs.wallet.Endowment > 0 && belowPercent(bal, cs.wallet.Endowment, c.cfg.LowBalancePercent) {
			cs.warned = true
			d.note(event.LowBalance, name, fmt.Sprintf("balance %d credits is below %d%% of the %d endowment", bal, c.cfg.LowBalancePercent, cs.wallet.Endowment))
		}
		rep.State, rep.Balance, rep.Won, rep.Payment, rep.Tax, rep.Rent, rep.Tap, rep.Income = cs.state, bal, cs.won, o.payment, o.tax, o.rent, o.tap, o.income
		rep.TaxTotal, rep.PaidTotal, rep.IncomeTotal = cs.taxTotal, cs.paid, cs.incomeTotal
		d.Cells = append(d.Cells, rep)
		d.next[name] = cs
	}
	return d, nil
}

// charge is what one cell is charged in one tick.
type charge struct {
	tap, income, payment, tax, rent units.Credits
	// used is the CPU time the payment is for; shortfall what the cell
	// owed beyond its balance and was not charged.
	used      time.Duration
	shortfall units.Credits
}

// charge works out and applies to cs what it owes for the last tick (see
// Decide, step 2), with ci measured over the tick's dt.
func (c *Core) charge(cs *cellState, ci CellInput, dt time.Duration) charge {
	var ch charge
	ch.used = cs.observeCPU(ci.CPUTime)
	if cs.wallet.TapRate > 0 && cs.wallet.Balance < cs.wallet.TapCap {
		ns := cs.tapRem + int64(cs.wallet.TapRate)*int64(dt)
		ch.tap = min(units.Credits(ns/int64(time.Second)), cs.wallet.TapCap-cs.wallet.Balance)
		cs.tapRem = ns % int64(time.Second)
	}
	var payment units.Credits
	if capacity := time.Duration(cs.quota * float64(dt)); capacity > 0 && cs.price > 0 {
		payment = share(cs.price, min(ch.used, capacity), capacity)
	}
	// Tax: bytes × pJ/B, 10⁶ pJ to the credit. Rent: bytes × µs ×
	// pJ/(B·s), 10⁶ pJ to the credit and 10⁶ µs to the second.
	tax := fracCharge(ci.FreedBytes, c.cfg.TaxPicojoulesPerByte, 1e6, &cs.taxRemPJ)
	rent := fracCharge(satMul(ci.ResidentBytes, uint64(dt/time.Microsecond)), c.cfg.RentPicojoulesPerByteSecond, 1e12, &cs.rentRem)
	// Income for checked work comes in before anything is charged, like
	// the tap (saturating: absurd income does not wrap).
	ch.income = max(min(ci.Income, math.MaxInt64/4-max(cs.wallet.Balance+ch.tap, 0)), 0)
	left := max(cs.wallet.Balance+ch.tap+ch.income, 0)
	for _, p := range []struct {
		owed units.Credits
		out  *units.Credits
	}{{payment, &ch.payment}, {tax, &ch.tax}, {rent, &ch.rent}} {
		*p.out = min(p.owed, left)
		left -= *p.out
		ch.shortfall += p.owed - *p.out
	}
	cs.wallet.Balance += ch.tap + ch.income - ch.payment - ch.tax - ch.rent
	cs.taxTotal += ch.tax
	cs.incomeTotal += ch.income
	cs.paid += ch.payment
	return ch
}

// clear runs the tick's auction: every living cell with money bids its
// units. Equal bids are ranked by a cell order that rotates with the tick,
// so that ties go to each cell in turn (and a replay, given the tick,
// ranks them the same). Startup bids (AtReserve) are served first, one slot
// each at the reserve, in that order: a newcomer frozen since admission
// cannot bid until it has run, so it must not have to outbid anyone to
// run at all. The auction sells the slots left. It returns each cell's
// slots and what they cost at full use.
func (c *Core) clear(d *Decision, inputs map[string]CellInput) (won []int, price []units.Credits, err error) {
	n := len(c.order)
	rot := 0
	if n > 0 {
		rot = int(d.Tick % uint64(n))
	}
	won = make([]int, n)
	price = make([]units.Credits, n)
	c.bids = c.bids[:0]
	// The thermal allowance (Config.Ration): above the setpoint the
	// economy sells less, not only dearer. Each slot is 1/m of a CPU, so the CPUs sold,
	// Slots/m, fall as the multiplier m rises, as the peers' allowance
	// does: a bidder who pays any price still cannot heat the host past
	// what the controller allows. A slot's price is per whole CPU, so a
	// slot costs the reserve × its weight: the energy it may burn.
	c.weight = market.FullSlot
	if c.cfg.Ration && d.Multiplier > 1 {
		c.weight = max(math.Floor(market.FullSlot/d.Multiplier), 1)
	}
	for i := range c.slots {
		c.slots[i].Weight = uint64(c.weight)
	}
	startups := 0
	for k := range n {
		i := (k + rot) % n // in rank order
		name := c.order[i]
		cs := d.next[name]
		b := inputs[name].Bid
		if cs.state == life.Dead || cs.state == life.Hibernating || b.Units <= 0 || b.Price < 0 || cs.wallet.Balance <= 0 {
			continue
		}
		if b.AtReserve {
			if startups < len(c.slots) {
				startups++
				p := units.Credits(float64(d.Reserve) * c.weight / market.FullSlot)
				won[i], price[i] = 1, p
				d.Revenue += p
			}
			continue
		}
		for u := range min(b.Units, MaxUnits, c.cfg.Slots) {
			c.bids = append(c.bids, market.Bid{Bidder: k*MaxUnits + u, Price: b.Price})
		}
	}
	res, err := c.auction.Clear(c.slots[startups:], c.bids, d.Reserve)
	if err != nil {
		return nil, nil, fmt.Errorf("auction: %w", err)
	}
	d.Clearing = res.ClearingPrice
	d.Revenue += res.Revenue
	for _, a := range res.Allocations {
		i := (a.Bidder/MaxUnits + rot) % n
		won[i]++
		price[i] += min(a.Payment, math.MaxInt64/MaxUnits)
	}
	return won, price, nil
}

// belowPercent reports whether b < pct% of of, without overflow at any
// balance (b·100 overflows int64 above 9.2e16 credits).
func belowPercent(b, of units.Credits, pct int64) bool {
	if b < 0 {
		return true
	}
	hb, lb := bits.Mul64(uint64(b), 100)
	ho, lo := bits.Mul64(uint64(max(of, 0)), uint64(pct))
	return hb < ho || hb == ho && lb < lo
}

// share returns p × part / whole, rounded down, without overflow (part ≤
// whole, both positive).
func share(p units.Credits, part, whole time.Duration) units.Credits {
	hi, lo := bits.Mul64(uint64(p), uint64(part))
	q, _ := bits.Div64(hi, lo, uint64(whole))
	return units.Credits(q)
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

// observeCPU records a cell's cumulative CPU time and returns what it
// used since the last observation (0 the first time, and if the counter
// went back).
func (cs *cellState) observeCPU(t time.Duration) time.Duration {
	var used time.Duration
	if cs.haveCPU && t > cs.cpu {
		used = t - cs.cpu
	}
	if t > cs.cpu || !cs.haveCPU {
		cs.cpu, cs.haveCPU = t, true
	}
	return used
}

// busyShare is the share of a tick a cell must have used one CPU for to
// count as wanting CPU under PolicyWeights and PolicyOracle.
const busyShare = 0.05

// decideUngoverned is the tick under PolicyCFS and the peers: nobody is
// charged; every living cell runs, unlimited under PolicyCFS and capped
// by the thermal allowance under the peers; PolicyOracle pauses the
// parasites.
func (c *Core) decideUngoverned(d *Decision, inputs map[string]CellInput, owes []charge) {
	p := c.cfg.Policy
	allowance := float64(c.cfg.Slots) / d.Multiplier
	parasite := func(name string) bool { return p == PolicyOracle && slices.Contains(c.cfg.Parasites, name) }
	var living, busy int
	for i, name := range c.order {
		if d.next[name].state == life.Dead || parasite(name) {
			continue
		}
		living++
		if d.Dt > 0 && float64(owes[i].used) >= busyShare*float64(d.Dt) {
			busy++
		}
	}
	share := 0.0                        // per cell; 0 is no cap
	if p.capped() && d.Multiplier > 1 { // at m = 1 the limit is not binding
		n := max(busy, 1)
		if p == PolicyThermalCap {
			n = max(living, 1)
		}
		// In hundredths of a CPU, so that the quota is not rewritten for
		// every flicker of the controller.
		share = max(math.Round(100*allowance/float64(n))/100, 0.01)
		if share >= float64(c.cfg.Slots) {
			share = 0 // the allowance binds no cell
		}
	}
	for _, name := range c.order {
		cs := d.next[name]
		rep := report(name, inputs[name])
		rep.State, rep.Balance = cs.state, cs.wallet.Balance
		switch {
		case cs.state == life.Dead && c.cells[name].state != life.Dead:
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActKill})
		case cs.state == life.Dead:
		case parasite(name):
			cs.state, rep.State = life.Paused, life.Paused
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActPause})
		default:
			cs.state, rep.State = life.Running, life.Running
			d.Actions = append(d.Actions, Action{Cell: name, Kind: ActRun, Cores: share})
		}
		d.Cells = append(d.Cells, rep)
		d.next[name] = cs
	}
}

// report starts a cell's line of the tick from what was measured of it.
func report(name string, ci CellInput) CellReport {
	return CellReport{Name: name, BidPrice: ci.Bid.Price, BidUnits: ci.Bid.Units,
		FreedBytes: ci.FreedBytes, MemoryBytes: ci.ResidentBytes, CPUTime: ci.CPUTime, Energy: ci.Energy, Share: ci.Share}
}

// note adds an event for people.
func (d *Decision) note(k event.Kind, cell, detail string) {
	d.Events = append(d.Events, event.Event{Tick: d.Tick, Kind: k, Cell: cell, Detail: detail})
}

// post adds a posting of amount (a close carries none); zero amounts of
// other kinds are left out.
func (d *Decision) post(cell string, k ledger.Kind, amount units.Credits) {
	if amount == 0 && k != ledger.KindClose {
		return
	}
	d.Postings = append(d.Postings, Posting{Key: ledger.Key(d.Tick, cell, string(k)), Tick: d.Tick, Cell: cell, Kind: k, Amount: amount})
}

// Names returns the admitted cells in admission order.
func (c *Core) Names() []string { return slices.Clone(c.order) }

// fracCharge returns the whole credits of n × rate / div, carrying the
// remainder in rem so that nothing is lost or charged twice across ticks.
// Absurd figures saturate at a charge no wallet survives.
func fracCharge(n, rate, div uint64, rem *uint64) units.Credits {
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
	return units.Credits(min(q, ceiling))
}

// satMul multiplies, saturating at the largest uint64.
func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}
