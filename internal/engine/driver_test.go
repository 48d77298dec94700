package engine

import (
	"github.com/maxwellhq/maxwell/internal/clock"

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
	frozen    bool
	killed    bool
	limit     float64
	done      chan struct{}
}

func newFakeCell(name string) *fakeCell { return &fakeCell{name: name, done: make(chan struct{})} }

func (f *fakeCell) Name() string { return f.name }
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
func (f *fakeCell) Stats() (cell.Stats, error) { return cell.Stats{MemoryBytes: 1 << 20}, nil }
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

type fixedTemp units.Celsius

func (t fixedTemp) Source() sensors.Source                  { return sensors.Source{Name: "fixed"} }
func (t fixedTemp) ReadTemperature() (units.Celsius, error) { return units.Celsius(t), nil }

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

type notes struct {
	mu   sync.Mutex
	seen map[string]int
}

func (n *notes) note(kind, cell, detail string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen == nil {
		n.seen = map[string]int{}
	}
	n.seen[kind+"/"+cell]++
}

func (n *notes) count(k string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seen[k]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDriverGovernsAndReleases(t *testing.T) {
	cfg := testConfig()
	cfg.Tick = 10 * time.Millisecond
	core := newCore(t, cfg, map[string]Wallet{
		"scientist": {Balance: 1e6, Endowment: 1e6},
		"miner":     {Balance: 30000, Endowment: 1e6},
	})
	sci, min := newFakeCell("scientist"), newFakeCell("miner")
	ledger := &flakyLedger{}
	var n notes
	var journal bytes.Buffer
	jw := NewJournalWriter(&journal)
	d := &Driver{Core: core, Temp: fixedTemp(40), Ledger: ledger, Clock: clock.System(), Journal: jw.Write,
		Standing: map[string]Bid{"scientist": {Price: 2 * slotE, Units: 2}, "miner": {Price: 6 * slotE, Units: 2}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- d.Govern(ctx, map[string]cell.Cell{"scientist": sci, "miner": min}, n.note)
	}()

	// The greedy miner wins both CPUs and the scientist is frozen, until
	// the miner's 30000 credits run out (8000 a tick) and it dies.
	waitFor(t, "the miner's apoptosis", func() bool { return n.count("apoptosis/miner") == 1 })
	if _, killed, _ := min.state(); !killed {
		t.Error("apoptosis without a kill")
	}
	waitFor(t, "the scientist running on 2 CPUs", func() bool {
		frozen, _, limit := sci.state()
		return !frozen && limit == 2
	})

	// The ledger fails: charging stops, and nobody is frozen.
	ledger.mu.Lock()
	ledger.down = true
	ledger.mu.Unlock()
	waitFor(t, "the ledger_unavailable event", func() bool { return n.count("ledger_unavailable/") == 1 })
	_, w, _ := core.Cell("scientist")
	time.Sleep(50 * time.Millisecond)
	if _, w2, _ := core.Cell("scientist"); w2.Balance != w.Balance {
		t.Errorf("charged while the ledger was down: %d → %d", w.Balance, w2.Balance)
	}
	if frozen, _, _ := sci.state(); frozen {
		t.Error("a cell is frozen while the ledger is down")
	}
	ledger.mu.Lock()
	ledger.down = false
	ledger.mu.Unlock()
	waitFor(t, "the ledger_recovered event", func() bool { return n.count("ledger_recovered/") == 1 })

	// Stop: every cell is left thawed and unlimited.
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Govern = %v", err)
	}
	if frozen, _, limit := sci.state(); frozen || limit != 0 {
		t.Errorf("after Govern: scientist frozen=%v limit=%v", frozen, limit)
	}
	m, ws := d.Snapshot()
	if m == nil || len(ws) != 2 || ws[1].State != string(Dead) {
		t.Errorf("snapshot %+v %+v", m, ws)
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
	if ticks < 5 {
		t.Errorf("replayed only %d ticks", ticks)
	}
	// A tampered journal does not.
	tampered := bytes.Replace(journal.Bytes(), []byte(`"temperature_celsius":40`), []byte(`"temperature_celsius":70`), 1)
	if _, err := Replay(bytes.NewReader(tampered)); !errors.Is(err, ErrDiverged) {
		t.Errorf("replay of a tampered journal: %v, want ErrDiverged", err)
	}
}

func TestDriverReleasesFrozenCells(t *testing.T) {
	cfg := testConfig()
	cfg.Tick = 10 * time.Millisecond
	core := newCore(t, cfg, map[string]Wallet{"scientist": {Balance: 1e6, Endowment: 1e6}})
	sci := newFakeCell("scientist")
	// A bid under the reserve: the scientist waits, frozen.
	d := &Driver{Core: core, Temp: fixedTemp(40), Ledger: &flakyLedger{}, Clock: clock.System(),
		Standing: map[string]Bid{"scientist": {Price: slotE / 2, Units: 1}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Govern(ctx, map[string]cell.Cell{"scientist": sci}, (&notes{}).note) }()
	waitFor(t, "the scientist frozen", func() bool { f, _, _ := sci.state(); return f })
	cancel()
	<-done
	if f, _, _ := sci.state(); f {
		t.Error("Govern returned with the cell frozen")
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

func (r *recordingAuction) lastTold() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last uint64
	for t := range r.told {
		last = max(last, t)
	}
	return r.told[last]
}

// TestFrozenCellsHearNothing: a frozen agent cannot read, so the driver
// sends it no tick messages (they would fill its socket and get it cut
// off); its standing bid speaks for it.
func TestFrozenCellsHearNothing(t *testing.T) {
	cfg := testConfig()
	cfg.Tick = 10 * time.Millisecond
	core := newCore(t, cfg, map[string]Wallet{
		"scientist": {Balance: 1e9, Endowment: 1e9},
		"miner":     {Balance: 1e9, Endowment: 1e9},
	})
	sci, min := newFakeCell("scientist"), newFakeCell("miner")
	auc := &recordingAuction{bids: map[string]Bid{"scientist": {Price: 2 * slotE, Units: 2}, "miner": {Price: 6 * slotE, Units: 2}}}
	d := &Driver{Core: core, Temp: fixedTemp(40), Ledger: &flakyLedger{}, Clock: clock.System(), Auction: auc}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Govern(ctx, map[string]cell.Cell{"scientist": sci, "miner": min}, (&notes{}).note) }()
	waitFor(t, "the outbid scientist frozen", func() bool { f, _, _ := sci.state(); return f })
	waitFor(t, "an auction announced to the miner alone", func() bool {
		told := auc.lastTold()
		return len(told) == 1 && told[0] == "miner"
	})
	cancel()
	<-done
}
