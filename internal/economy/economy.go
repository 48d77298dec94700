// Package economy is Maxwell's economy, assembled once: telemetry, the cell
// backends, the ledger, the Landauer meter, the agent hub, the engine's core
// and driver. It offers the operations an operator has — spawn, fund, kill,
// pause, resume, state and a stream of events — and nothing else acts on
// it. `maxwell daemon` serves an Economy on its sockets (package daemon);
// `maxwell demo`, `baseline` and `compare` run the same Economy in their own
// process and drive it through the same operations (package experiment),
// so the figures they report come from the code path users deploy.
//
// One tick (engine.Driver) reads the thermometer and the host's energy
// counter once, measures every cell and attributes the tick's energy to
// them; the economy keeps what the decision carries (prices, wallets, each
// cell's energy, CPU time and freed bytes, the history) and serves it. No
// operation reads a sensor: on a host without sensors a second reading
// would advance the thermal twin, so what an observer looks at would change
// the physics it reports.
package economy

import (
	"runtime"

	"github.com/maxwellhq/maxwell/internal/meter"
	"golang.org/x/sys/unix"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/celllog"
	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/hub"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/model"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/telemetry"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Options configure an Economy.
type Options struct {
	Config config.Config
	// Roots are where sysfs, procfs and /dev are (sensors.HostRoots on a
	// real host; fixture trees in tests).
	Roots sensors.Roots
	// CgroupRoot is where the cgroup hierarchies are mounted.
	CgroupRoot string
	// CellParent is the cgroup that holds the cells; "" means the cell
	// package's default. Open sweeps it: two economies must never share
	// one.
	CellParent string
	// AgentSocket is where agents connect (the agent protocol).
	AgentSocket string
	// SocketGID, if positive, is the group the agent socket belongs to.
	// The socket's mode is 0666 either way: cells run as the users who
	// asked for them, and the hub, not the file, tells a cell's process
	// from a stranger.
	SocketGID int
	// LedgerPath is the ledger database; its directory is created.
	LedgerPath string
	// StateDir holds what the cell backends keep on disk (OCI bundles and
	// runtime state); "" means the agent socket's directory.
	StateDir string
	// LogDir, if set, receives each cell's standard output and error, in
	// NAME.log, rotated at Config.CellLogs' size (package celllog); ""
	// discards them.
	LogDir string
	// CPUs are the CPUs whose time the economy sells; cells are pinned to
	// them unless a spawn says otherwise.
	CPUs []int
	// Policy decides who runs: engine.PolicyMaxwell (the default),
	// engine.PolicyCFS (nothing is governed: the baseline), or one of the
	// peer schedulers (engine.Policies).
	Policy engine.Policy
	// Parasites are the cells engine.PolicyOracle never runs.
	Parasites []string
	// ProfilePath is the host profile `maxwell calibrate` writes; where
	// it exists it tunes the price controller (ApplyProfile). "" uses
	// none.
	ProfilePath string
	// JournalPath, if set, is where the engine journal is written, for
	// exact replay (engine.Replay).
	JournalPath string
	// Clock is the economy's time; nil means the real clock.
	Clock clock.Clock
	Log   *slog.Logger
	// OnStep, if set, receives how long each tick's work took
	// (engine.Driver.OnStep).
	OnStep func(engine.Step)
}

// Economy is a running economy. Its methods are safe for concurrent use.
type Economy struct {
	opts     Options
	log      *slog.Logger
	clock    clock.Clock
	started  time.Time
	tel      *telemetry.Telemetry
	mgr      *cell.Manager
	ledger   *ledger.Ledger
	lg       Ledger
	hub      *hub.Hub
	meter    *Meter
	driver   *engine.Driver
	econf    engine.Config
	journal  *engine.JournalWriter
	stateDir string

	mu       sync.Mutex
	cells    map[string]*managed
	order    []string
	ocis     map[string]*oci.Manager // by root file system
	vms      vmCells                 // microVM managers (vm.go)
	adopted  adoptions               // adopted cgroups (adopt.go)
	acct     accounts
	events   []event.Event
	watchers map[chan event.Event]struct{}
	fundSeq  uint64
	spawning map[string]bool // names being spawned
	income   incomes
	profile  string // which host profile tunes the controller, in words
	live     live
	// bg bounds the economy's background work (recounts of claimed
	// work); Close cancels it.
	bg       context.Context
	bgCancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error

	// ledgerErrors counts the ticks whose postings the ledger refused;
	// agentRefused and agentProtocolErrors the hub's errors, each one.
	ledgerErrors, agentRefused, agentProtocolErrors atomic.Uint64
}

// countedLedger is the driver's ledger: e's, counting the postings it
// refuses.
type countedLedger struct {
	Ledger
	failed *atomic.Uint64
}

// Post implements engine.Ledger.
func (l countedLedger) Post(ctx context.Context, postings []engine.Posting) error {
	err := l.Ledger.Post(ctx, postings)
	if err != nil {
		l.failed.Add(1)
	}
	return err
}

// managed is what the economy keeps about one cell.
type managed struct {
	c    cell.Cell
	argv []string
	// user is who the program runs as; owner the UID of who asked for
	// the cell.
	user     string
	owner    int
	standing bool
	logFile  *celllog.Writer
	// cgroup is the cell's cgroup as /proc/PID/cgroup lists it ("": in
	// none, or adopted: see adopt.go); containerID the OCI runtime's ID.
	cgroup, containerID string
	acct                cellAccount
}

// Sources says where the economy's figures come from.
type Sources struct {
	Energy, Temperature sensors.Source
	// IdlePower is the host's idle power where the power model gives it,
	// else 0.
	IdlePower units.Power
	// Meter is the Landauer meter's source: eBPF, or the kernel's memory
	// accounting (approximate).
	Meter meter.Source
}

// Open assembles an economy: it sweeps the cells a dead predecessor left
// under the cell parent, settles their wallets in the ledger, continues the
// ledger's tick numbering and listens for agents. Run it with Run; if Run
// is never called, Close releases what Open made.
func Open(ctx context.Context, opts Options) (*Economy, error) {
	switch {
	case len(opts.CPUs) == 0:
		return nil, errors.New("economy: no CPUs to sell")
	case opts.AgentSocket == "":
		return nil, errors.New("economy: no agent socket")
	case opts.LedgerPath == "":
		return nil, errors.New("economy: no ledger")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.System()
	}
	if opts.Policy == "" {
		opts.Policy = engine.PolicyMaxwell
	}
	e := &Economy{opts: opts, log: opts.Log, clock: opts.Clock, started: opts.Clock.Now(),
		cells: map[string]*managed{}, watchers: map[chan event.Event]struct{}{}, spawning: map[string]bool{},
		stateDir: opts.StateDir}
	e.bg, e.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	e.live.cfg = opts.Config
	if e.stateDir == "" {
		e.stateDir = filepath.Dir(opts.AgentSocket)
	}
	if err := e.open(ctx); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	return e, nil
}

func (e *Economy) open(ctx context.Context) error {
	o := e.opts
	var err error
	if e.econf, err = EngineConfig(o.Config, len(o.CPUs), o.Policy); err != nil {
		return err
	}
	e.econf.Parasites = o.Parasites
	if e.profile, err = loadProfile(&e.econf, o.ProfilePath, o.Config.Engine.Tick); err != nil {
		return err
	}
	if e.tel, err = telemetry.Open(o.Roots, o.Config, e.clock); err != nil {
		return err
	}
	util, err := model.NewCPUSampler(o.Roots.Proc, o.CPUs...)
	if err != nil {
		return err
	}
	copts := cell.DefaultOptions()
	copts.CgroupRoot, copts.ProcRoot, copts.Logger = o.CgroupRoot, o.Roots.Proc, e.log
	if o.CellParent != "" {
		copts.Parent = o.CellParent
	}
	if e.mgr, err = cell.NewManager(copts); err != nil {
		return err
	}
	if swept, err := e.mgr.Sweep(ctx); err != nil {
		e.log.Warn("sweep leftover cells", "err", err)
	} else if len(swept) > 0 {
		e.log.Info("swept cells a previous economy left", "cells", swept)
	}
	if err := os.MkdirAll(filepath.Dir(o.LedgerPath), 0o750); err != nil {
		return fmt.Errorf("economy: ledger directory: %w", err)
	}
	lc := o.Config.Ledger
	if e.ledger, err = ledger.Open(ctx, o.LedgerPath, ledger.Options{Logger: e.log, Tick: o.Config.Engine.Tick, Keep: lc.Keep, Bucket: lc.Bucket}); err != nil {
		return err
	}
	e.lg = Ledger{L: e.ledger}
	lastTick, err := e.settleLeftovers(ctx)
	if err != nil {
		return err
	}
	core, err := engine.NewCore(e.econf)
	if err != nil {
		return err
	}
	if err := core.StartAt(lastTick); err != nil {
		return err
	}
	if o.LogDir != "" {
		if err := os.MkdirAll(o.LogDir, 0o750); err != nil {
			return fmt.Errorf("economy: cell log directory: %w", err)
		}
	}
	if o.JournalPath != "" {
		if e.journal, err = engine.CreateJournal(o.JournalPath); err != nil {
			return err
		}
	}
	e.meter = OpenMeter(o.Roots.Sys, o.CgroupRoot, e.log)
	if err := os.MkdirAll(filepath.Dir(o.AgentSocket), 0o755); err != nil {
		return fmt.Errorf("economy: agent socket directory: %w", err)
	}
	if e.hub, err = hub.Listen(o.AgentSocket, e, hub.Options{
		Clock: e.clock,
		// Cells run as whichever users asked for them: anyone may
		// connect, and the hub refuses at once a peer in no cell.
		SocketMode: 0o666,
		OnEvent:    e.agentEvent,
		// A cell the economy has frozen cannot talk: it must not lose its
		// connection for its silence. Hung peers still cannot block the
		// host: every write and the handshake keep their deadlines.
		IdleTimeout: 24 * time.Hour,
		Auctions:    o.Policy == engine.PolicyMaxwell,
	}); err != nil {
		return err
	}
	if o.SocketGID > 0 {
		if err := os.Chown(o.AgentSocket, -1, o.SocketGID); err != nil {
			return fmt.Errorf("economy: agent socket group: %w", err)
		}
	}
	e.driver = &engine.Driver{
		Core: core, Temp: e.tel.Temp, Energy: e.tel.Energy, Util: util, Meter: e.meter, Ledger: countedLedger{e.lg, &e.ledgerErrors},
		Clock: e.clock, Log: e.log, Note: e.note, OnDecision: e.onDecision, Grace: o.Config.Engine.StartupGrace,
		OnStep: o.OnStep, Income: e,
	}
	if o.Policy == engine.PolicyMaxwell {
		e.driver.Auction = Auctioneer{H: e.hub, Log: e.log}
	}
	if e.journal != nil {
		e.driver.Journal = e.journal.Write
	}
	en, te := e.tel.Sources()
	e.note(event.Event{Kind: event.Started, Detail: fmt.Sprintf("policy %s on CPUs %s; energy %s, temperature %s; Landauer meter %s; %s",
		o.Policy, cpuset.Format(o.CPUs), en, te, e.meter.Source(), e.profile)})
	return nil
}

// onDecision keeps what a decision carries, then carries out the
// insolvency policies of adopted cells (adopt.go).
func (e *Economy) onDecision(dec engine.Decision) {
	e.decided(dec)
	e.afterDecision(dec)
}

// settleLeftovers closes the wallets of cells a previous economy left (they
// were swept: none of them runs) and returns the last tick in the ledger.
func (e *Economy) settleLeftovers(ctx context.Context) (uint64, error) {
	accts, err := e.ledger.Accounts(ctx)
	if err != nil {
		return 0, err
	}
	for _, a := range accts {
		if a.Kind != "wallet" || a.State == "closed" {
			continue
		}
		if _, err := e.ledger.CloseWallet(ctx, "settle/cell:"+a.Name, 0, a.Name); err != nil {
			return 0, fmt.Errorf("economy: settle the wallet of %s: %w", a.Name, err)
		}
		e.note(event.Event{Kind: event.Settled, Cell: a.Name, Detail: "its cell did not survive the previous economy; wallet closed"})
	}
	return e.ledger.LastTick(ctx)
}

// Run runs the economy until ctx ends: the engine ticks and the hub serves
// agents. Then it kills every cell, settles its wallet and closes
// everything Open made. Whatever happens, no cell is left frozen.
func (e *Economy) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	run("agent hub", e.hub.Serve)
	run("engine", e.runDriver)
	run("ledger maintenance", e.maintainLedger)
	<-ctx.Done()
	wg.Wait()
	e.shutdown()
	close(errc)
	errs := []error{}
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, e.Close())...)
}

// maintainLedger folds old per-tick postings into rollups and checkpoints
// the write-ahead log every Config.Ledger.MaintainEvery, as long as ctx
// lasts: one step at a time, so a tick waits at most one step (a few
// milliseconds) for the ledger, and as many steps as are due. A failure
// is logged when it starts and when it ends, not at every attempt.
func (e *Economy) maintainLedger(ctx context.Context) error {
	t := e.clock.NewTicker(e.opts.Config.Ledger.MaintainEvery)
	defer t.Stop()
	var failing error
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
		}
		e.mu.Lock()
		tick := e.acct.last.Tick
		e.mu.Unlock()
		if tick == 0 {
			continue
		}
		for {
			m, err := e.ledger.Maintain(ctx, tick)
			switch {
			case err != nil && failing == nil:
				e.log.Warn("ledger maintenance failed; retrying every "+e.opts.Config.Ledger.MaintainEvery.String(), "err", err)
			case err == nil && failing != nil:
				e.log.Info("ledger maintenance recovered")
			}
			failing = err
			if err != nil || !m.Rollup.Due || ctx.Err() != nil {
				break
			}
		}
	}
}

// runDriver runs the driver, on a SCHED_FIFO thread of its own where
// Config.Engine.RealtimePriority asks for one (1–99; needs root or
// CAP_SYS_NICE), so that cells saturating every CPU delay it less. If the
// kernel refuses, the economy says so and runs without it.
func (e *Economy) runDriver(ctx context.Context) error {
	if p := e.opts.Config.Engine.RealtimePriority; p > 0 {
		// The goroutine keeps this thread; when it ends, the thread ends
		// with it (no UnlockOSThread), so no other goroutine inherits
		// the policy.
		runtime.LockOSThread()
		if err := setFIFO(p); err != nil {
			e.log.Warn("the tick runs without real-time priority", "priority", p, "err", err)
		} else {
			e.log.Info("the tick runs under SCHED_FIFO", "priority", p)
		}
	}
	return e.driver.Run(ctx)
}

// setFIFO puts the calling thread under SCHED_FIFO at priority p.
func setFIFO(p int) error {
	if p < 1 || p > 99 {
		return fmt.Errorf("SCHED_FIFO priority %d: want 1..99", p)
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(p)}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("sched_setattr SCHED_FIFO %d: %w", p, err)
	}
	return nil
}

// shutdown kills every cell and settles its wallet.
func (e *Economy) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.mu.Lock()
	cells := make([]*managed, 0, len(e.order))
	for _, name := range e.order {
		cells = append(cells, e.cells[name])
	}
	names := append([]string(nil), e.order...)
	e.mu.Unlock()
	for i, m := range cells {
		if err := m.c.Close(); err != nil {
			e.log.Warn("close cell", "cell", names[i], "err", err)
		}
		if _, err := e.ledger.CloseWallet(ctx, "stop/cell:"+names[i], 0, names[i]); err != nil && !errors.Is(err, ledger.ErrInvalid) && !errors.Is(err, ledger.ErrClosed) {
			e.log.Warn("settle wallet", "cell", names[i], "err", err)
		}
	}
}

// Close releases what Open made. Run calls it; call it yourself only when
// Run never ran.
func (e *Economy) Close() error {
	e.closeOnce.Do(func() {
		var errs []error
		e.bgCancel()
		e.waitIncomeChecks()
		e.mu.Lock()
		ocis := e.ocis
		e.ocis = nil
		cells := e.cells
		e.mu.Unlock()
		for _, m := range ocis {
			errs = append(errs, m.Close())
		}
		errs = append(errs, e.vms.close())
		for _, m := range cells {
			if m.logFile != nil {
				errs = append(errs, m.logFile.Close())
			}
		}
		if e.hub != nil {
			errs = append(errs, e.hub.Close())
		}
		if e.meter != nil {
			errs = append(errs, e.meter.Close())
		}
		if e.journal != nil {
			errs = append(errs, e.journal.Close())
		}
		if e.ledger != nil {
			errs = append(errs, e.ledger.Close())
		}
		if e.mgr != nil {
			errs = append(errs, e.mgr.Close())
		}
		e.mu.Lock()
		for w := range e.watchers {
			close(w)
			delete(e.watchers, w)
		}
		e.mu.Unlock()
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// Sources says where the economy's energy and temperature come from.
func (e *Economy) Sources() Sources {
	en, te := e.tel.Sources()
	return Sources{Energy: en, Temperature: te, IdlePower: e.tel.IdlePower, Meter: e.meter.Source()}
}

// AgentSocket returns the agent socket's path.
func (e *Economy) AgentSocket() string { return e.opts.AgentSocket }

// CellForPID implements hub.Resolver: the peer's cell, from its PID.
func (e *Economy) CellForPID(pid int) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, name := range e.order {
		if e.cells[name].c.Contains(pid) {
			return name, true
		}
	}
	return "", false
}

// agentEvent turns a hub event into the economy's.
func (e *Economy) agentEvent(h hub.Event) {
	if h.Code == proto.CodeOutOfTurn {
		return // a bid that raced a tick: harmless, and many
	}
	kinds := map[hub.EventKind]event.Kind{
		hub.EventConnected: event.AgentConnected, hub.EventDisconnected: event.AgentDisconnected,
		hub.EventRefused: event.AgentRefused, hub.EventProtocolError: event.AgentProtocolError,
	}
	k, ok := kinds[h.Kind]
	if !ok {
		return
	}
	switch k {
	case event.AgentRefused:
		e.agentRefused.Add(uint64(max(h.Count, 1)))
	case event.AgentProtocolError:
		e.agentProtocolErrors.Add(uint64(max(h.Count, 1)))
	}
	detail := h.Detail
	if h.Count > 1 {
		// A summary of a flood: the hub held the others back.
		detail = fmt.Sprintf("%s (%d times in %v)", detail, h.Count, hub.EventWindow)
	}
	e.note(event.Event{Kind: k, Cell: h.Cell, Detail: detail})
}
