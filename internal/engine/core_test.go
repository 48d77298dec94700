package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/event"
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

func TestGreedyMinerOutbidsAndPaysGSP(t *testing.T) {
	c := newCore(t, testConfig(), map[string]Wallet{
		"scientist": {Balance: 100000, Endowment: 100000},
		"miner":     {Balance: 100000, Endowment: 100000},
	})
	d, err := c.Decide(input(1, 40,
		CellInput{Name: "scientist", Bid: Bid{Price: 2 * slotE, Units: 2}},
		CellInput{Name: "miner", Bid: Bid{Price: 6 * slotE, Units: 2}, FreedBytes: 10_000_000},
	))
	if err != nil {
		t.Fatal(err)
	}
	if d.Multiplier != 1 || d.Reserve != slotE {
		t.Errorf("cool host: multiplier %v reserve %d, want 1 and %d", d.Multiplier, d.Reserve, slotE)
	}
	// GSP: the miner's first unit pays its own second unit's 6000, its
	// second pays the scientist's 2000; the scientist wins nothing.
	if a := action(d, "miner"); a.Kind != ActRun || a.Cores != 2 {
		t.Errorf("miner action %+v, want run on 2 cores", a)
	}
	if a := action(d, "scientist"); a.Kind != ActPause {
		t.Errorf("scientist action %+v, want pause", a)
	}
	m := reportOf(d, "miner")
	// Tax: 10⁷ B × 600 pJ = 6·10⁹ pJ = 6000 µJ = 6000 credits.
	if m.Payment != 8000 || m.Tax != 6000 || m.Balance != 100000-14000 {
		t.Errorf("miner report %+v: want payment 8000, tax 6000, balance 86000", m)
	}
	// Nothing changes before Commit.
	if _, w, _ := c.Cell("miner"); w.Balance != 100000 {
		t.Errorf("Decide changed the wallet to %d", w.Balance)
	}
	c.Commit(d)
	if st, w, _ := c.Cell("miner"); w.Balance != 86000 || st != life.Running {
		t.Errorf("after Commit: %s, %d", st, w.Balance)
	}
	keys := map[string]units.Credits{}
	for _, p := range d.Postings {
		keys[p.Key] = p.Amount
	}
	if keys["tick:1/cell:miner/payment"] != 8000 || keys["tick:1/cell:miner/tax"] != 6000 || len(keys) != 2 {
		t.Errorf("postings %v", keys)
	}
}

func TestApoptosisOfTheBroke(t *testing.T) {
	c := newCore(t, testConfig(), map[string]Wallet{
		"scientist": {Balance: 100000, Endowment: 100000},
		"miner":     {Balance: 12000, Endowment: 100000},
	})
	var died uint64
	for tick := uint64(1); tick <= 5 && died == 0; tick++ {
		d, err := c.Decide(input(tick, 40,
			CellInput{Name: "scientist", Bid: Bid{Price: 2 * slotE, Units: 2}},
			CellInput{Name: "miner", Bid: Bid{Price: 6 * slotE, Units: 2}},
		))
		if err != nil {
			t.Fatal(err)
		}
		if hasEvent(d, event.Apoptosis, "miner") {
			died = tick
			if a := action(d, "miner"); a.Kind != ActKill {
				t.Errorf("apoptosis without a kill action: %+v", a)
			}
			var closed bool
			for _, p := range d.Postings {
				closed = closed || (p.Cell == "miner" && p.Kind == "close")
			}
			if !closed {
				t.Error("apoptosis without closing the wallet")
			}
		}
		c.Commit(d)
	}
	// 12000: pays 8000 at tick 1 (4000 left), 8000 at tick 2 → −4000.
	if died != 2 {
		t.Fatalf("miner died at tick %d, want 2", died)
	}
	if st, w, _ := c.Cell("miner"); st != life.Dead || w.Balance != -4000 {
		t.Errorf("miner %s with %d", st, w.Balance)
	}
	// With the miner gone the scientist wins both slots at the reserve.
	d, _ := c.Decide(input(3, 40, CellInput{Name: "scientist", Bid: Bid{Price: 2 * slotE, Units: 2}}, CellInput{Name: "miner", Bid: Bid{Price: 6 * slotE, Units: 2}}))
	if a := action(d, "scientist"); a.Kind != ActRun || a.Cores != 2 {
		t.Errorf("scientist after apoptosis: %+v", a)
	}
	if r := reportOf(d, "scientist"); r.Payment != 2*slotE+slotE {
		t.Errorf("scientist pays %d, want 3000 (own second unit's 2000 + reserve 1000)", r.Payment)
	}
	if a := action(d, "miner"); a.Kind != "" {
		t.Errorf("a dead cell got action %+v", a)
	}
}

func TestHibernateAndFund(t *testing.T) {
	cfg := testConfig()
	cfg.Insolvency = Hibernate
	// Alone, the miner pays the reserve, 1000, with 500 in its wallet.
	c := newCore(t, cfg, map[string]Wallet{"miner": {Balance: 500, Endowment: 5000}})
	d, _ := c.Decide(input(1, 40, CellInput{Name: "miner", Bid: Bid{Price: 6 * slotE, Units: 1}}))
	if !hasEvent(d, event.Hibernate, "miner") || action(d, "miner").Kind != ActPause {
		t.Fatalf("broke miner not hibernated: %+v", d)
	}
	c.Commit(d)
	d, _ = c.Decide(input(2, 40, CellInput{Name: "miner", Bid: Bid{Price: 6 * slotE, Units: 1}}))
	if action(d, "miner").Kind != ActPause || reportOf(d, "miner").Payment != 0 {
		t.Errorf("hibernating cell took part in the auction: %+v", reportOf(d, "miner"))
	}
	c.Commit(d)
	if err := c.Fund("miner", 20000); err != nil {
		t.Fatal(err)
	}
	if st, w, _ := c.Cell("miner"); st != life.Paused || w.Balance != 19500 {
		t.Errorf("after funding: %s %d", st, w.Balance)
	}
	if err := c.Fund("nobody", 1); !errors.Is(err, ErrUnknown) {
		t.Errorf("Fund(nobody) = %v", err)
	}
	if err := c.Fund("miner", -1); !errors.Is(err, ErrBadAmount) {
		t.Errorf("Fund(-1) = %v", err)
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
	// Rent: 2^30 B × 0.1 s × 1000 pJ/(B·s) = 107374182400 pJ → 107374 credits.
	if r.Rent != 107374 {
		t.Errorf("rent = %d, want 107374", r.Rent)
	}
	// Tap: 1000/s × 0.1 s = 100, up to the cap of 10100.
	if r.Tap != 100 {
		t.Errorf("tap = %d, want 100", r.Tap)
	}
	if !hasEvent(d, event.Apoptosis, "scientist") {
		t.Errorf("rent beyond the balance did not kill: %+v", d.Events)
	}
	c2 := newCore(t, testConfig(), map[string]Wallet{"scientist": {Balance: 10500, Endowment: 50000}})
	d, _ = c2.Decide(input(1, 40, CellInput{Name: "scientist", Bid: Bid{Price: 2 * slotE, Units: 1}}))
	if !hasEvent(d, event.LowBalance, "scientist") {
		t.Errorf("balance 9500 of 50000 gave no warning: %+v", d.Events)
	}
	c2.Commit(d)
	d, _ = c2.Decide(input(2, 40, CellInput{Name: "scientist", Bid: Bid{Price: 2 * slotE, Units: 1}}))
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
