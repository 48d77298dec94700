package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/ledger"
)

// apiError classifies the engine's and the ledger's errors for the API.
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrUnknown):
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	case errors.Is(err, engine.ErrDead), errors.Is(err, cell.ErrExited):
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	case errors.Is(err, engine.ErrBadAmount), errors.Is(err, ledger.ErrInvalid):
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	case errors.Is(err, ledger.ErrFull), errors.Is(err, ledger.ErrReadOnly):
		return fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	return err
}

// Spawn implements api.Backend: it starts the program in a new cell, opens
// its wallet and puts it under the economy.
func (d *Daemon) Spawn(ctx context.Context, req api.SpawnRequest) (api.CellInfo, error) {
	d.mu.Lock()
	name, err := d.cellName(req)
	d.mu.Unlock()
	if err != nil {
		return api.CellInfo{}, err
	}
	cpus := req.CPUs
	if len(cpus) == 0 {
		cpus = d.opts.CPUs
	}
	var starter interface {
		Start(context.Context, cell.Spec) (cell.Cell, error)
	} = d.mgr
	env := append(req.Env, "MAXWELL_AGENT_SOCKET="+d.opts.AgentSocket)
	if req.OCIRootfs != "" {
		m, err := d.ociManager(ctx, req.OCIRootfs)
		if err != nil {
			return api.CellInfo{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
		}
		starter = m
		// Inside the container the agent socket's directory is mounted
		// at ociSockDir.
		env = append(req.Env, "MAXWELL_AGENT_SOCKET="+filepath.Join(ociSockDir, filepath.Base(d.opts.AgentSocket)))
	}
	c, err := starter.Start(ctx, cell.Spec{Name: name, Path: req.Argv[0], Args: req.Argv[1:], Env: env, Dir: req.Dir, CPUs: cpus})
	if err != nil {
		return api.CellInfo{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	w := engine.Wallet{Balance: req.Wallet, Endowment: req.Wallet, TapRate: req.TapRate, TapCap: req.TapCap}
	if err := d.lg.OpenWallet(ctx, name, w); err != nil {
		c.Close()
		return api.CellInfo{}, apiError(err)
	}
	var standing *engine.Bid
	if req.MaxBid > 0 {
		units := req.Units
		if units <= 0 {
			units = 1
		}
		standing = &engine.Bid{Price: req.MaxBid, Units: units}
	}
	d.mu.Lock()
	d.cells[name] = &managed{c: c, argv: req.Argv, wallet: w, standing: standing != nil}
	d.order = append(d.order, name)
	d.mu.Unlock()
	if err := d.driver.Admit(name, c, w, standing); err != nil {
		return api.CellInfo{}, apiError(err)
	}
	d.note("spawned", name, fmt.Sprintf("pid %d, backend %s, wallet %d credits", c.PID(), c.Backend(), req.Wallet))
	return api.CellInfo{Name: name, PID: c.PID(), Backend: c.Backend()}, nil
}

// ociSockDir is where containers see the agent socket's directory.
const ociSockDir = "/run/maxwell"

// ociManager returns the runc manager for containers of root file system
// rootfs, creating it on first use.
func (d *Daemon) ociManager(ctx context.Context, rootfs string) (*oci.Manager, error) {
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.ocis[abs]; ok {
		return m, nil
	}
	o := oci.DefaultOptions()
	o.RootFS, o.CgroupRoot, o.ProcRoot, o.Logger = abs, d.opts.CgroupRoot, d.opts.Roots.Proc, d.log
	parent := d.opts.CellParent
	if parent == "" {
		parent = cell.DefaultOptions().Parent
	}
	o.Parent = fmt.Sprintf("%s-oci-%d", parent, len(d.ocis))
	o.StateDir = filepath.Join(filepath.Dir(d.opts.ControlSocket), "oci", strconv.Itoa(len(d.ocis)))
	o.Mounts = []oci.Mount{{Source: filepath.Dir(d.opts.AgentSocket), Destination: ociSockDir}}
	m, err := oci.NewManager(ctx, o)
	if err != nil {
		return nil, err
	}
	if d.ocis == nil {
		d.ocis = map[string]*oci.Manager{}
	}
	d.ocis[abs] = m
	return m, nil
}

// Fund implements api.Backend: the ledger first, then the engine.
func (d *Daemon) Fund(ctx context.Context, name string, credits int64) error {
	if credits <= 0 {
		return fmt.Errorf("%w: fund %d credits: want a positive amount", api.ErrBadRequest, credits)
	}
	d.mu.Lock()
	_, ok := d.cells[name]
	d.fundSeq++
	key := "fund/cell:" + name + "/" + strconv.FormatInt(d.started.UnixNano(), 10) + "/" + strconv.FormatUint(d.fundSeq, 10)
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", api.ErrNotFound, name)
	}
	if st, _, _ := d.driver.Core.Cell(name); st == engine.Dead {
		return fmt.Errorf("%w: %s is dead", api.ErrConflict, name)
	}
	if err := d.lg.Fund(ctx, key, name, credits); err != nil {
		return apiError(err)
	}
	if err := d.driver.Fund(name, credits); err != nil {
		return apiError(err)
	}
	d.note("funded", name, fmt.Sprintf("%d credits", credits))
	return nil
}

// Kill implements api.Backend: the kill switch.
func (d *Daemon) Kill(ctx context.Context, name string) error {
	if err := d.driver.Retire(ctx, name); err != nil {
		return apiError(err)
	}
	res, err := d.ledger.CloseWallet(ctx, "kill/cell:"+name, 0, name)
	if err != nil {
		return apiError(err)
	}
	d.note("killed", name, fmt.Sprintf("by an operator; final balance %d credits", res.Amount))
	return nil
}

// Pause implements api.Backend: the cell is held frozen, bidding nothing.
func (d *Daemon) Pause(ctx context.Context, name string) error {
	if err := d.driver.Hold(ctx, name, true); err != nil {
		return apiError(err)
	}
	d.note("held", name, "paused by an operator")
	return nil
}

// Resume implements api.Backend: the cell bids again; it runs when it wins.
func (d *Daemon) Resume(ctx context.Context, name string) error {
	if err := d.driver.Hold(ctx, name, false); err != nil {
		return apiError(err)
	}
	d.note("released", name, "resumed by an operator: it runs when it wins a slot")
	return nil
}

// State implements api.Backend.
func (d *Daemon) State(ctx context.Context) (api.State, error) {
	dec := d.driver.Last()
	s := api.State{
		Time: time.Now(), Started: d.started, Tick: dec.Tick, TickSeconds: d.econf.Tick.Seconds(), Slots: d.econf.Slots,
		Multiplier: dec.Multiplier, Reserve: dec.Reserve, Clearing: dec.Clearing, FailSafe: dec.FailSafe,
	}
	t, terr := d.tel.Temp.ReadTemperature()
	s.Temperature = api.Temperature{Celsius: float64(t), Setpoint: float64(d.econf.Controller.Setpoint), Source: api.SourceOf(d.tel.Temp.Source())}
	if terr != nil {
		s.Temperature.Error = terr.Error()
	}
	reports := map[string]engine.CellReport{}
	for _, r := range dec.Cells {
		reports[r.Name] = r
	}
	estimated := d.tel.Energy.Source().Estimated()
	d.mu.Lock()
	defer d.mu.Unlock()
	s.Power = api.Power{Watts: float64(d.power), Source: api.SourceOf(d.tel.Energy.Source())}
	s.Apoptoses = d.apoptoses
	for _, name := range d.order {
		m := d.cells[name]
		st, w, _ := d.driver.Core.Cell(name)
		r := reports[name]
		row := api.Cell{
			Name: name, State: api.CellState(st), PID: m.c.PID(), Backend: m.c.Backend(), Argv: m.argv,
			Balance: w.Balance, Endowment: w.Endowment, TapRate: w.TapRate, TapCap: w.TapCap,
			Payment: r.Payment, Paid: r.PaidTotal, Tax: r.TaxTotal, BidPrice: r.BidPrice, BidUnits: r.BidUnits, Won: r.Won,
			Energy: m.energy.Joules(), EnergyEstimated: estimated, CPUShare: m.share, Standing: m.standing,
		}
		if d.econf.Tick > 0 {
			row.BurnRate = float64(r.Payment+r.Tax+r.Rent) / d.econf.Tick.Seconds()
		}
		s.Cells = append(s.Cells, row)
	}
	s.Events = append([]api.Event(nil), d.events...)
	s.History = append([]api.PricePoint(nil), d.history...)
	return s, nil
}
