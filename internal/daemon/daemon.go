// Package daemon is `maxwell daemon`: Maxwell's economy running for as long
// as the host lives. It puts any program under the economy (Spawn), serves
// the agent protocol and the control API on Unix sockets, keeps every credit
// in the ledger, and exports its state to Prometheus.
//
// Lifecycle. A daemon takes a lock beside its control socket, so a second
// one refuses to start. At start it sweeps the cells a crashed predecessor
// left (thawed, killed, cgroups removed — the cell guard has usually done
// so already) and settles their wallets in the ledger, then continues the
// ledger's tick numbering. On stop it kills its cells and settles their
// wallets; a crash leaves that to the cell guard and the next start. It
// never leaves a cell frozen.
package daemon

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/experiment"
	"github.com/maxwellhq/maxwell/internal/hub"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/metrics"
	"github.com/maxwellhq/maxwell/internal/model"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/telemetry"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Options configure a daemon.
type Options struct {
	Config config.Config
	Roots  sensors.Roots
	// CgroupRoot is where the cgroup hierarchies are mounted.
	CgroupRoot string
	// ControlSocket serves the control API; AgentSocket the agent protocol.
	ControlSocket, AgentSocket string
	// Group, if set, may use both sockets besides root.
	Group string
	// LedgerPath is the ledger database.
	LedgerPath string
	// MetricsAddr, if set, serves Prometheus metrics over TCP.
	MetricsAddr string
	// CPUs are the CPUs whose time the daemon sells; cells are pinned to
	// them.
	CPUs []int
	// CellParent is the cgroup that holds the daemon's cells; "" means the
	// cell package's default, "maxwell". A daemon sweeps it at start.
	CellParent string
	Log        *slog.Logger
	// Ready, if set, is called once every socket is serving.
	Ready func()
}

// Daemon is a running economy. It implements api.Backend.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	tel     *telemetry.Telemetry
	mgr     *cell.Manager
	ledger  *ledger.Ledger
	lg      economy.Ledger
	hub     *hub.Hub
	driver  *engine.Driver
	econf   engine.Config

	mu        sync.Mutex
	cells     map[string]*managed
	order     []string
	events    []api.Event
	history   []api.PricePoint
	apoptoses uint64
	power     units.Power
	lastE     units.Energy
	lastAt    time.Time
	fundSeq   uint64
	ocis      map[string]*oci.Manager // by root file system
}

// managed is what the daemon keeps about one cell.
type managed struct {
	c        cell.Cell
	argv     []string
	wallet   engine.Wallet
	standing bool
	energy   units.Energy
	cpu      time.Duration
	freed    uint64
	share    float64
}

const (
	historyLen = 600 // a minute of ticks at 100 ms
	eventsLen  = 200
)

// Run runs a daemon until ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if len(opts.CPUs) == 0 {
		return errors.New("daemon: no CPUs to sell")
	}
	lock, err := api.Lock(opts.ControlSocket)
	if err != nil {
		return err
	}
	defer lock.Release()
	d := &Daemon{opts: opts, log: opts.Log, started: time.Now(), cells: map[string]*managed{}}
	return d.run(ctx)
}

func (d *Daemon) run(ctx context.Context) error {
	o := d.opts
	var err error
	if d.tel, err = telemetry.Open(o.Roots, o.Config, clock.System()); err != nil {
		return err
	}
	copts := cell.DefaultOptions()
	copts.CgroupRoot, copts.ProcRoot, copts.Logger = o.CgroupRoot, o.Roots.Proc, d.log
	if o.CellParent != "" {
		copts.Parent = o.CellParent
	}
	if d.mgr, err = cell.NewManager(copts); err != nil {
		return err
	}
	defer d.mgr.Close()
	if swept, err := d.mgr.Sweep(ctx); err != nil {
		d.log.Warn("sweep leftover cells", "err", err)
	} else if len(swept) > 0 {
		d.log.Info("swept cells a previous daemon left", "cells", swept)
	}
	if err := os.MkdirAll(filepath.Dir(o.LedgerPath), 0o750); err != nil {
		return fmt.Errorf("daemon: ledger directory: %w", err)
	}
	if d.ledger, err = ledger.Open(ctx, o.LedgerPath, ledger.Options{Logger: d.log}); err != nil {
		return err
	}
	defer d.ledger.Close()
	d.lg = economy.Ledger{L: d.ledger}
	lastTick, err := d.settleLeftovers(ctx)
	if err != nil {
		return err
	}

	if d.econf, err = economy.EngineConfig(o.Config, len(o.CPUs)); err != nil {
		return err
	}
	core, err := engine.NewCore(d.econf)
	if err != nil {
		return err
	}
	if err := core.StartAt(lastTick); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.AgentSocket), 0o755); err != nil {
		return err
	}
	if d.hub, err = hub.Listen(o.AgentSocket, d, hub.Options{
		OnEvent: func(e hub.Event) {
			if e.Code != proto.CodeOutOfTurn { // bids that raced a tick: harmless, and many
				d.note("agent_"+e.Kind.String(), e.Cell, e.Detail)
			}
		},
		IdleTimeout: 24 * time.Hour, // frozen cells cannot talk
		Auctions:    true,
	}); err != nil {
		return err
	}
	meter := economy.OpenMeter(o.Roots.Sys, o.CgroupRoot, d.log)
	defer meter.Close()
	d.note("meter", "", meter.Source().String())
	d.driver = &engine.Driver{
		Core: core, Temp: d.tel.Temp, Meter: meter, Ledger: d.lg,
		Auction: economy.Auctioneer{H: d.hub, Log: d.log},
		Clock:   clock.System(), Log: d.log, OnDecision: d.decided,
	}
	ctl, err := api.Listen(o.ControlSocket, o.Group)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	run("agent hub", func() error { return d.hub.Serve(ctx) })
	run("control API", func() error { return api.NewServer(d, api.Options{Log: d.log}).Serve(ctx, ctl) })
	run("engine", func() error { return d.driver.Govern(ctx, nil, d.note) })
	run("accounting", func() error { return d.account(ctx) })
	if o.MetricsAddr != "" {
		ln, err := net.Listen("tcp", o.MetricsAddr)
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("metrics: %w", err)
		}
		srv := &http.Server{Handler: metrics.Handler(d.State), ReadHeaderTimeout: 10 * time.Second}
		run("metrics", func() error {
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	d.log.Info("daemon ready", "control", o.ControlSocket, "agents", o.AgentSocket, "ledger", o.LedgerPath, "cpus", o.CPUs)
	if o.Ready != nil {
		o.Ready()
	}
	<-ctx.Done()
	wg.Wait()
	d.shutdown()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// settleLeftovers closes the wallets of cells a previous daemon left (they
// were swept: none of them runs) and returns the last tick in the ledger.
func (d *Daemon) settleLeftovers(ctx context.Context) (uint64, error) {
	accts, err := d.ledger.Accounts(ctx)
	if err != nil {
		return 0, err
	}
	for _, a := range accts {
		if a.Kind != "wallet" || a.State == "closed" {
			continue
		}
		if _, err := d.ledger.CloseWallet(ctx, "settle/cell:"+a.Name, 0, a.Name); err != nil {
			return 0, fmt.Errorf("daemon: settle the wallet of %s: %w", a.Name, err)
		}
		d.note("settled", a.Name, "its cell did not survive the previous daemon; wallet closed")
	}
	return d.ledger.LastTick(ctx)
}

// shutdown kills every cell and settles its wallet.
func (d *Daemon) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d.mu.Lock()
	names := slices.Clone(d.order)
	d.mu.Unlock()
	for _, name := range names {
		d.mu.Lock()
		m := d.cells[name]
		d.mu.Unlock()
		if err := m.c.Close(); err != nil {
			d.log.Warn("close cell", "cell", name, "err", err)
		}
		if _, err := d.ledger.CloseWallet(ctx, "stop/cell:"+name, 0, name); err != nil && !errors.Is(err, ledger.ErrInvalid) {
			d.log.Debug("settle wallet", "cell", name, "err", err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.ocis {
		if err := m.Close(); err != nil {
			d.log.Warn("close OCI manager", "err", err)
		}
	}
}

// CellForPID implements hub.Resolver: the peer's cell, from its PID.
func (d *Daemon) CellForPID(pid int) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range d.order {
		if d.cells[name].c.Contains(pid) {
			return name, true
		}
	}
	return "", false
}

func (d *Daemon) note(kind, cellName, detail string) {
	d.log.Info("event", "kind", kind, "cell", cellName, "detail", detail)
	d.mu.Lock()
	defer d.mu.Unlock()
	if kind == "apoptosis" {
		d.apoptoses++
	}
	var tick uint64
	if d.driver != nil {
		tick = d.driver.Last().Tick
	}
	d.events = append(d.events, api.Event{Time: time.Now(), Tick: tick, Kind: kind, Cell: cellName, Detail: detail})
	if len(d.events) > eventsLen {
		d.events = slices.Delete(d.events, 0, len(d.events)-eventsLen)
	}
}

// decided records a decision's prices for the history.
func (d *Daemon) decided(dec engine.Decision) {
	t, _ := d.tel.Temp.ReadTemperature()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.history = append(d.history, api.PricePoint{Tick: dec.Tick, Time: time.Now(), Celsius: float64(t),
		Multiplier: dec.Multiplier, Reserve: dec.Reserve, Clearing: dec.Clearing})
	if len(d.history) > historyLen {
		d.history = slices.Delete(d.history, 0, len(d.history)-historyLen)
	}
}

// account measures power and attributes energy to the cells once a second
// (the rule of experiment.Attribute).
func (d *Daemon) account(ctx context.Context) error {
	util, err := model.NewCPUSampler(d.opts.Roots.Proc, d.opts.CPUs...)
	if err != nil {
		return err
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now := time.Now()
		e, eerr := d.tel.Energy.ReadEnergy()
		u, _ := util.Sample()
		d.mu.Lock()
		if eerr == nil && !d.lastAt.IsZero() && e >= d.lastE {
			de := e - d.lastE
			iv := experiment.Interval{Elapsed: now.Sub(d.lastAt), Energy: de, Utilisation: u, NumCPU: len(d.opts.CPUs)}
			var ms []*managed
			for _, name := range d.order {
				m := d.cells[name]
				cpu := m.cpu
				if st, err := m.c.Stats(); err == nil {
					cpu = max(st.CPUTime, m.cpu)
				}
				iv.CellCPU = append(iv.CellCPU, cpu-m.cpu)
				m.cpu = cpu
				ms = append(ms, m)
			}
			sp := experiment.Attribute(iv)
			for i, m := range ms {
				m.energy += sp.Energy[i]
				m.share = sp.Share[i]
			}
			d.power = units.AveragePower(de, iv.Elapsed)
		}
		if eerr == nil {
			d.lastE, d.lastAt = e, now
		}
		d.mu.Unlock()
	}
}

// cellName checks or makes a cell's name.
func (d *Daemon) cellName(req api.SpawnRequest) (string, error) {
	name := req.Name
	if name == "" {
		base := filepath.Base(req.Argv[0])
		for i := 1; ; i++ {
			name = base + "-" + strconv.Itoa(i)
			if _, ok := d.cells[name]; !ok {
				if _, err := d.ledger.Account(context.Background(), name); errors.Is(err, ledger.ErrNoAccount) {
					break
				}
			}
		}
	}
	if _, ok := d.cells[name]; ok {
		return "", fmt.Errorf("%w: %s", api.ErrExists, name)
	}
	if _, err := d.ledger.Account(context.Background(), name); err == nil {
		return "", fmt.Errorf("%w: the ledger already has a wallet named %s (names are never reused)", api.ErrExists, name)
	}
	return name, nil
}
