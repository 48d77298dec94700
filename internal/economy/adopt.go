package economy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Adopted cells: cgroups that someone else made (a kubelet, systemd, a
// person), governed like any cell — frozen from admission until they win
// a slot, CPU-limited to what they won, measured, metered by cgroup id,
// and found by their processes' PIDs on the agent socket — but never
// started or killed by Maxwell.
//
// The engine has one insolvency policy for every cell (engine.insolvency:
// kill or hibernate); an adopted cell has its own (api.Insolvency), which
// the economy carries out around the engine:
//
//   - stop, under kill: the engine's apoptosis kills the cell, which for an
//     adopted cell means that the economy lets go of it (thawed, its
//     owner's CPU limit written back) and asks its owner to stop it.
//   - stop, under hibernate: the engine hibernates it; after that decision
//     the economy retires it, closes its wallet and asks its owner.
//   - freeze, under hibernate: the engine's hibernation, exactly.
//   - freeze, under kill: the economy holds the cell frozen (as an
//     operator's pause does: no bid, no charge) as soon as a decision
//     leaves it less than one more tick's worth — its bid's slots at the
//     higher of its price and the reserve, plus twice the tick's tax and
//     rent — and lets it go on once it has that again (funded). A single
//     tick whose Landauer tax alone exceeds the rest of the balance still
//     makes the engine kill it; then it is stopped as above. The engine
//     change that would make this exact (a policy per cell) is the
//     engine's to make.
//
// Killing an adopted cell (the kill switch, or an apoptosis) is the same
// letting go: thawed, CPU limit written back, its owner asked to stop it,
// its wallet closed. Release lets go of it without asking anyone and
// settles its wallet.

// AdoptSpec is what AdoptCell adopts.
type AdoptSpec struct {
	// Name is the cell's name (cell.ValidAdoptedName): "namespace/pod"
	// for a pod.
	Name string
	// Incarnate gives a new cell a name of its own when Name has been
	// used before (names are never reused; a pod recreated under the
	// same name, or adopted again after a restart of the daemon, whose
	// ledger closed the earlier wallet): the first of Name/2, Name/3, …
	// that is free. Without it a used Name is an error wrapping
	// api.ErrExists.
	Incarnate bool
	// Cgroup is the cgroup's path below each hierarchy's root.
	Cgroup string
	// Wallet is the endowment; TapRate (credits per second) is paid while
	// the balance is below TapCap (0: the wallet).
	Wallet, TapRate, TapCap units.Credits
	// MaxBid is the standing bid the daemon makes every tick, credits per
	// slot, for Units slots; 0 means the cell's processes bid for
	// themselves through the agent socket.
	MaxBid units.Credits
	Units  int
	// OnInsolvency is what happens when the wallet runs dry; "" means
	// api.InsolvencyFreeze.
	OnInsolvency api.Insolvency
	// Owner is asked to stop the cell's processes when it goes insolvent
	// under api.InsolvencyStop, or is killed; nil means nobody is asked
	// (the cell is let go of, running).
	Owner cell.Owner
}

// adoptions are the economy's adopted cells, by name.
type adoptions struct {
	mu    sync.Mutex
	cells map[string]*adoptedCell
}

func (as *adoptions) add(a *adoptedCell) {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.cells == nil {
		as.cells = map[string]*adoptedCell{}
	}
	as.cells[a.name] = a
}

func (as *adoptions) get(name string) *adoptedCell {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.cells[name]
}

func (as *adoptions) remove(name string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	delete(as.cells, name)
}

func (as *adoptions) all() []*adoptedCell {
	as.mu.Lock()
	defer as.mu.Unlock()
	out := make([]*adoptedCell, 0, len(as.cells))
	for _, a := range as.cells {
		out = append(out, a)
	}
	return out
}

// byCgroup returns the live adopted cell of a cgroup, if any.
func (as *adoptions) byCgroup(cgroup string) (string, bool) {
	as.mu.Lock()
	defer as.mu.Unlock()
	for n, a := range as.cells {
		if a.cgroup == cgroup && a.governs() {
			return n, true
		}
	}
	return "", false
}

// adoptState is where an adopted cell stands with the economy.
type adoptState int

const (
	// governed: the economy freezes, thaws and limits it.
	governed adoptState = iota
	// retired: dead in the economy (insolvent, or killed), let go of and
	// its owner asked to stop it; still adopted until released.
	retired
	// released: let go of for good (Release, or the economy's end).
	released
)

// adoptedCell is the economy's cell.Cell over an adopted cgroup: the
// cell of cell.Manager.Adopt, with the economy's insolvency policy in Kill
// and nothing done once the economy has let go of it.
type adoptedCell struct {
	cell.Cell
	name   string
	cgroup string
	policy api.Insolvency
	owner  cell.Owner
	log    *slog.Logger

	mu    sync.Mutex
	state adoptState
	gone  chan struct{} // closed once released

	// Only the driver's goroutine (afterDecision) touches these.
	held      bool          // frozen by the economy ahead of insolvency
	lastPrice units.Credits // its last bid, for the next tick's cost
	lastUnits int
}

func (a *adoptedCell) governs() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state == governed
}

// Pause implements cell.Cell; a cell the economy let go of is not frozen
// again.
func (a *adoptedCell) Pause(ctx context.Context) error {
	if !a.governs() {
		return fmt.Errorf("pausing adopted cell %q, which the economy let go of: %w", a.name, cell.ErrExited)
	}
	return a.Cell.Pause(ctx)
}

// Resume implements cell.Cell.
func (a *adoptedCell) Resume(ctx context.Context) error {
	if !a.governs() {
		return nil
	}
	return a.Cell.Resume(ctx)
}

// LimitCPU implements cell.CPULimiter where the adopted cell is one.
func (a *adoptedCell) LimitCPU(cores float64) error {
	l, ok := a.Cell.(cell.CPULimiter)
	if !ok || !a.governs() {
		return nil
	}
	return l.LimitCPU(cores)
}

// Done implements cell.Cell: closed once the cgroup is gone or empty, or
// once the economy released it.
func (a *adoptedCell) Done() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state == released {
		return a.gone
	}
	return a.Cell.Done()
}

// errReleased is what Wait returns for a cell the economy released.
var errReleased = errors.New("released: the economy let go of it")

// Wait implements cell.Cell.
func (a *adoptedCell) Wait(ctx context.Context) error {
	select {
	case <-a.Cell.Done():
		return a.Cell.Wait(ctx)
	case <-a.gone:
		return errReleased
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Contains implements cell.Cell: a released cell holds no process of the
// economy's.
func (a *adoptedCell) Contains(pid int) bool {
	a.mu.Lock()
	rel := a.state == released
	a.mu.Unlock()
	return !rel && a.Cell.Contains(pid)
}

// Kill implements cell.Cell: Maxwell kills no adopted process. The
// economy lets go of the cell (thawed, its owner's CPU limit written back)
// and asks its owner, if it has one, to stop it; the processes may end
// later, and Done says when. Killing a cell twice, or one released, does
// nothing.
func (a *adoptedCell) Kill(ctx context.Context) error {
	a.mu.Lock()
	if a.state != governed {
		a.mu.Unlock()
		return nil
	}
	a.state = retired
	a.mu.Unlock()
	var errs []error
	if err := a.Cell.Resume(ctx); err != nil && !errors.Is(err, cell.ErrExited) {
		errs = append(errs, err)
	}
	if l, ok := a.Cell.(cell.CPULimiter); ok {
		if err := l.LimitCPU(0); err != nil {
			a.log.Debug("writing back the owner's CPU limit", "cell", a.name, "err", err)
		}
	}
	if a.owner == nil {
		a.log.Warn("adopted cell out of the economy; it has no owner to ask to stop it, so it runs on, ungoverned", "cell", a.name, "cgroup", a.cgroup)
		return errors.Join(errs...)
	}
	if err := a.owner.Stop(ctx, a.name); err != nil {
		errs = append(errs, fmt.Errorf("asking the owner of %s to stop it: %w", a.name, err))
	}
	return errors.Join(errs...)
}

// release marks the cell released: Kill, Pause and LimitCPU do nothing
// from now on. It reports whether it was the first call.
func (a *adoptedCell) release() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state == released {
		return false
	}
	a.state = released
	return true
}

// AdoptCell puts an existing cgroup under the economy as a cell: it
// adopts it (cell.Manager.Adopt), opens its wallet in the ledger, then
// admits it to the engine, frozen until it wins a slot. Errors wrap the
// api sentinels: ErrBadRequest for a cgroup that cannot be adopted (none,
// empty, frozen by its owner) or a bad name, ErrExists for a name used
// before (without Incarnate) or a cgroup already adopted.
func (e *Economy) AdoptCell(ctx context.Context, spec AdoptSpec) (api.CellInfo, error) {
	if err := cell.ValidAdoptedName(spec.Name); err != nil {
		return api.CellInfo{}, api.Classify(api.ErrBadRequest, err)
	}
	switch spec.OnInsolvency {
	case "":
		spec.OnInsolvency = api.InsolvencyFreeze
	case api.InsolvencyFreeze, api.InsolvencyStop:
	default:
		return api.CellInfo{}, fmt.Errorf("%w: insolvency policy %q, want %s or %s", api.ErrBadRequest, spec.OnInsolvency, api.InsolvencyFreeze, api.InsolvencyStop)
	}
	if spec.Wallet < 0 || spec.TapRate < 0 || spec.TapCap < 0 || spec.MaxBid < 0 || spec.Units < 0 || spec.Wallet == 0 && spec.TapRate == 0 {
		return api.CellInfo{}, fmt.Errorf("%w: wallet %d, tap %d/s (cap %d), bid %d×%d: no negative figure, and a wallet or a tap", api.ErrBadRequest,
			spec.Wallet, spec.TapRate, spec.TapCap, spec.Units, spec.MaxBid)
	}
	if other, ok := e.adopted.byCgroup(path.Clean("/" + spec.Cgroup)); ok {
		return api.CellInfo{}, fmt.Errorf("%w: cgroup %s is already cell %s", api.ErrExists, spec.Cgroup, other)
	}
	name, err := e.reserveAdopted(ctx, spec)
	if err != nil {
		return api.CellInfo{}, err
	}
	defer func() {
		e.mu.Lock()
		delete(e.spawning, name)
		e.mu.Unlock()
	}()
	c, err := e.mgr.Adopt(ctx, cell.AdoptSpec{Name: name, Cgroup: spec.Cgroup})
	if err != nil {
		if errors.Is(err, cell.ErrExists) {
			return api.CellInfo{}, api.Classify(api.ErrExists, err)
		}
		return api.CellInfo{}, api.Classify(api.ErrBadRequest, err)
	}
	a := &adoptedCell{Cell: c, name: name, cgroup: path.Clean("/" + spec.Cgroup), policy: spec.OnInsolvency,
		owner: spec.Owner, log: e.log, gone: make(chan struct{})}
	w := engine.Wallet{Balance: spec.Wallet, Endowment: spec.Wallet, TapRate: spec.TapRate, TapCap: spec.TapCap}
	if w.TapRate > 0 && w.TapCap == 0 {
		w.TapCap = w.Endowment
	}
	if err := e.lg.OpenWallet(ctx, name, w); err != nil {
		a.release()
		return api.CellInfo{}, errors.Join(apiError(err), c.Close())
	}
	var standing *engine.Bid
	if spec.MaxBid > 0 {
		standing = &engine.Bid{Price: spec.MaxBid, Units: max(spec.Units, 1)}
		a.lastPrice, a.lastUnits = standing.Price, standing.Units
	}
	e.mu.Lock()
	e.cells[name] = &managed{c: a, owner: -1, standing: standing != nil}
	e.order = append(e.order, name)
	e.mu.Unlock()
	e.adopted.add(a)
	// Admit freezes it: it runs once it wins a slot (a cell without a
	// standing bid gets the startup slots of its grace).
	if err := e.driver.Admit(ctx, name, a, w, standing); err != nil {
		e.adopted.remove(name)
		a.release()
		cerr := c.Close()
		_, lerr := e.ledger.CloseWallet(context.WithoutCancel(ctx), "abort/cell:"+name, 0, name)
		// The row stays, dead, as a spawn's does: the name is used.
		return api.CellInfo{}, errors.Join(apiError(err), cerr, lerr)
	}
	bid := "its processes bid for themselves"
	if standing != nil {
		bid = fmt.Sprintf("standing bid %d×%d", standing.Units, standing.Price)
	}
	e.note(event.Event{Kind: event.Adopted, Cell: name, Detail: fmt.Sprintf("cgroup %s (pid %d, %s), wallet %d credits, %s, on insolvency %s",
		a.cgroup, c.PID(), c.Backend(), spec.Wallet, bid, spec.OnInsolvency)})
	return api.CellInfo{Name: name, PID: c.PID(), Backend: c.Backend()}, nil
}

// reserveAdopted holds a free name for an adoption: spec.Name, or with
// Incarnate the first free Name/N.
func (e *Economy) reserveAdopted(ctx context.Context, spec AdoptSpec) (string, error) {
	name := spec.Name
	for n := 2; ; n++ {
		got, err := e.reserveName(ctx, api.SpawnRequest{Name: name})
		if err == nil || !spec.Incarnate || !errors.Is(err, api.ErrExists) || n > 10000 {
			return got, err
		}
		name = spec.Name + "/" + strconv.Itoa(n)
		if cell.ValidAdoptedName(name) != nil {
			return "", err
		}
	}
}

// Adopt implements api.Adopter: a validated request's cgroup becomes a
// cell. Under api.InsolvencyStop its StopArgv is how its owner is asked
// to stop it.
func (e *Economy) Adopt(ctx context.Context, req api.AdoptRequest) (api.CellInfo, error) {
	if err := req.Validate(); err != nil {
		return api.CellInfo{}, err
	}
	spec := AdoptSpec{Name: req.Name, Cgroup: req.Cgroup, Wallet: req.Wallet, TapRate: req.TapRate, TapCap: req.TapCap,
		MaxBid: req.MaxBid, Units: req.Units, OnInsolvency: req.OnInsolvency}
	if len(req.StopArgv) > 0 {
		spec.Owner = &CommandOwner{Argv: slices.Clone(req.StopArgv), Log: e.log}
	}
	return e.AdoptCell(ctx, spec)
}

// Release lets go of an adopted cell for good, asking nobody to stop it:
// the engine forgets it (it is listed dead), the cgroup is thawed and its
// owner's CPU limit written back, and its wallet is closed and settled. It
// returns what was left in the wallet (0 if it had been closed already:
// the cell had ended, gone insolvent or been killed). A name that is no
// adopted cell is an error wrapping api.ErrNotFound.
func (e *Economy) Release(ctx context.Context, name string) (units.Credits, error) {
	a := e.adopted.get(name)
	if a == nil {
		return 0, fmt.Errorf("%w: no adopted cell %s", api.ErrNotFound, name)
	}
	a.release()
	var errs []error
	// Dead in the engine first: from now on no tick freezes it again.
	if err := e.driver.Retire(ctx, name); err != nil && !errors.Is(err, engine.ErrUnknown) {
		errs = append(errs, err)
	}
	if err := a.Cell.Close(); err != nil {
		errs = append(errs, err)
	}
	close(a.gone)
	e.adopted.remove(name)
	left, err := e.settle(ctx, name)
	if err != nil {
		// It stays open in the ledger; the economy's end (or the next
		// start) settles it.
		errs = append(errs, apiError(err))
	}
	e.note(event.Event{Kind: event.Released, Cell: name, Detail: fmt.Sprintf("cgroup %s let go of (thawed, processes left alone); wallet settled with %d credits left", a.cgroup, left)})
	return left, errors.Join(errs...)
}

// settle closes a wallet and returns its final balance, also when it was
// closed already.
func (e *Economy) settle(ctx context.Context, name string) (units.Credits, error) {
	res, err := e.ledger.CloseWallet(ctx, "release/cell:"+name, 0, name)
	if err == nil {
		return res.Amount, nil
	}
	if !errors.Is(err, ledger.ErrClosed) {
		return 0, err
	}
	return 0, nil
}

// CgroupLayout returns the host's cgroup layout as the economy's cell
// manager found it: where adopted cgroups are looked for.
func (e *Economy) CgroupLayout() cell.Layout { return e.mgr.Layout() }

// PriceCeiling returns the reserve price at the controller's highest
// multiplier, and that multiplier.
func (e *Economy) PriceCeiling() (units.Credits, float64) {
	c := e.econf.Controller.OutMax
	return control.ReservePrice(e.econf.SlotEnergy, c), c
}

// afterDecision carries out the insolvency policies of adopted cells after
// each decision (see the top of this file). It runs on the driver's
// goroutine between two ticks, outside the economy's lock.
func (e *Economy) afterDecision(dec engine.Decision) {
	cells := e.adopted.all()
	if len(cells) == 0 {
		return
	}
	reports := make(map[string]engine.CellReport, len(dec.Cells))
	for _, r := range dec.Cells {
		reports[r.Name] = r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, a := range cells {
		r, ok := reports[a.name]
		if !ok || r.State == life.Dead || !a.governs() {
			continue
		}
		if r.BidUnits > 0 {
			a.lastPrice, a.lastUnits = r.BidPrice, r.BidUnits
		}
		switch {
		case a.policy == api.InsolvencyStop && r.State == life.Hibernating:
			e.stopInsolvent(ctx, a, r)
		case a.policy == api.InsolvencyFreeze && e.econf.Insolvency == engine.Apoptosis:
			e.holdAhead(ctx, a, r, dec)
		}
	}
}

// stopInsolvent retires a hibernating adopted cell whose policy is stop:
// it is let go of, its owner asked to stop it, and its wallet closed.
func (e *Economy) stopInsolvent(ctx context.Context, a *adoptedCell, r engine.CellReport) {
	if err := e.driver.Retire(ctx, a.name); err != nil {
		e.note(event.Event{Kind: event.KillFailed, Cell: a.name, Detail: err.Error()})
	}
	left, err := e.settle(ctx, a.name)
	if err != nil {
		e.log.Warn("closing the wallet of an insolvent adopted cell; it is settled later", "cell", a.name, "err", err)
	}
	asked := "it has no owner to ask to stop it, so it runs on, ungoverned"
	if a.owner != nil {
		asked = "its owner was asked to stop it"
	}
	e.note(event.Event{Kind: event.Apoptosis, Cell: a.name, Detail: fmt.Sprintf("could not pay (balance %d credits, insolvency stop): out of the economy, thawed, wallet closed with %d; %s", r.Balance, left, asked)})
}

// holdAhead freezes a freeze-policy cell, under an engine that kills the
// insolvent, before its balance can fall short, and lets it go on once it
// can pay again.
func (e *Economy) holdAhead(ctx context.Context, a *adoptedCell, r engine.CellReport, dec engine.Decision) {
	price := max(a.lastPrice, dec.Reserve)
	cost := price*units.Credits(max(a.lastUnits, 1)) + 2*(r.Tax+r.Rent)
	broke := r.Balance < cost
	switch {
	case broke && !a.held:
		if err := e.driver.Hold(ctx, a.name, true); err != nil {
			e.note(event.Event{Kind: event.PauseFailed, Cell: a.name, Detail: err.Error()})
			return
		}
		a.held = true
		e.note(event.Event{Kind: event.Hibernate, Cell: a.name, Detail: fmt.Sprintf("balance %d credits cannot pay another tick (up to %d: %d×%d and Landauer tax): frozen until funded (insolvency freeze)",
			r.Balance, cost, max(a.lastUnits, 1), price)})
	case !broke && a.held:
		if err := e.driver.Hold(ctx, a.name, false); err != nil {
			e.log.Warn("letting a funded adopted cell bid again", "cell", a.name, "err", err)
			return
		}
		a.held = false
		e.log.Info("funded: the adopted cell bids again", "cell", a.name, "balance", int64(r.Balance))
	}
}

// adoptedRow completes an adopted cell's row of the State: its cgroup,
// and hibernating while the economy holds it frozen for want of money.
func (e *Economy) adoptedRow(row *api.Cell) {
	a := e.adopted.get(row.Name)
	if a == nil {
		return
	}
	row.Cgroup = a.cgroup
	if row.State != life.Dead && a.heldForMoney() {
		row.State = life.Hibernating
	}
}

// heldForMoney reads held from outside the driver's goroutine.
func (a *adoptedCell) heldForMoney() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held
}

// StopTimeout bounds a CommandOwner's command.
const StopTimeout = time.Minute

// CommandOwner is the owner of a cgroup adopted through the API: Stop
// runs Argv (for example "systemctl stop nginx.service") once, as the
// daemon, outside every cell, with the PATH cells get and nothing else of
// the daemon's environment, bounded by StopTimeout.
type CommandOwner struct {
	Argv []string
	Log  *slog.Logger

	once sync.Once
}

// Stop implements cell.Owner: it starts the command and returns at once
// (a tick never waits for it); what it did is logged.
func (o *CommandOwner) Stop(_ context.Context, name string) error {
	o.once.Do(func() {
		go o.run(name)
	})
	return nil
}

func (o *CommandOwner) run(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.Argv[0], o.Argv[1:]...)
	cmd.Env = []string{"PATH=" + CellPath}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if len(out) > 2048 {
		out = out[len(out)-2048:]
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err != nil {
		log.Warn("asking the owner of an adopted cell to stop it failed", "cell", name, "argv", o.Argv, "err", err, "output", string(out))
		return
	}
	log.Info("asked the owner of an adopted cell to stop it", "cell", name, "argv", o.Argv, "output", string(out))
}
