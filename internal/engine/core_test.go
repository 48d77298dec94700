package engine

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/market"
	"github.com/maxwellhq/maxwell/internal/units"
)

const slotE = 1000 // credits per slot at multiplier 1

func testConfig() Config {
	return Config{
		Tick: 100 * time.Millisecond, Slots: 2, SlotEnergy: slotE, Rule: market.GSP,
		Controller: control.Config{
			Gains:  control.Gains{Kp: 0.5, Ki: 0.2},
			OutMin: 1, OutMax: 10, Setpoint: 55, Critical: 90,
		},
		TaxPicojoulesPerByte: 600, Insolvency: Apoptosis, LowBalancePercent: 20,
	}
}

func newCore(t *testing.T, cfg Config, wallets map[string]Wallet) *Core {
	t.Helper()
	c, err := NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"scientist", "miner"} {
		if w, ok := wallets[name]; ok {
			if err := c.Admit(name, w); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

func input(tick uint64, temp units.Celsius, cells ...CellInput) Input {
	return Input{Tick: tick, Dt: 100 * time.Millisecond, Temperature: temp, Cells: cells}
}

func action(d Decision, cell string) Action {
	for _, a := range d.Actions {
		if a.Cell == cell {
			return a
		}
	}
	return Action{}
}

func reportOf(d Decision, cell string) CellReport {
	for _, r := range d.Cells {
		if r.Name == cell {
			return r
		}
	}
	return CellReport{}
}

func hasEvent(d Decision, kind event.Kind, cell string) bool {
	for _, e := range d.Events {
		if e.Kind == kind && e.Cell == cell {
			return true
		}
	}
	return false
}

// busy returns a cell's input for a tick in which it burnt cpu so far in
// all (cumulative CPU time), bidding b.
func busy(name string, cpu time.Duration, b Bid) CellInput {
	return CellInput{Name: name, CPUTime: cpu, Bid: b}
}

func TestGreedyMinerOutbidsAndPaysGSPForWhatItUses(t *testing.T) {
	c := newCore(t, testConfig(), map[string]Wallet{
		"scientist": {Balance: 100000, Endowment: 100000},
		"miner":     {Balance: 100000, Endowment: 100000},
	})
	sci, min := Bid{Price: 2 * slotE, Units: 2}, Bid{Price: 6 * slotE, Units: 2}
	d, err := c.Decide(input(1, 40, busy("scientist", 0, sci), CellInput{Name: "miner", Bid: min, FreedBytes: 10_000_000}))
	if err != nil {
		t.Fatal(err)
	}
	if d.Multiplier != 1 || d.Reserve != slotE {
		t.Errorf("cool host: multiplier %v reserve %d, want 1 and %d", d.Multiplier, d.Reserve, slotE)
	}
	// GSP: the miner's first unit prices at its own second unit's 6000,
	// its second at the scientist's 2000; the scientist wins nothing.
	if a := action(d, "miner"); a.Kind != ActRun || a.Cores != 2 {
		t.Errorf("miner action %+v, want run on 2 cores", a)
	}
	if a := action(d, "scientist"); a.Kind != ActPause {
		t.Errorf("scientist action %+v, want pause", a)
	}
	// Nothing is paid for slots before they are used. Tax: 10⁷ B × 600 pJ
	// = 6·10⁹ pJ = 6000 µJ = 6000 credits.
	m := reportOf(d, "miner")
	if m.Payment != 0 || m.Tax != 6000 || m.Balance != 100000-6000 {
		t.Errorf("miner report %+v: want payment 0, tax 6000, balance 94000", m)
	}
	if _, w, _ := c.Cell("miner"); w.Balance != 100000 {
		t.Errorf("Decide changed the wallet to %d", w.Balance)
	}
	c.Commit(d)
	// The miner used half of its two slots (100 ms of CPU over 2 × 100 ms):
	// it pays half of 8000.
	d, _ = c.Decide(input(2, 40, busy("scientist", 0, sci), busy("miner", 100*time.Millisecond, min)))
	if m := reportOf(d, "miner"); m.Payment != 4000 || m.Balance != 94000-4000 {
		t.Errorf("miner report after using half its slots %+v: want payment 4000, balance 90000", m)
	}
	keys := map[string]units.Credits{}
	for _, p := range d.Postings {
		keys[p.Key] = p.Amount
	}
	if keys["tick:2/cell:miner/payment"] != 4000 || len(keys) != 1 {
		t.Errorf("postings %v", keys)
	}
	c.Commit(d)
	// All of them: 8000. More CPU than the slots held (a clock's jitter)
	// pays for the slots, no more.
	d, _ = c.Decide(input(3, 40, busy("scientist", 0, sci), busy("miner", 400*time.Millisecond, min)))
	if m := reportOf(d, "miner"); m.Payment != 8000 {
		t.Errorf("miner pays %d for full slots, want 8000", m.Payment)
	}
	c.Commit(d)
	// An idle winner pays nothing for its slots.
	d, _ = c.Decide(input(4, 40, busy("scientist", 0, sci), busy("miner", 400*time.Millisecond, min)))
	if m := reportOf(d, "miner"); m.Payment != 0 {
		t.Errorf("idle miner pays %d, want 0", m.Payment)
	}
}

func TestApoptosisOfTheBroke(t *testing.T) {
	c := newCore(t, testConfig(), map[string]Wallet{
		"scientist": {Balance: 100000, Endowment: 100000},
		"miner":     {Balance: 12000, Endowment: 100000},
	})
	var died uint64
	sci, min := Bid{Price: 2 * slotE, Units: 2}, Bid{Price: 6 * slotE, Units: 2}
	for tick := uint64(1); tick <= 5 && died == 0; tick++ {
		// The miner uses its two slots to the full: 200 ms a tick.
		d, err := c.Decide(input(tick, 40, busy("scientist", 0, sci), busy("miner", time.Duration(tick-1)*200*time.Millisecond, min)))
		if err != nil {
			t.Fatal(err)
		}
		if hasEvent(d, event.Apoptosis, "miner") {
			died = tick
			if a := action(d, "miner"); a.Kind != ActKill {
				t.Errorf("apoptosis without a kill action: %+v", a)
			}
			var closed bool
			var paid units.Credits
			for _, p := range d.Postings {
				closed = closed || (p.Cell == "miner" && p.Kind == ledger.KindClose)
				if p.Cell == "miner" && p.Kind == ledger.KindPayment {
					paid = p.Amount
				}
			}
			if !closed {
				t.Error("apoptosis without closing the wallet")
			}
			if paid != 4000 {
				t.Errorf("the last payment is %d, want the 4000 left: no charge exceeds the balance", paid)
			}
		}
		c.Commit(d)
	}
	// 12000: pays 8000 at tick 2 for tick 1's slots (4000 left), owes 8000
	// at tick 3, pays the 4000 it has and dies.
	if died != 3 {
		t.Fatalf("miner died at tick %d, want 3", died)
	}
	if st, w, _ := c.Cell("miner"); st != life.Dead || w.Balance != 0 {
		t.Errorf("miner %s with %d, want dead with 0", st, w.Balance)
	}
	// With the miner gone the scientist wins both slots.
	d, _ := c.Decide(input(4, 40, busy("scientist", 0, sci), busy("miner", 600*time.Millisecond, min)))
	if a := action(d, "scientist"); a.Kind != ActRun || a.Cores != 2 {
		t.Errorf("scientist after apoptosis: %+v", a)
	}
	if a := action(d, "miner"); a.Kind != "" {
		t.Errorf("a dead cell got action %+v", a)
	}
	c.Commit(d)
	// GSP prices its slots at its own second unit's 2000 and the reserve.
	d, _ = c.Decide(input(5, 40, busy("scientist", 200*time.Millisecond, sci)))
	if r := reportOf(d, "scientist"); r.Payment != 2*slotE+slotE {
		t.Errorf("scientist pays %d, want 3000 (own second unit's 2000 + reserve 1000)", r.Payment)
	}
}

func TestHibernateAndFund(t *testing.T) {
	cfg := testConfig()
	cfg.Insolvency = Hibernate
	// Alone, the miner's slot costs the reserve, 1000; it has 500.
	c := newCore(t, cfg, map[string]Wallet{"miner": {Balance: 500, Endowment: 5000}})
	min := Bid{Price: 6 * slotE, Units: 1}
	d, _ := c.Decide(input(1, 40, busy("miner", 0, min)))
	if action(d, "miner").Kind != ActRun {
		t.Fatalf("the miner with money did not win: %+v", d)
	}
	c.Commit(d)
	d, _ = c.Decide(input(2, 40, busy("miner", 100*time.Millisecond, min)))
	if !hasEvent(d, event.Hibernate, "miner") || action(d, "miner").Kind != ActPause {
		t.Fatalf("broke miner not hibernated: %+v", d)
	}
	if r := reportOf(d, "miner"); r.Payment != 500 || r.Balance != 0 {
		t.Errorf("the broke miner paid %d and has %d, want 500 and 0", r.Payment, r.Balance)
	}
	c.Commit(d)
	d, _ = c.Decide(input(3, 40, busy("miner", 100*time.Millisecond, min)))
	if action(d, "miner").Kind != ActPause || reportOf(d, "miner").Won != 0 {
		t.Errorf("hibernating cell took part in the auction: %+v", reportOf(d, "miner"))
	}
	c.Commit(d)
	if err := c.Fund("miner", 20000); err != nil {
		t.Fatal(err)
	}
	if st, w, _ := c.Cell("miner"); st != life.Paused || w.Balance != 20000 {
		t.Errorf("after funding: %s %d", st, w.Balance)
	}
	if err := c.Fund("nobody", 1); !errors.Is(err, ErrUnknown) {
		t.Errorf("Fund(nobody) = %v", err)
	}
	if err := c.Fund("miner", -1); !errors.Is(err, ErrBadAmount) {
		t.Errorf("Fund(-1) = %v", err)
	}
}

// TestTiesRotate: three cells with equal bids on two CPUs each win in turn,
// never one starved (ties used to go to the lower bidder for good).
func TestTiesRotate(t *testing.T) {
	c, err := NewCore(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c"}
	for _, n := range names {
		if err := c.Admit(n, Wallet{Balance: 1e9, Endowment: 1e9}); err != nil {
			t.Fatal(err)
		}
	}
	wins := map[string]int{}
	const ticks = 300
	for tick := uint64(1); tick <= ticks; tick++ {
		var in []CellInput
		for _, n := range names {
			in = append(in, CellInput{Name: n, Bid: Bid{Price: 2 * slotE, Units: 1}})
		}
		d, err := c.Decide(input(tick, 40, in...))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			wins[n] += reportOf(d, n).Won
		}
		c.Commit(d)
	}
	for _, n := range names {
		if wins[n] != 2*ticks/3 {
			t.Errorf("%s won %d slots of %d ticks, want %d: %v", n, wins[n], ticks, 2*ticks/3, wins)
		}
	}
}

func TestFailSafeAndRecovery(t *testing.T) {
	c := newCore(t, testConfig(), map[string]Wallet{"scientist": {Balance: 1e6, Endowment: 1e6}})
	in := input(1, 0)
	in.TempErr = errors.New("thermal_zone0/temp: no such device")
	d, err := c.Decide(in)
	if err != nil {
		t.Fatal(err)
	}
	if !d.FailSafe || d.Multiplier != 10 || d.Reserve != 10*slotE || !hasEvent(d, event.FailSafe, "") {
		t.Fatalf("sensor failure: %+v", d)
	}
	if !strings.Contains(d.Events[0].Detail, "no such device") {
		t.Errorf("fail-safe event does not say why: %q", d.Events[0].Detail)
	}
	c.Commit(d)
	in.Tick = 2
	d, _ = c.Decide(in)
	if hasEvent(d, event.FailSafe, "") {
		t.Error("fail-safe event repeated every tick")
	}
	c.Commit(d)
	d, _ = c.Decide(input(3, 40))
	if !hasEvent(d, event.SensorRecovered, "") || d.FailSafe {
		t.Errorf("no recovery: %+v", d.Events)
	}
	// NaN is a failure too.
	c.Commit(d)
	if d, _ = c.Decide(input(4, units.Celsius(nan()))); !d.FailSafe {
		t.Error("NaN temperature did not fail safe")
	}
}

func nan() float64 { var z float64; return z / z }

func TestHeatRaisesThePrice(t *testing.T) {
	c := newCore(t, testConfig(), nil)
	var last float64 = 1
	for tick := uint64(1); tick <= 20; tick++ {
		d, err := c.Decide(input(tick, 70))
		if err != nil {
			t.Fatal(err)
		}
		if d.Multiplier < last {
			t.Fatalf("tick %d: multiplier fell from %v to %v while 15 K above setpoint", tick, last, d.Multiplier)
		}
		last = d.Multiplier
		c.Commit(d)
	}
	if last <= 1 {
		t.Errorf("multiplier still %v after 2 s 15 K above setpoint", last)
	}
}

func TestTaxCarriesRemainders(t *testing.T) {
	c := newCore(t, testConfig(), map[string]Wallet{"miner": {Balance: 1e9, Endowment: 1e9}})
	var total units.Credits
	for tick := uint64(1); tick <= 1000; tick++ {
		d, _ := c.Decide(input(tick, 40, CellInput{Name: "miner", FreedBytes: 999}))
		total += reportOf(d, "miner").Tax
		c.Commit(d)
	}
	// 1000 × 999 B × 600 pJ = 599.4 µJ: exactly 599 whole credits.
	if total != 599 {
		t.Errorf("tax over 1000 ticks = %d credits, want 599", total)
	}
}

func TestRentTapAndLowBalance(t *testing.T) {
	cfg := testConfig()
	cfg.RentPicojoulesPerByteSecond = 1000
	c := newCore(t, cfg, map[string]Wallet{"scientist": {Balance: 10000, Endowment: 50000, TapRate: 1000, TapCap: 10100}})
	d, _ := c.Decide(input(1, 40, CellInput{Name: "scientist", ResidentBytes: 1 << 30}))
	r := reportOf(d, "scientist")
	// Tap: 1000/s × 0.1 s = 100, up to the cap of 10100. Rent: 2^30 B ×
	// 0.1 s × 1000 pJ/(B·s) = 107374182400 pJ → 107374 credits, more than
	// the 10100 it has: it pays those and dies.
	if r.Tap != 100 || r.Rent != 10100 || r.Balance != 0 {
		t.Errorf("tap %d rent %d balance %d, want 100, 10100 (all it had) and 0", r.Tap, r.Rent, r.Balance)
	}
	if !hasEvent(d, event.Apoptosis, "scientist") {
		t.Errorf("rent beyond the balance did not kill: %+v", d.Events)
	}
	c2 := newCore(t, testConfig(), map[string]Wallet{"scientist": {Balance: 12000, Endowment: 50000}})
	sci := Bid{Price: 2 * slotE, Units: 1}
	d, _ = c2.Decide(input(1, 40, busy("scientist", 0, sci)))
	c2.Commit(d)
	// It pays the reserve, 1000, for its slot used in full: 11000 left.
	d, _ = c2.Decide(input(2, 40, busy("scientist", 100*time.Millisecond, sci)))
	if hasEvent(d, event.LowBalance, "scientist") {
		t.Errorf("balance 11000 of 50000 (22%%) warned: %+v", d.Events)
	}
	c2.Commit(d)
	d, _ = c2.Decide(input(3, 40, busy("scientist", 200*time.Millisecond, sci)))
	if hasEvent(d, event.LowBalance, "scientist") || reportOf(d, "scientist").Balance != 10000 {
		t.Errorf("balance %d of 50000 (20%%, not below) warned: %+v", reportOf(d, "scientist").Balance, d.Events)
	}
	c2.Commit(d)
	d, _ = c2.Decide(input(4, 40, busy("scientist", 300*time.Millisecond, sci)))
	if !hasEvent(d, event.LowBalance, "scientist") || reportOf(d, "scientist").Balance != 9000 {
		t.Errorf("balance 9000 of 50000 gave no warning: %+v", d.Events)
	}
	c2.Commit(d)
	d, _ = c2.Decide(input(5, 40, busy("scientist", 400*time.Millisecond, sci)))
	if hasEvent(d, event.LowBalance, "scientist") {
		t.Error("low-balance warning repeated")
	}
}

func TestAbandonKeepsWallets(t *testing.T) {
	c := newCore(t, testConfig(), map[string]Wallet{"miner": {Balance: 100000, Endowment: 100000}})
	d, _ := c.Decide(input(1, 40, CellInput{Name: "miner", Bid: Bid{Price: 6 * slotE, Units: 1}}))
	c.Abandon(d)
	if st, w, _ := c.Cell("miner"); w.Balance != 100000 || st != life.Paused {
		t.Errorf("after Abandon: %s %d", st, w.Balance)
	}
	if _, err := c.Decide(input(1, 40)); !errors.Is(err, ErrStaleInput) {
		t.Errorf("replayed tick: %v", err)
	}
}

func TestReplayIsDeterministic(t *testing.T) {
	run := func() []Decision {
		c := newCore(t, testConfig(), map[string]Wallet{
			"scientist": {Balance: 50000, Endowment: 50000},
			"miner":     {Balance: 50000, Endowment: 50000},
		})
		var out []Decision
		for tick := uint64(1); tick <= 50; tick++ {
			temp := units.Celsius(40 + float64(tick)/2)
			d, err := c.Decide(input(tick, temp,
				CellInput{Name: "scientist", Bid: Bid{Price: 2 * slotE, Units: 2}},
				CellInput{Name: "miner", Bid: Bid{Price: 3 * slotE, Units: 2}, FreedBytes: tick * 1000},
			))
			if err != nil {
				t.Fatal(err)
			}
			c.Commit(d)
			d.next = nil
			out = append(out, d)
		}
		return out
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a, b) {
		t.Error("the same inputs gave different decisions")
	}
}

func TestConfigErrors(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"zero tick":     func(c *Config) { c.Tick = 0 },
		"no slots":      func(c *Config) { c.Slots = 0 },
		"no energy":     func(c *Config) { c.SlotEnergy = 0 },
		"bad policy":    func(c *Config) { c.Insolvency = "shrug" },
		"floor below 1": func(c *Config) { c.Controller.OutMin = 0.5 },
		"bad setpoint":  func(c *Config) { c.Controller.Setpoint = 95 },
		"warn 150%":     func(c *Config) { c.LowBalancePercent = 150 },
	} {
		cfg := testConfig()
		mut(&cfg)
		if _, err := NewCore(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: NewCore = %v, want ErrConfig", name, err)
		}
	}
}

func TestImplausibleReadingsFailSafe(t *testing.T) {
	c := newCore(t, testConfig(), nil)
	for i, temp := range []units.Celsius{-80, 400, 95} { // below −55, above 150, at/above critical (90)
		d, err := c.Decide(input(uint64(i+1), temp))
		if err != nil {
			t.Fatal(err)
		}
		if !d.FailSafe || d.Multiplier != 10 {
			t.Errorf("%v °C: fail-safe %v, multiplier %v", temp, d.FailSafe, d.Multiplier)
		}
		c.Commit(d)
	}
}

// TestMoneyRulesHold runs random ticks through two cores fed the same
// inputs and checks, every tick: no wallet is ever charged more than it
// holds, each wallet moves by exactly its postings, a cell that could not
// pay dies, and the two cores decide alike (ties rotate by the tick, so a
// replay ranks them the same).
func TestMoneyRulesHold(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for run := range 50 {
		cfg := testConfig()
		cfg.Slots = 1 + rng.IntN(4)
		cfg.RentPicojoulesPerByteSecond = uint64(rng.IntN(3)) * 500
		a, b := mustCore(t, cfg), mustCore(t, cfg)
		names := []string{"c0", "c1", "c2", "c3", "c4"}[:2+rng.IntN(4)]
		cpu := map[string]time.Duration{}
		for _, n := range names {
			w := Wallet{Balance: units.Credits(rng.IntN(50_000)), Endowment: 50_000}
			if rng.IntN(3) == 0 {
				w.TapRate, w.TapCap = units.Credits(rng.IntN(20_000)), 60_000
			}
			for _, c := range []*Core{a, b} {
				if err := c.Admit(n, w); err != nil {
					t.Fatal(err)
				}
			}
		}
		for tick := uint64(1); tick <= 60; tick++ {
			var in []CellInput
			for _, n := range names {
				cpu[n] += time.Duration(rng.IntN(250)) * time.Millisecond
				in = append(in, CellInput{Name: n, CPUTime: cpu[n], FreedBytes: uint64(rng.IntN(50_000_000)),
					ResidentBytes: uint64(rng.IntN(1 << 30)), Bid: Bid{Price: units.Credits(rng.IntN(4)) * slotE / 2, Units: rng.IntN(3)}})
			}
			temp := units.Celsius(30 + rng.Float64()*50)
			da, err := a.Decide(input(tick, temp, in...))
			if err != nil {
				t.Fatal(err)
			}
			db, _ := b.Decide(input(tick, temp, in...))
			if !reflect.DeepEqual(normalise(da), normalise(db)) {
				t.Fatalf("run %d tick %d: the same input decided twice differs", run, tick)
			}
			moved := map[string]units.Credits{}
			for _, p := range da.Postings {
				moved[p.Cell] -= p.Amount
			}
			for _, r := range da.Cells {
				_, before, _ := a.Cell(r.Name)
				stBefore, _, _ := a.Cell(r.Name)
				if stBefore == life.Dead {
					continue
				}
				if r.Balance < 0 {
					t.Fatalf("run %d tick %d: %s charged below zero: %+v", run, tick, r.Name, r)
				}
				if r.Balance != before.Balance+moved[r.Name] {
					t.Fatalf("run %d tick %d: %s went %d → %d but its postings move %d", run, tick, r.Name, before.Balance, r.Balance, moved[r.Name])
				}
				if r.Payment+r.Tax+r.Rent > before.Balance+r.Tap {
					t.Fatalf("run %d tick %d: %s charged %d with %d", run, tick, r.Name, r.Payment+r.Tax+r.Rent, before.Balance+r.Tap)
				}
			}
			a.Commit(da)
			b.Commit(db)
		}
	}
}

func mustCore(t *testing.T, cfg Config) *Core {
	t.Helper()
	c, err := NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNewcomerRunsWhenOutbid: a startup bid is served before the auction,
// so a newcomer runs (and can then bid for itself) on a host whose every
// slot an incumbent outbids it for; with more newcomers than slots they
// take turns.
func TestNewcomerRunsWhenOutbid(t *testing.T) {
	c, err := NewCore(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"incumbent", "new1", "new2", "new3"} {
		if err := c.Admit(n, Wallet{Balance: 1e12, Endowment: 1e12}); err != nil {
			t.Fatal(err)
		}
	}
	slots := testConfig().Slots
	d, err := c.Decide(input(1, 40,
		CellInput{Name: "incumbent", Bid: Bid{Price: 100 * slotE, Units: slots}},
		CellInput{Name: "new1", Bid: Bid{Units: 1, AtReserve: true}}))
	if err != nil {
		t.Fatal(err)
	}
	if r := reportOf(d, "new1"); r.Won != 1 {
		t.Errorf("the newcomer won %d slots against an incumbent bidding for all %d, want its startup slot", r.Won, slots)
	}
	if r := reportOf(d, "incumbent"); r.Won != slots-1 {
		t.Errorf("the incumbent won %d, want the %d left", r.Won, slots-1)
	}
	c.Commit(d)
	wins := map[string]int{}
	const ticks = 60
	for tick := uint64(2); tick < 2+ticks; tick++ {
		var in []CellInput
		for _, n := range []string{"new1", "new2", "new3"} {
			in = append(in, CellInput{Name: n, Bid: Bid{Units: 1, AtReserve: true}})
		}
		in = append(in, CellInput{Name: "incumbent", Bid: Bid{Price: 100 * slotE, Units: slots}})
		d, err := c.Decide(input(tick, 40, in...))
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, r := range d.Cells {
			total += r.Won
			wins[r.Name] += r.Won
		}
		if total > slots {
			t.Fatalf("tick %d sold %d slots of %d", tick, total, slots)
		}
		c.Commit(d)
	}
	for _, n := range []string{"new1", "new2", "new3"} {
		if wins[n] == 0 {
			t.Errorf("%s never ran: %v", n, wins)
		}
	}
	t.Logf("slots won over %d ticks: %v", ticks, wins)
}

func TestBelowPercent(t *testing.T) {
	const big = units.Credits(1) << 60
	for _, tt := range []struct {
		b, of units.Credits
		pct   int64
		want  bool
	}{
		{19, 100, 20, true}, {20, 100, 20, false}, {0, 100, 20, true}, {-1, 100, 0, true},
		{big - 158, big, 20, false},                           // b·100 overflows int64
		{big/5 + 1, big, 20, false}, {big / 5, big, 20, true}, // big is not a multiple of 5
		{math.MaxInt64, math.MaxInt64, 100, false}, {5, 0, 20, false},
	} {
		if got := belowPercent(tt.b, tt.of, tt.pct); got != tt.want {
			t.Errorf("belowPercent(%d, %d, %d) = %t, want %t", tt.b, tt.of, tt.pct, got, tt.want)
		}
	}
}

// TestPeerPolicies: the peers charge nobody; below the setpoint they cap
// nobody; above it each holds the thermal allowance (Slots/m CPUs) its own
// way: weights among the busy cells, thermal-cap among all living cells,
// and the oracle pauses the parasite and shares among the rest.
func TestPeerPolicies(t *testing.T) {
	for _, tt := range []struct {
		policy Policy
		hot    bool
		want   map[string]Action // by cell; Cores compared to 0.01
	}{
		{PolicyWeights, false, map[string]Action{"a": {Kind: ActRun}, "b": {Kind: ActRun}, "idle": {Kind: ActRun}}},
		{PolicyThermalCap, false, map[string]Action{"a": {Kind: ActRun}, "b": {Kind: ActRun}, "idle": {Kind: ActRun}}},
		{PolicyOracle, false, map[string]Action{"a": {Kind: ActRun}, "b": {Kind: ActPause}, "idle": {Kind: ActRun}}},
		{PolicyCFS, true, map[string]Action{"a": {Kind: ActRun}, "b": {Kind: ActRun}, "idle": {Kind: ActRun}}},
	} {
		t.Run(string(tt.policy), func(t *testing.T) {
			cfg := testConfig()
			cfg.Policy, cfg.Parasites = tt.policy, []string{"b"}
			c, err := NewCore(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"a", "b", "idle"} {
				if err := c.Admit(n, Wallet{Balance: 1000, Endowment: 1000}); err != nil {
					t.Fatal(err)
				}
			}
			temp := units.Celsius(40)
			if tt.hot {
				temp = 80
			}
			cpu := map[string]time.Duration{}
			var d Decision
			for tick := uint64(1); tick <= 3; tick++ {
				cpu["a"] += 100 * time.Millisecond
				cpu["b"] += 100 * time.Millisecond
				d, err = c.Decide(input(tick, temp,
					CellInput{Name: "a", CPUTime: cpu["a"], FreedBytes: 1 << 30},
					CellInput{Name: "b", CPUTime: cpu["b"]},
					CellInput{Name: "idle"}))
				if err != nil {
					t.Fatal(err)
				}
				c.Commit(d)
			}
			if len(d.Postings) != 0 {
				t.Errorf("%s posted %v: nobody pays", tt.policy, d.Postings)
			}
			for n, want := range tt.want {
				if got := action(d, n); got.Kind != want.Kind || math.Abs(got.Cores-want.Cores) > 0.01 {
					t.Errorf("%s: %+v, want %+v", n, got, want)
				}
			}
		})
	}
	// Hot: the multiplier has risen; the allowance is Slots/m.
	for _, p := range []Policy{PolicyWeights, PolicyThermalCap, PolicyOracle} {
		cfg := testConfig()
		cfg.Policy, cfg.Parasites = p, []string{"b"}
		c, _ := NewCore(cfg)
		for _, n := range []string{"a", "b", "idle"} {
			c.Admit(n, Wallet{Balance: 1000, Endowment: 1000})
		}
		var d Decision
		cpu := time.Duration(0)
		for tick := uint64(1); tick <= 50; tick++ {
			cpu += 100 * time.Millisecond
			d, _ = c.Decide(input(tick, 80, CellInput{Name: "a", CPUTime: cpu}, CellInput{Name: "b", CPUTime: cpu}, CellInput{Name: "idle"}))
			c.Commit(d)
		}
		if d.Multiplier <= 1 {
			t.Fatalf("%s: multiplier %v at 80 °C", p, d.Multiplier)
		}
		allowance := float64(cfg.Slots) / d.Multiplier
		n := map[Policy]float64{PolicyWeights: 2, PolicyThermalCap: 3, PolicyOracle: 1}[p]
		want := max(math.Round(100*allowance/n)/100, 0.01)
		if got := action(d, "a"); got.Kind != ActRun || math.Abs(got.Cores-want) > 0.011 {
			t.Errorf("%s at ×%.2f: a gets %+v, want a cap of %.2f CPUs", p, d.Multiplier, got, want)
		}
		if p == PolicyOracle && action(d, "b").Kind != ActPause {
			t.Errorf("the oracle runs the parasite: %+v", action(d, "b"))
		}
	}
}

// TestIncome: income for checked work is credited before charges, posted
// as ledger.KindIncome, and counted in the report; the peers pay none.
func TestIncome(t *testing.T) {
	for _, p := range []Policy{PolicyMaxwell, PolicyCFS, PolicyWeights} {
		cfg := testConfig()
		cfg.Policy = p
		c, _ := NewCore(cfg)
		c.Admit("sci", Wallet{Balance: 10, Endowment: 10})
		d, err := c.Decide(input(1, 40, CellInput{Name: "sci", Income: 5000}))
		if err != nil {
			t.Fatal(err)
		}
		r := reportOf(d, "sci")
		var posted units.Credits
		for _, ps := range d.Postings {
			if ps.Kind == ledger.KindIncome {
				posted += ps.Amount
			}
		}
		want := units.Credits(5000)
		if p != PolicyMaxwell {
			want = 0
		}
		if r.Income != want || r.IncomeTotal != want || posted != want || r.Balance != 10+want {
			t.Errorf("%s: income %d (total %d), posted %d, balance %d; want %d paid in", p, r.Income, r.IncomeTotal, posted, r.Balance, want)
		}
	}
}

// TestHostLimits: a power budget prices power as the setpoint prices heat,
// and the decision says which binds; a lower setpoint binds the
// temperature; removing the budget frees the price; a bad setpoint changes
// nothing.
func TestHostLimits(t *testing.T) {
	c := newCore(t, testConfig(), nil)
	tick := uint64(0)
	step := func(temp units.Celsius, power units.Power) Decision {
		tick++
		in := input(tick, temp)
		in.Power = power
		d, err := c.Decide(in)
		if err != nil {
			t.Fatal(err)
		}
		c.Commit(d)
		return d
	}
	if d := step(40, 20); d.Multiplier != 1 || d.Binding != "" {
		t.Fatalf("cool, no budget: %v, %q", d.Multiplier, d.Binding)
	}
	budget := units.Power(10)
	if err := c.SetHost(HostSettings{PowerBudget: &budget}); err != nil {
		t.Fatal(err)
	}
	var d Decision
	for range 20 {
		d = step(40, 20)
	}
	if d.Multiplier <= 1 || d.Binding != LimitPower || d.Reserve <= slotE {
		t.Errorf("20 W against a 10 W budget: multiplier %v, binding %q, reserve %d", d.Multiplier, d.Binding, d.Reserve)
	}
	if sp, b := c.Host(); b != 10 || sp != testConfig().Controller.Setpoint {
		t.Errorf("Host() = %v, %v", sp, b)
	}
	none := units.Power(0)
	low := units.Celsius(30)
	if err := c.SetHost(HostSettings{PowerBudget: &none, SetpointCelsius: &low}); err != nil {
		t.Fatal(err)
	}
	for range 200 { // bumpless: the integral moves to the new setpoint
		d = step(40, 20)
	}
	if d.Binding != LimitTemperature || d.Multiplier <= 1 {
		t.Errorf("40 °C against a 30 °C setpoint, no budget: %v, %q", d.Multiplier, d.Binding)
	}
	bad := units.Celsius(200)
	if err := c.SetHost(HostSettings{SetpointCelsius: &bad, PowerBudget: &budget}); !errors.Is(err, ErrConfig) {
		t.Errorf("a setpoint of 200 °C: %v", err)
	}
	if sp, b := c.Host(); sp != 30 || b != 0 {
		t.Errorf("a refused change changed the host: %v, %v", sp, b)
	}
	c.Admit("a", Wallet{Balance: 1, Endowment: 1})
	if err := c.SetTap("a", 5, 100); err != nil {
		t.Fatal(err)
	}
	if _, w, _ := c.Cell("a"); w.TapRate != 5 || w.TapCap != 100 {
		t.Errorf("tap: %+v", w)
	}
	if err := c.SetTap("nobody", 1, 1); !errors.Is(err, ErrUnknown) {
		t.Errorf("tap of nobody: %v", err)
	}
}

// TestThermalAllowance: above the setpoint the economy sells Slots/m CPUs,
// not only dearer slots: a bidder who would pay any price wins slots of
// 1/m of a CPU each (its CPU cap), each costing the reserve × its weight.
func TestThermalAllowance(t *testing.T) {
	cfg := testConfig()
	cfg.Ration = true
	c, err := NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Admit("greedy", Wallet{Balance: 1e15, Endowment: 1e15})
	var d Decision
	cpu := time.Duration(0)
	for tick := uint64(1); tick <= 40; tick++ {
		cpu += 200 * time.Millisecond // both CPUs, in full
		d, err = c.Decide(input(tick, 80, CellInput{Name: "greedy", CPUTime: cpu, Bid: Bid{Price: 1000 * slotE, Units: 2}}))
		if err != nil {
			t.Fatal(err)
		}
		c.Commit(d)
	}
	m := d.Multiplier
	if m <= 1 {
		t.Fatalf("multiplier %v at 80 °C", m)
	}
	a := action(d, "greedy")
	want := 2 / m
	if a.Kind != ActRun || math.Abs(a.Cores-want) > 0.01 {
		t.Errorf("at ×%.2f the greedy bidder may use %.3f CPUs, want the allowance %.3f", m, a.Cores, want)
	}
	r := reportOf(d, "greedy")
	// It used its whole quota: it pays its slots' price, about the reserve
	// × 1/m each, which is the slot energy: heat costs, and is rationed.
	if r.Won != 2 || r.Payment <= 0 {
		t.Errorf("won %d, paid %d", r.Won, r.Payment)
	}
}
