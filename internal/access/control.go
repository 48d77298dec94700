package access

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/identity"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Economy is what Control guards: the control API's backend, which can
// also say which cell a process is in.
type Economy interface {
	api.Backend
	// CellForPID returns the cell whose tasks include pid.
	CellForPID(pid int) (name string, ok bool)
}

// Control is an api.Backend that lets through only what its policy
// allows the caller: see the package documentation.
type Control struct {
	e      Economy
	policy atomic.Pointer[Policy] // replaced whole by SetPolicy
	log    *slog.Logger
	// lookup resolves a caller's UID; identity.LookupUID but for tests.
	lookup func(uid int) (identity.Identity, error)

	// mu serialises delegated spawns and funds with the checks of their
	// limits, so two calls at once cannot both fit under one cap.
	mu sync.Mutex
	// quiet bounds the refusals logged at info level to one a second
	// (every refusal is also logged at debug by the API server).
	quiet rate.Sometimes
}

var (
	_ api.Backend = (*Control)(nil)
	_ api.Adopter = (*Control)(nil)
)

// New returns a Control applying p to calls on e. log receives refusals;
// nil discards them.
func New(e Economy, p Policy, log *slog.Logger) *Control {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Control{e: e, log: log, lookup: identity.LookupUID, quiet: rate.Sometimes{Interval: time.Second}}
	c.SetPolicy(p)
	return c
}

// SetPolicy replaces the policy, for the calls from now on (a daemon's
// SIGHUP).
func (c *Control) SetPolicy(p Policy) { c.policy.Store(&p) }

// Policy returns the policy in force.
func (c *Control) Policy() Policy { return *c.policy.Load() }

// caller is who is calling, as the kernel says.
type caller struct {
	peer api.Peer
	// cell is the caller's cell, if it is inside one.
	cell string
	root bool
	id   identity.Identity
	rule Rule
}

// who identifies the caller of ctx. Only a caller the kernel vouches for,
// inside no cell, passes; an in-cell caller is returned with cell set
// (and an error for anything but State).
func (c *Control) who(ctx context.Context) (caller, error) {
	peer, ok := api.PeerOf(ctx)
	if !ok {
		return caller{}, c.refuse(caller{}, "the connection carries no kernel credentials (not a Unix socket)")
	}
	w := caller{peer: peer}
	// In a cell when it connected (api.Options.CellOf), or now.
	if peer.Cell != "" {
		w.cell = peer.Cell
		return w, nil
	}
	if name, in := c.e.CellForPID(peer.PID); in {
		w.cell = name
		return w, nil
	}
	if peer.UID == 0 {
		w.root = true
		return w, nil
	}
	id, err := c.lookup(peer.UID)
	if err != nil {
		return caller{}, c.refuse(w, "%v", err)
	}
	w.id = id
	policy := c.policy.Load()
	r, ok := policy.Match(id)
	if !ok {
		return caller{}, c.refuse(w, "%s may not use this daemon: no rule of the policy (%s) names the user or a group of theirs", id, policy.Describe())
	}
	w.rule = r
	return w, nil
}

// outside is who, refusing a caller inside a cell.
func (c *Control) outside(ctx context.Context, what string) (caller, error) {
	w, err := c.who(ctx)
	if err != nil {
		return w, err
	}
	if w.cell != "" {
		return w, c.refuse(w, "pid %d is in cell %s: a cell may only read its own wallet, not %s", w.peer.PID, w.cell, what)
	}
	return w, nil
}

// refuse returns an error wrapping api.ErrForbidden and logs it.
func (c *Control) refuse(w caller, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	c.quiet.Do(func() { c.log.Info("control request refused", "peer", w.peer.String(), "why", msg) })
	c.log.Debug("control request refused", "peer", w.peer.String(), "why", msg)
	return fmt.Errorf("%w: %s", api.ErrForbidden, msg)
}

// State implements api.Backend. A caller inside a cell sees its own row
// and its own events only.
func (c *Control) State(ctx context.Context) (api.State, error) {
	w, err := c.who(ctx)
	if err != nil {
		return api.State{}, err
	}
	st, err := c.e.State(ctx)
	if err != nil || w.cell == "" {
		return st, err
	}
	own := st.Cells[:0:0]
	for _, cl := range st.Cells {
		if cl.Name == w.cell {
			own = append(own, cl)
		}
	}
	st.Cells = own
	evs := st.Events[:0:0]
	for _, ev := range st.Events {
		if ev.Cell == w.cell {
			evs = append(evs, ev)
		}
	}
	st.Events = evs
	return st, nil
}

// Spawn implements api.Backend: root's cells run as the request's user,
// else the policy's default user, else root; a delegated caller's run as
// themselves or a user their rule names, within its limits.
func (c *Control) Spawn(ctx context.Context, req api.SpawnRequest) (api.CellInfo, error) {
	w, err := c.outside(ctx, "spawn cells")
	if err != nil {
		return api.CellInfo{}, err
	}
	req.OwnerUID = w.peer.UID
	if w.root {
		if p := c.policy.Load(); req.User == "" && p.DefaultUser != nil {
			req.User = strconv.Itoa(p.DefaultUser.UID)
		}
		return c.e.Spawn(ctx, req)
	}
	as := w.id
	if req.User != "" {
		if as, err = identity.Lookup(req.User); err != nil {
			return api.CellInfo{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
		}
	}
	if err := c.mayRunAs(w, as); err != nil {
		return api.CellInfo{}, err
	}
	req.User = strconv.Itoa(as.UID)
	r := w.rule
	if !r.Unlimited {
		switch {
		case req.Wallet > r.MaxWallet:
			return api.CellInfo{}, c.refuse(w, "a wallet of %d credits is above %s's max_wallet_credits %d", req.Wallet, r, r.MaxWallet)
		case req.TapRate > r.MaxTap:
			if r.MaxTap == 0 {
				return api.CellInfo{}, c.refuse(w, "%s allows no tap: a tap is income without end", r)
			}
			return api.CellInfo{}, c.refuse(w, "a tap of %d credits/s is above %s's max_tap_credits_per_second %d", req.TapRate, r, r.MaxTap)
		case req.OCIRootfs != "" && !r.OCI:
			return api.CellInfo{}, c.refuse(w, "%s does not allow OCI containers", r)
		}
	}
	if req.Income != nil {
		return api.CellInfo{}, c.refuse(w, "only root may pay a cell income: it mints money")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !r.Unlimited {
		st, err := c.e.State(ctx)
		if err != nil {
			return api.CellInfo{}, err
		}
		n := 0
		for _, cl := range st.Cells {
			if cl.OwnerUID == w.peer.UID && cl.State != life.Dead {
				n++
			}
		}
		if n >= r.MaxCells {
			return api.CellInfo{}, c.refuse(w, "%s already has %d live cells, %s's max_cells", w.id, n, r)
		}
	}
	return c.e.Spawn(ctx, req)
}

// mayRunAs checks that a delegated caller may run a cell as id.
func (c *Control) mayRunAs(w caller, id identity.Identity) error {
	if id.UID == w.id.UID {
		return nil
	}
	if id.UID == 0 {
		return c.refuse(w, "only root may run cells as root")
	}
	for _, r := range w.rule.RunAs {
		if r.UID == id.UID {
			return nil
		}
	}
	return c.refuse(w, "%s may not run cells as %s: %s's run_as does not name it", w.id, id, w.rule)
}

// own checks that a delegated caller owns the named cell, and returns its
// row.
func (c *Control) own(ctx context.Context, w caller, name, what string) (api.Cell, error) {
	st, err := c.e.State(ctx)
	if err != nil {
		return api.Cell{}, err
	}
	for _, cl := range st.Cells {
		if cl.Name == name {
			if cl.OwnerUID != w.peer.UID {
				return api.Cell{}, c.refuse(w, "%s may not %s %s: the cell is not theirs", w.id, what, name)
			}
			return cl, nil
		}
	}
	return api.Cell{}, fmt.Errorf("%w: %s", api.ErrNotFound, name)
}

// Fund implements api.Backend: a delegated caller may fund their own
// cells where the rule allows, keeping the endowment within max_wallet.
func (c *Control) Fund(ctx context.Context, name string, credits units.Credits) error {
	w, err := c.outside(ctx, "fund wallets")
	if err != nil {
		return err
	}
	if w.root {
		return c.e.Fund(ctx, name, credits)
	}
	r := w.rule
	if !r.Unlimited && !r.Fund {
		return c.refuse(w, "%s does not allow funding (fund: true)", r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, err := c.own(ctx, w, name, "fund")
	if err != nil {
		return err
	}
	if !r.Unlimited && (credits > r.MaxWallet || cl.Endowment > r.MaxWallet-credits) {
		return c.refuse(w, "funding %s with %d credits would take its endowment (%d) above %s's max_wallet_credits %d", name, credits, cl.Endowment, r, r.MaxWallet)
	}
	return c.e.Fund(ctx, name, credits)
}

// act lets root act on any cell and a delegated caller on their own.
func (c *Control) act(ctx context.Context, name, what string, f func(context.Context, string) error) error {
	w, err := c.outside(ctx, what+" cells")
	if err != nil {
		return err
	}
	if !w.root {
		if _, err := c.own(ctx, w, name, what); err != nil {
			return err
		}
	}
	return f(ctx, name)
}

// Kill implements api.Backend.
func (c *Control) Kill(ctx context.Context, name string) error {
	return c.act(ctx, name, "kill", c.e.Kill)
}

// Pause implements api.Backend.
func (c *Control) Pause(ctx context.Context, name string) error {
	return c.act(ctx, name, "pause", c.e.Pause)
}

// Resume implements api.Backend.
func (c *Control) Resume(ctx context.Context, name string) error {
	return c.act(ctx, name, "resume", c.e.Resume)
}

// Adopt implements api.Adopter: only root, outside every cell, may put a
// cgroup that someone else made under the economy. An adopted cell is
// nobody's but root's (its OwnerUID is -1), so delegated users can neither
// adopt nor act on one. An economy that does not adopt answers
// api.ErrUnsupported.
func (c *Control) Adopt(ctx context.Context, req api.AdoptRequest) (api.CellInfo, error) {
	w, err := c.outside(ctx, "adopt cgroups")
	if err != nil {
		return api.CellInfo{}, err
	}
	if !w.root {
		return api.CellInfo{}, c.refuse(w, "only root may adopt a cgroup: its processes are not %s's to govern", w.id)
	}
	a, ok := c.e.(api.Adopter)
	if !ok {
		return api.CellInfo{}, fmt.Errorf("%w: this daemon does not adopt cgroups", api.ErrUnsupported)
	}
	return a.Adopt(ctx, req)
}

// Set implements api.Backend: root may change any cell's terms; a
// delegated caller their own cells', and a tap only as their rule allows
// one at spawn.
func (c *Control) Set(ctx context.Context, name string, req api.SetRequest) error {
	w, err := c.outside(ctx, "change cells' terms")
	if err != nil {
		return err
	}
	if !w.root {
		if _, err := c.own(ctx, w, name, "change the terms of"); err != nil {
			return err
		}
		if r := w.rule; !r.Unlimited && req.TapRate != nil && *req.TapRate > r.MaxTap {
			if r.MaxTap == 0 {
				return c.refuse(w, "%s allows no tap: a tap is income without end", r)
			}
			return c.refuse(w, "a tap of %d credits/s is above %s's max_tap_credits_per_second %d", *req.TapRate, r, r.MaxTap)
		}
	}
	return c.e.Set(ctx, name, req)
}

// SetHost implements api.Backend: only root may change the host's limits.
func (c *Control) SetHost(ctx context.Context, req api.HostRequest) error {
	w, err := c.outside(ctx, "change the host's limits")
	if err != nil {
		return err
	}
	if !w.root {
		return c.refuse(w, "only root may change the host's limits")
	}
	return c.e.SetHost(ctx, req)
}

// Logs implements api.Backend: root reads any cell's log, a delegated
// caller their own cells'; a cell none.
func (c *Control) Logs(ctx context.Context, name string, follow bool, w io.Writer) error {
	who, err := c.outside(ctx, "read cells' logs")
	if err != nil {
		return err
	}
	if !who.root {
		if _, err := c.own(ctx, who, name, "read the log of"); err != nil {
			return err
		}
	}
	return c.e.Logs(ctx, name, follow, w)
}
