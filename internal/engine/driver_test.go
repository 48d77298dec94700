package engine

import (
	"math"

	"github.com/maxwellhq/maxwell/internal/clock/clocktest"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"

	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

// fakeCell records what the driver does to it.
type fakeCell struct {
	cell.Cell // unimplemented methods panic: the driver must not call them
	mu        sync.Mutex
	name      string
	freezer   cell.FreezerKind // "" is FreezerV2
	reads     int              // Stats calls
	frozen    bool
	killed    bool
	limit     float64
	cpu       time.Duration
	done      chan struct{}
}

func newFakeCell(name string) *fakeCell { return &fakeCell{name: name, done: make(chan struct{})} }

func (f *fakeCell) Name() string { return f.name }
func (f *fakeCell) Freezer() cell.FreezerKind {
	if f.freezer == "" {
		return cell.FreezerV2
	}
	return f.freezer
}
func (f *fakeCell) Pause(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = true
	return nil
}
func (f *fakeCell) Resume(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = false
	return nil
}
func (f *fakeCell) Kill(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.killed {
		f.killed = true
		close(f.done)
	}
	return nil
}
func (f *fakeCell) Done() <-chan struct{}      { return f.done }
func (f *fakeCell) Wait(context.Context) error { return nil }
func (f *fakeCell) Stats() (cell.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return cell.Stats{MemoryBytes: 1 << 20, CPUTime: f.cpu}, nil
}

// burn adds CPU time to the cell, as if it had run.
func (f *fakeCell) burn(d time.Duration) {
	f.mu.Lock()
	f.cpu += d
	f.mu.Unlock()
}
func (f *fakeCell) LimitCPU(cores float64) error {
	f.mu.Lock()
	f.limit = cores
	f.mu.Unlock()
	return nil
}
func (f *fakeCell) state() (bool, bool, float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen, f.killed, f.limit
}

// countingTemp is a thermometer at a fixed temperature that counts its
// readings.
type countingTemp struct {
	mu    sync.Mutex
	c     units.Celsius
	reads int
}

func fixedTemp(c units.Celsius) *countingTemp { return &countingTemp{c: c} }

func (t *countingTemp) Source() sensors.Source { return sensors.Source{Name: "fixed"} }
func (t *countingTemp) ReadTemperature() (units.Celsius, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reads++
	return t.c, nil
}
func (t *countingTemp) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reads
}

// stepEnergy is an energy counter that advances by step at every reading.
type stepEnergy struct {
	mu   sync.Mutex
	e    units.Energy
	step units.Energy
}

func (s *stepEnergy) Source() sensors.Source { return sensors.Source{Name: "step"} }
func (s *stepEnergy) ReadEnergy() (units.Energy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.e += s.step
	return s.e, nil
}

// flakyLedger fails while down is set.
type flakyLedger struct {
	mu    sync.Mutex
	down  bool
	posts int
}

func (l *flakyLedger) Post(_ context.Context, p []Posting) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return errors.New("database or disk is full")
	}
	l.posts += len(p)
	return nil
}

// run starts d.Run on a fake clock and returns a function that moves the
// clock one tick on and returns that tick's decision, and one that stops
// the driver and returns Run's error.
func run(t *testing.T, d *Driver) (tick func() Decision, stop func() error) {
	t.Helper()
	fake := clocktest.New()
	d.Clock = fake
	decisions := make(chan Decision, 1)
	d.OnDecision = func(dec Decision) { decisions <- dec }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := fake.BlockUntil(wctx, 1); err != nil {
		t.Fatalf("the driver made no ticker: %v", err)
	}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		return nil
	}
	t.Cleanup(func() { stop() })
	tick = func() Decision {
		t.Helper()
		fake.Advance(d.Core.Config().Tick)
		select {
		case dec := <-decisions:
			return dec
		case <-time.After(5 * time.Second):
			t.Fatal("no decision within 5 s of a tick")
		}
		return Decision{}
	}
	return tick, stop
}

func admit(t *testing.T, d *Driver, name string, c cell.Cell, w Wallet, standing *Bid) {
	t.Helper()
	if err := d.Admit(context.Background(), name, c, w, standing); err != nil {
		t.Fatal(err)
	}
}

func newDriver(t *testing.T, cfg Config) *Driver {
	t.Helper()
	core, err := NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Driver{Core: core, Temp: fixedTemp(40), Energy: &stepEnergy{step: units.Joule}, Ledger: &flakyLedger{}, Clock: clocktest.New()}
}

func eventOf(d Decision, k event.Kind, cell string) bool { return hasEvent(d, k, cell) }

func TestDriverGovernsAndReleases(t *testing.T) {
	d := newDriver(t, testConfig())
	ledger := d.Ledger.(*flakyLedger)
	var journal bytes.Buffer
	jw := NewJournalWriter(&journal)
	d.Journal = jw.Write
	var notes []event.Event
	var notesMu sync.Mutex
	d.Note = func(e event.Event) { notesMu.Lock(); notes = append(notes, e); notesMu.Unlock() }
	sci, min := newFakeCell("scientist"), newFakeCell("miner")
	admit(t, d, "scientist", sci, Wallet{Balance: 1e6, Endowment: 1e6}, &Bid{Price: 2 * slotE, Units: 2})
	admit(t, d, "miner", min, Wallet{Balance: 30000, Endowment: 1e6}, &Bid{Price: 6 * slotE, Units: 2})
	tick, stop := run(t, d)

	// The greedy miner wins both CPUs and the scientist is frozen, until
	// the miner's 30000 credits run out (8000 for each tick it uses both
	// CPUs to the full, paid the tick after) and it dies in the fifth.
	for n := 1; n <= 4; n++ {
		if n > 1 {
			min.burn(200 * time.Millisecond)
		}
		dec := tick()
		if a := action(dec, "miner"); a.Kind != ActRun || a.Cores != 2 {
			t.Fatalf("tick %d: miner %+v, want run on 2", n, a)
		}
		if f, _, _ := sci.state(); !f {
			t.Fatalf("tick %d: the outbid scientist runs", n)
		}
	}
	min.burn(200 * time.Millisecond)
	dec := tick()
	if !eventOf(dec, event.Apoptosis, "miner") {
		t.Fatalf("tick 5: no apoptosis: %+v", dec.Events)
	}
	if _, killed, _ := min.state(); !killed {
		t.Error("apoptosis without a kill")
	}
	tick()
	if frozen, _, limit := sci.state(); frozen || limit != 2 {
		t.Errorf("after the apoptosis the scientist is frozen=%v on %v CPUs, want running on 2", frozen, limit)
	}

	// The ledger fails: charging stops, and nobody is frozen.
	ledger.mu.Lock()
	ledger.down = true
	ledger.mu.Unlock()
	_, w, _ := d.Cell("scientist")
	for range 3 {
		dec = tick()
	}
	if _, w2, _ := d.Cell("scientist"); w2.Balance != w.Balance {
		t.Errorf("charged while the ledger was down: %d → %d", w.Balance, w2.Balance)
	}
	if r := reportOf(dec, "scientist"); r.Balance != w.Balance || r.State != life.Running || r.Payment != 0 {
		t.Errorf("the scientist's line while the ledger is down: %+v (balance was %d)", r, w.Balance)
	}
	if frozen, _, _ := sci.state(); frozen {
		t.Error("a cell is frozen while the ledger is down")
	}
	ledger.mu.Lock()
	ledger.down = false
	ledger.mu.Unlock()
	tick()

	// Stop: every cell is left thawed and unlimited.
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	if frozen, _, limit := sci.state(); frozen || limit != 0 {
		t.Errorf("after Run: scientist frozen=%v limit=%v", frozen, limit)
	}
	notesMu.Lock()
	var kinds []event.Kind
	for _, e := range notes {
		kinds = append(kinds, e.Kind)
		if e.Time.IsZero() || e.Tick == 0 {
			t.Errorf("event %+v not stamped", e)
		}
	}
	notesMu.Unlock()
	for _, k := range []event.Kind{event.Apoptosis, event.LedgerUnavailable, event.LedgerRecovered} {
		if n := count(kinds, k); n != 1 {
			t.Errorf("%d %s events, want 1 (%v)", n, k, kinds)
		}
	}

	// The journal replays exactly: the same decisions, tick by tick,
	// through the apoptosis, the ledger outage and its recovery.
	if err := jw.Close(); err != nil {
		t.Fatal(err)
	}
	ticks, err := Replay(bytes.NewReader(journal.Bytes()))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if ticks != 10 {
		t.Errorf("replayed %d ticks, want 10", ticks)
	}
	// A tampered journal does not.
	tampered := bytes.Replace(journal.Bytes(), []byte(`"temperature_celsius":40`), []byte(`"temperature_celsius":70`), 1)
	if _, err := Replay(bytes.NewReader(tampered)); !errors.Is(err, ErrDiverged) {
		t.Errorf("replay of a tampered journal: %v, want ErrDiverged", err)
	}
}

func count[T comparable](xs []T, x T) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

// TestDriverMeasuresOnce: every tick reads the thermometer and the energy
// counter once, attributes the energy by CPU time, and the decision carries
// what it was made from.
func TestDriverMeasuresOnce(t *testing.T) {
	d := newDriver(t, testConfig())
	temp := d.Temp.(*countingTemp)
	a, b := newFakeCell("a"), newFakeCell("b")
	admit(t, d, "a", a, Wallet{Balance: 1e9, Endowment: 1e9}, &Bid{Price: 2 * slotE, Units: 1})
	admit(t, d, "b", b, Wallet{Balance: 1e9, Endowment: 1e9}, &Bid{Price: 2 * slotE, Units: 1})
	tick, _ := run(t, d)
	reads := temp.count()
	a.burn(150 * time.Millisecond)
	b.burn(50 * time.Millisecond)
	dec := tick()
	if got := temp.count() - reads; got != 1 {
		t.Errorf("%d thermometer readings in a tick, want 1", got)
	}
	if dec.Temperature != 40 || dec.TempErr != "" {
		t.Errorf("decision temperature %v (%q), want 40", dec.Temperature, dec.TempErr)
	}
	// 1 J over a 100 ms tick is 10 W; the cells' 200 ms of CPU fill both
	// CPUs, so they share the joule 3:1.
	if dec.Power != 10 {
		t.Errorf("decision power %v W, want 10", dec.Power)
	}
	ra, rb := reportOf(dec, "a"), reportOf(dec, "b")
	if ra.Energy != 750_000 || rb.Energy != 250_000 || ra.CPUTime != 150*time.Millisecond || math.Abs(ra.Share-0.75) > 1e-9 {
		t.Errorf("attribution a %+v, b %+v; want 0.75 J and 0.25 J", ra, rb)
	}
}

func TestDriverReleasesFrozenCells(t *testing.T) {
	d := newDriver(t, testConfig())
	sci := newFakeCell("scientist")
	// A bid under the reserve: the scientist waits, frozen.
	admit(t, d, "scientist", sci, Wallet{Balance: 1e6, Endowment: 1e6}, &Bid{Price: slotE / 2, Units: 1})
	tick, stop := run(t, d)
	tick()
	if f, _, _ := sci.state(); !f {
		t.Fatal("the underbidding scientist runs")
	}
	stop()
	if f, _, _ := sci.state(); f {
		t.Error("Run returned with the cell frozen")
	}
}

func TestDriverCFS(t *testing.T) {
	cfg := testConfig()
	cfg.Policy = PolicyCFS
	d := newDriver(t, cfg)
	a := newFakeCell("a")
	admit(t, d, "a", a, Wallet{Balance: 1, Endowment: 1}, nil)
	tick, _ := run(t, d)
	for range 3 {
		dec := tick()
		if len(dec.Postings) != 0 || reportOf(dec, "a").State != life.Running {
			t.Fatalf("cfs charged or stopped a cell: %+v", dec)
		}
	}
	if f, killed, limit := a.state(); f || killed || limit != 0 {
		t.Errorf("cfs acted on the cell: frozen %v killed %v limit %v", f, killed, limit)
	}
	if _, w, _ := d.Cell("a"); w.Balance != 1 {
		t.Errorf("balance %d under cfs, want 1", w.Balance)
	}
}

// recordingAuction remembers who was told about each auction.
type recordingAuction struct {
	mu   sync.Mutex
	told map[uint64][]string
	bids map[string]Bid
}

func (r *recordingAuction) Open(tick uint64, quotes map[string]Quote) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.told == nil {
		r.told = map[uint64][]string{}
	}
	for name := range quotes {
		r.told[tick] = append(r.told[tick], name)
	}
}

func (r *recordingAuction) Close(uint64) map[string]Bid { return r.bids }

func (r *recordingAuction) toldAt(tick uint64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.told[tick]
}

// TestFrozenCellsHearNothing: a frozen agent cannot read, so the driver
// sends it no tick messages (they would fill its socket and get it cut
// off); its standing bid speaks for it.
func TestFrozenCellsHearNothing(t *testing.T) {
	d := newDriver(t, testConfig())
	sci, min := newFakeCell("scientist"), newFakeCell("miner")
	auc := &recordingAuction{bids: map[string]Bid{"scientist": {Price: 2 * slotE, Units: 2}, "miner": {Price: 6 * slotE, Units: 2}}}
	d.Auction = auc
	admit(t, d, "scientist", sci, Wallet{Balance: 1e9, Endowment: 1e9}, nil)
	admit(t, d, "miner", min, Wallet{Balance: 1e9, Endowment: 1e9}, nil)
	tick, _ := run(t, d)
	// Both are frozen from admission: the first auction is announced to
	// nobody; the standing bids speak for them.
	if told := auc.toldAt(1); len(told) != 0 {
		t.Errorf("auction 1 announced to %v, frozen cells", told)
	}
	dec := tick()
	if f, _, _ := sci.state(); !f {
		t.Fatal("the outbid scientist runs")
	}
	if told := auc.toldAt(dec.Tick + 1); len(told) != 1 || told[0] != "miner" {
		t.Errorf("auction %d announced to %v, want the miner alone", dec.Tick+1, told)
	}
}

// TestAdmittedFrozenUntilItWins: a cell is frozen at admission; one that
// never bids gets a startup slot at the reserve for its grace (and pays for
// what it uses), then stays frozen.
func TestAdmittedFrozenUntilItWins(t *testing.T) {
	cfg := testConfig()
	d := newDriver(t, cfg)
	d.Grace = 300 * time.Millisecond
	quiet := newFakeCell("quiet")
	admit(t, d, "quiet", quiet, Wallet{Balance: 1e6, Endowment: 1e6}, nil)
	if f, _, _ := quiet.state(); !f {
		t.Fatal("a cell admitted is not frozen")
	}
	tick, _ := run(t, d)
	dec := tick()
	if a := action(dec, "quiet"); a.Kind != ActRun || a.Cores != 1 {
		t.Errorf("in its grace the cell gets %+v, want a startup slot", a)
	}
	if f, _, _ := quiet.state(); f {
		t.Error("the cell is frozen in its startup slot")
	}
	quiet.burn(100 * time.Millisecond)
	dec = tick()
	if r := reportOf(dec, "quiet"); r.Payment != slotE {
		t.Errorf("the startup slot used in full cost %d, want the reserve %d", r.Payment, slotE)
	}
	tick()
	dec = tick() // the grace is over
	if a := action(dec, "quiet"); a.Kind != ActPause {
		t.Errorf("after its grace a cell that never bid gets %+v, want pause", a)
	}
	for range 5 {
		tick()
		if f, _, _ := quiet.state(); !f {
			t.Fatal("a cell that never bid runs after its grace")
		}
	}
}

// TestIdlePolicyBidSitsOut: a budgeted cell (a policy bid) that leaves its
// slot idle stops bidding, and probes again every probeEvery ticks.
func TestIdlePolicyBidSitsOut(t *testing.T) {
	d := newDriver(t, testConfig())
	idle := newFakeCell("idle")
	admit(t, d, "idle", idle, Wallet{Balance: 1e9, Endowment: 1e9}, &Bid{Price: 2 * slotE, Units: 1})
	tick, _ := run(t, d)
	if r := reportOf(tick(), "idle"); r.Won != 1 {
		t.Fatalf("the budgeted cell did not win: %+v", r)
	}
	tick() // its slot went unused: it is idle
	sat := 0
	for range probeEvery {
		if reportOf(tick(), "idle").BidUnits == 0 {
			sat++
		}
	}
	if sat != probeEvery {
		t.Errorf("the idle cell sat out %d of %d ticks", sat, probeEvery)
	}
	if r := reportOf(tick(), "idle"); r.BidUnits != 1 {
		t.Errorf("after sitting out, the cell does not probe: %+v", r)
	}
}

// TestFrozenCellsReadSeldom: a cell the driver has held frozen since the
// last tick is not read every tick (its CPU time cannot move), only its
// memory now and then; a signal cell, which any process of its user could
// continue, is read every tick.
func TestFrozenCellsReadSeldom(t *testing.T) {
	d := newDriver(t, testConfig())
	d.Grace = time.Nanosecond // no startup slot: both stay frozen
	cg := newFakeCell("cgroup")
	sig := newFakeCell("signal")
	sig.freezer = cell.FreezerSignal
	admit(t, d, "cgroup", cg, Wallet{Balance: 1e6, Endowment: 1e6}, nil)
	admit(t, d, "signal", sig, Wallet{Balance: 1e6, Endowment: 1e6}, nil)
	tick, _ := run(t, d)
	const ticks = 40
	for range ticks {
		tick()
	}
	cg.mu.Lock()
	cgReads := cg.reads
	cg.mu.Unlock()
	sig.mu.Lock()
	sigReads := sig.reads
	sig.mu.Unlock()
	if cgReads > 2+ticks/memEvery || cgReads == 0 {
		t.Errorf("a cell frozen throughout was read %d times in %d ticks, want about %d", cgReads, ticks, ticks/memEvery)
	}
	if sigReads < ticks {
		t.Errorf("a signal cell was read %d times in %d ticks, want every tick", sigReads, ticks)
	}
}

// TestLiveChangesReplay: an operator's changes while the driver runs — a
// setpoint, a power budget, a tap, a standing bid — take effect at the next
// tick and are journaled, so the run still replays exactly.
func TestLiveChangesReplay(t *testing.T) {
	d := newDriver(t, testConfig())
	var journal bytes.Buffer
	jw := NewJournalWriter(&journal)
	d.Journal = jw.Write
	sci := newFakeCell("scientist")
	admit(t, d, "scientist", sci, Wallet{Balance: 1e6, Endowment: 1e6}, &Bid{Price: 2 * slotE, Units: 1})
	tick, stop := run(t, d)
	for range 3 {
		sci.burn(100 * time.Millisecond)
		tick()
	}
	low := units.Celsius(30)
	if err := d.SetHost(HostSettings{SetpointCelsius: &low}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetTerms("scientist", 1000, 5e6, &Bid{Price: 3 * slotE, Units: 2}, nil); err != nil {
		t.Fatal(err)
	}
	var dec Decision
	for range 5 {
		sci.burn(100 * time.Millisecond)
		dec = tick()
	}
	if r := reportOf(dec, "scientist"); r.BidPrice != 3*slotE || r.BidUnits != 2 || r.Tap == 0 {
		t.Errorf("after set: bid %d×%d, tap %d; want 2×%d and a tap", r.BidUnits, r.BidPrice, r.Tap, 3*slotE)
	}
	if sp, _ := d.Core.Host(); sp != 30 {
		t.Errorf("setpoint %v", sp)
	}
	if err := d.SetTerms("nobody", 0, 0, nil, nil); !errors.Is(err, ErrUnknown) {
		t.Errorf("set on nobody: %v", err)
	}
	stop()
	jw.Close()
	if n, err := Replay(bytes.NewReader(journal.Bytes())); err != nil || n != 8 {
		t.Errorf("replay: %d ticks, %v", n, err)
	}
}
