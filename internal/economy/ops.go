package economy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/celllog"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/identity"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"
)

// The Economy's operations are the control API's: it implements
// api.Backend.
var _ api.Backend = (*Economy)(nil)

// OCISocketDir is where a container sees the agent socket's directory.
const OCISocketDir = "/run/maxwell"

// apiError classifies the engine's and the ledger's errors for the API.
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrUnknown):
		return api.Classify(api.ErrNotFound, err)
	case errors.Is(err, engine.ErrDead), errors.Is(err, cell.ErrExited), errors.Is(err, ledger.ErrClosed):
		return api.Classify(api.ErrConflict, err)
	case errors.Is(err, engine.ErrBadAmount), errors.Is(err, ledger.ErrInvalid):
		return api.Classify(api.ErrBadRequest, err)
	case errors.Is(err, ledger.ErrFull), errors.Is(err, ledger.ErrReadOnly):
		return api.Classify(api.ErrUnavailable, err)
	}
	return err
}

// Spawn starts the program of a validated request in a new cell, opens its
// wallet in the ledger and puts it under the economy: the ledger first, so
// that the engine never holds money the books do not.
func (e *Economy) Spawn(ctx context.Context, req api.SpawnRequest) (api.CellInfo, error) {
	if err := req.Validate(); err != nil {
		return api.CellInfo{}, err
	}
	if err := checkIncome(req.Income); err != nil {
		return api.CellInfo{}, err
	}
	name, err := e.reserveName(ctx, req)
	if err != nil {
		return api.CellInfo{}, err
	}
	defer func() {
		e.mu.Lock()
		delete(e.spawning, name)
		e.mu.Unlock()
	}()
	cpus := req.CPUs
	if len(cpus) == 0 {
		cpus = e.opts.CPUs
	}
	var starter interface {
		Start(context.Context, cell.Spec) (cell.Cell, error)
	} = e.mgr
	var cred *syscall.Credential
	who, err := e.runAs(req.User)
	if err != nil {
		return api.CellInfo{}, err
	}
	if req.User != "" {
		cred = who.Credential()
	}
	env := append(CellEnv(who), req.Env...)
	env = append(env, "MAXWELL_AGENT_SOCKET="+e.opts.AgentSocket)
	if req.OCIRootfs != "" {
		m, err := e.ociManager(ctx, req.OCIRootfs)
		if err != nil {
			return api.CellInfo{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
		}
		starter = m
		// Inside the container: its own default environment, and the
		// socket where its directory is mounted.
		env = append(append(oci.DefaultEnv(), req.Env...), "MAXWELL_AGENT_SOCKET="+filepath.Join(OCISocketDir, filepath.Base(e.opts.AgentSocket)))
	}
	if req.VM != nil { // a microVM (vm.go): the guest's command, environment and directory
		if starter, env, err = e.vmSpawn(ctx, req); err != nil {
			return api.CellInfo{}, err
		}
	}
	spec := cell.Spec{Name: name, Path: req.Argv[0], Args: req.Argv[1:], Env: env, Dir: req.Dir, CPUs: cpus, Credential: cred}
	var logFile *celllog.Writer
	if e.opts.LogDir != "" {
		if logFile, err = celllog.Open(e.opts.LogDir, name, e.logOptions()); err != nil {
			return api.CellInfo{}, fmt.Errorf("economy: cell log: %w", err)
		}
		spec.Stdout, spec.Stderr = logFile, logFile
	}
	c, err := starter.Start(ctx, spec)
	if err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return api.CellInfo{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	// Frozen at once: it runs only once it wins a slot (the driver gives a
	// program without a standing bid a startup slot for its grace).
	if err := c.Pause(ctx); err != nil {
		c.Close()
		if logFile != nil {
			logFile.Close()
		}
		return api.CellInfo{}, fmt.Errorf("economy: freezing the new cell: %w", err)
	}
	w := engine.Wallet{Balance: req.Wallet, Endowment: req.Wallet, TapRate: req.TapRate, TapCap: req.TapCap}
	if w.TapRate > 0 && w.TapCap == 0 {
		w.TapCap = w.Endowment
	}
	if err := e.lg.OpenWallet(ctx, name, w); err != nil {
		c.Close()
		if logFile != nil {
			logFile.Close()
		}
		return api.CellInfo{}, apiError(err)
	}
	var standing *engine.Bid
	if req.MaxBid > 0 {
		standing = &engine.Bid{Price: req.MaxBid, Units: max(req.Units, 1)}
	}
	cg := e.cgroupOf(c)
	e.mu.Lock()
	e.cells[name] = &managed{c: c, argv: req.Argv, user: who.Name, owner: req.OwnerUID, standing: standing != nil, logFile: logFile, cgroup: cg}
	if req.OCIRootfs != "" {
		e.cells[name].containerID = name // the runtime's container ID is the cell's name
	}
	if who.Name == "" {
		e.cells[name].user = strconv.Itoa(who.UID)
	}
	e.order = append(e.order, name)
	e.mu.Unlock()
	if err := e.driver.Admit(ctx, name, c, w, standing); err != nil {
		// Cannot happen for a name reserved above; settle all the same.
		c.Close()
		e.ledger.CloseWallet(context.WithoutCancel(ctx), "abort/cell:"+name, 0, name)
		return api.CellInfo{}, apiError(err)
	}
	e.payIncome(name, req.Income)
	e.note(event.Event{Kind: event.Spawned, Cell: name, Detail: fmt.Sprintf("pid %d, backend %s, as %s, wallet %d credits", c.PID(), c.Backend(), who, req.Wallet)})
	return api.CellInfo{Name: name, PID: c.PID(), Backend: c.Backend()}, nil
}

// CellPath is the PATH a cell's program gets unless its request sets one.
const CellPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// CellEnv is the environment every cell starts from, before its request's
// own variables: PATH, and HOME, USER and LOGNAME of the user it runs as.
// Nothing of the daemon's own environment leaks into a cell.
func CellEnv(who identity.Identity) []string {
	home := who.Home
	if home == "" {
		home = "/"
	}
	env := []string{"PATH=" + CellPath, "HOME=" + home}
	if who.Name != "" {
		env = append(env, "USER="+who.Name, "LOGNAME="+who.Name)
	}
	return env
}

// runAs resolves the user a request's cell runs as: its User, or the
// daemon's own user. A daemon that is not root can run cells only as
// itself.
func (e *Economy) runAs(user string) (identity.Identity, error) {
	self := os.Geteuid()
	if user == "" {
		id, err := identity.LookupUID(self)
		if err != nil {
			return identity.Identity{}, fmt.Errorf("economy: the daemon's own user: %w", err)
		}
		return id, nil
	}
	id, err := identity.Lookup(user)
	if err != nil {
		return identity.Identity{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	if self != 0 && id.UID != self {
		return identity.Identity{}, fmt.Errorf("%w: this daemon runs as uid %d, not root: it cannot run cells as %s", api.ErrForbidden, self, id)
	}
	return id, nil
}

// reserveName checks a requested name, or makes one, and holds it until
// the spawn ends: a name is never used twice, not even by a dead cell
// whose wallet the ledger keeps.
func (e *Economy) reserveName(ctx context.Context, req api.SpawnRequest) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	taken := func(n string) (bool, error) {
		if _, ok := e.cells[n]; ok || e.spawning[n] {
			return true, nil
		}
		_, err := e.ledger.Account(ctx, n)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, ledger.ErrNoAccount):
			return false, nil
		}
		return false, err
	}
	name := req.Name
	if name == "" {
		base := filepath.Base(req.Argv[0])
		if api.ValidName(base) != nil {
			base = "cell"
		}
		for i := 1; ; i++ {
			name = base + "-" + strconv.Itoa(i)
			t, err := taken(name)
			if err != nil {
				return "", err
			}
			if !t {
				break
			}
		}
	} else if t, err := taken(name); err != nil {
		return "", err
	} else if t {
		return "", fmt.Errorf("%w: a cell or a wallet is already named %s (names are never reused)", api.ErrExists, name)
	}
	e.spawning[name] = true
	return name, nil
}

// ociManager returns the runc manager for containers of root file system
// rootfs, creating it on first use.
func (e *Economy) ociManager(ctx context.Context, rootfs string) (*oci.Manager, error) {
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.ocis[abs]; ok {
		return m, nil
	}
	o := oci.DefaultOptions()
	o.RootFS, o.CgroupRoot, o.ProcRoot, o.Logger = abs, e.opts.CgroupRoot, e.opts.Roots.Proc, e.log
	parent := e.opts.CellParent
	if parent == "" {
		parent = cell.DefaultOptions().Parent
	}
	o.Parent = fmt.Sprintf("%s-oci-%d", parent, len(e.ocis))
	o.StateDir = filepath.Join(e.stateDir, "oci", strconv.Itoa(len(e.ocis)))
	o.Mounts = []oci.Mount{{Source: filepath.Dir(e.opts.AgentSocket), Destination: OCISocketDir}}
	m, err := oci.NewManager(ctx, o)
	if err != nil {
		return nil, err
	}
	if e.ocis == nil {
		e.ocis = map[string]*oci.Manager{}
	}
	e.ocis[abs] = m
	return m, nil
}

// cell returns the managed cell of name.
func (e *Economy) cell(name string) (*managed, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.cells[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", api.ErrNotFound, name)
	}
	return m, nil
}

// Fund adds credits (> 0) to a cell's wallet: the ledger first, then the
// engine.
func (e *Economy) Fund(ctx context.Context, name string, credits units.Credits) error {
	if credits <= 0 {
		return fmt.Errorf("%w: fund %d credits: want a positive amount", api.ErrBadRequest, credits)
	}
	if _, err := e.cell(name); err != nil {
		return err
	}
	if st, _, _ := e.driver.Cell(name); st == life.Dead {
		return fmt.Errorf("%w: %s is dead", api.ErrConflict, name)
	}
	e.mu.Lock()
	e.fundSeq++
	key := "fund/cell:" + name + "/" + strconv.FormatInt(e.started.UnixNano(), 10) + "/" + strconv.FormatUint(e.fundSeq, 10)
	e.mu.Unlock()
	if err := e.lg.Fund(ctx, key, name, credits); err != nil {
		return apiError(err)
	}
	if err := e.driver.Fund(name, credits); err != nil {
		return apiError(err)
	}
	e.note(event.Event{Kind: event.Funded, Cell: name, Detail: fmt.Sprintf("%d credits", credits)})
	return nil
}

// Kill is the kill switch: the cell dies and its wallet is closed.
func (e *Economy) Kill(ctx context.Context, name string) error {
	if _, err := e.cell(name); err != nil {
		return err
	}
	if err := e.driver.Retire(ctx, name); err != nil {
		return apiError(err)
	}
	e.stopIncome(name)
	res, err := e.ledger.CloseWallet(ctx, "kill/cell:"+name, 0, name)
	if err != nil {
		return apiError(err)
	}
	e.note(event.Event{Kind: event.Killed, Cell: name, Detail: fmt.Sprintf("by an operator; final balance %d credits", res.Amount)})
	return nil
}

// Pause holds a cell frozen, bidding nothing and paying nothing.
func (e *Economy) Pause(ctx context.Context, name string) error {
	if _, err := e.cell(name); err != nil {
		return err
	}
	if err := e.driver.Hold(ctx, name, true); err != nil {
		return apiError(err)
	}
	e.note(event.Event{Kind: event.Paused, Cell: name, Detail: "paused by an operator"})
	return nil
}

// Resume lets a paused cell bid again; it runs when it wins.
func (e *Economy) Resume(ctx context.Context, name string) error {
	if _, err := e.cell(name); err != nil {
		return err
	}
	if err := e.driver.Hold(ctx, name, false); err != nil {
		return apiError(err)
	}
	e.note(event.Event{Kind: event.Resumed, Cell: name, Detail: "resumed by an operator: it runs when it wins a slot"})
	return nil
}
