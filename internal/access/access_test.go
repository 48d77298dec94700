package access

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/identity"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"
)

// books is an Economy of rows in memory: it records what reached it.
type books struct {
	cells  []api.Cell
	inCell map[int]string // pid → cell
	calls  []string
	spawns []api.SpawnRequest
}

func (b *books) State(context.Context) (api.State, error) {
	st := api.State{Cells: append([]api.Cell(nil), b.cells...)}
	for _, c := range b.cells {
		st.Events = append(st.Events, event.Event{Kind: event.Spawned, Cell: c.Name})
	}
	return st, nil
}

func (b *books) Spawn(_ context.Context, req api.SpawnRequest) (api.CellInfo, error) {
	b.calls = append(b.calls, "spawn")
	b.spawns = append(b.spawns, req)
	name := fmt.Sprintf("c%d", len(b.cells))
	b.cells = append(b.cells, api.Cell{Name: name, State: life.Running, OwnerUID: req.OwnerUID, Endowment: req.Wallet})
	return api.CellInfo{Name: name}, nil
}

func (b *books) Fund(_ context.Context, name string, c units.Credits) error {
	b.calls = append(b.calls, "fund "+name)
	return nil
}
func (b *books) Kill(_ context.Context, name string) error {
	b.calls = append(b.calls, "kill "+name)
	return nil
}
func (b *books) Pause(_ context.Context, name string) error {
	b.calls = append(b.calls, "pause "+name)
	return nil
}
func (b *books) Resume(_ context.Context, name string) error {
	b.calls = append(b.calls, "resume "+name)
	return nil
}
func (b *books) Set(_ context.Context, name string, req api.SetRequest) error {
	b.calls = append(b.calls, "set "+name)
	return nil
}
func (b *books) SetHost(_ context.Context, req api.HostRequest) error {
	b.calls = append(b.calls, "host")
	return nil
}
func (b *books) Logs(_ context.Context, name string, _ bool, _ io.Writer) error {
	b.calls = append(b.calls, "logs "+name)
	return nil
}
func (b *books) CellForPID(pid int) (string, bool) {
	n, ok := b.inCell[pid]
	return n, ok
}

const (
	aliceUID = 1001
	bobUID   = 1002
	agents   = 2000
)

func users(uid int) (identity.Identity, error) {
	switch uid {
	case aliceUID:
		return identity.Identity{Name: "alice", UID: uid, GID: uid, Groups: []int{uid, agents}}, nil
	case bobUID:
		return identity.Identity{Name: "bob", UID: uid, GID: uid, Groups: []int{uid}}, nil
	}
	return identity.Identity{}, fmt.Errorf("uid %d: %w", uid, identity.ErrUnknown)
}

func newControl(p Policy) (*Control, *books) {
	b := &books{inCell: map[int]string{}}
	c := New(b, p, nil)
	c.lookup = users
	return c, b
}

func as(uid, pid int) context.Context {
	return api.WithPeer(context.Background(), api.Peer{PID: pid, UID: uid, GID: uid})
}

func forbidden(t *testing.T, what string, err error, want string) {
	t.Helper()
	if !errors.Is(err, api.ErrForbidden) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v, want forbidden: …%s…", what, err, want)
	}
}

func TestNoCredentialsNoEntry(t *testing.T) {
	c, b := newControl(Default(-1))
	_, err := c.State(context.Background())
	forbidden(t, "state without a peer", err, "no kernel credentials")
	_, err = c.Spawn(context.Background(), api.SpawnRequest{Argv: []string{"x"}, Wallet: 1})
	forbidden(t, "spawn without a peer", err, "no kernel credentials")
	if len(b.calls) > 0 {
		t.Errorf("reached the economy: %v", b.calls)
	}
}

// TestCellSeesOnlyItself: a process inside a cell, even root's, reads its
// own row and events and may do nothing else.
func TestCellSeesOnlyItself(t *testing.T) {
	c, b := newControl(Default(-1))
	b.cells = []api.Cell{{Name: "attacker", OwnerUID: 0}, {Name: "victim", OwnerUID: 0}}
	b.inCell[4242] = "attacker"
	ctx := as(0, 4242)
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Cells) != 1 || st.Cells[0].Name != "attacker" || len(st.Events) != 1 || st.Events[0].Cell != "attacker" {
		t.Errorf("a cell saw %+v and events %+v, want its own row and events only", st.Cells, st.Events)
	}
	forbidden(t, "fund own wallet", c.Fund(ctx, "attacker", 1), "may only read its own wallet")
	forbidden(t, "kill", c.Kill(ctx, "victim"), "in cell attacker")
	forbidden(t, "pause", c.Pause(ctx, "victim"), "in cell attacker")
	forbidden(t, "resume", c.Resume(ctx, "attacker"), "in cell attacker")
	_, err = c.Spawn(ctx, api.SpawnRequest{Argv: []string{"x"}, Wallet: 1})
	forbidden(t, "spawn", err, "in cell attacker")
	if len(b.calls) > 0 {
		t.Errorf("reached the economy: %v", b.calls)
	}
	// A process that was in a cell when it connected stays a cell's,
	// though its PID is in none now (it exited, the PID went to another).
	gone := api.WithPeer(context.Background(), api.Peer{PID: 999, UID: 0, Cell: "attacker"})
	forbidden(t, "a reused PID", c.Kill(gone, "victim"), "in cell attacker")
}

func TestRoot(t *testing.T) {
	nobody := identity.Identity{Name: "nobody", UID: 65534}
	for _, tt := range []struct {
		name     string
		policy   Policy
		user     string
		wantUser string
	}{
		{"keeps root", Default(-1), "", ""},
		{"names a user", Default(-1), "4000", "4000"},
		{"the policy's default user", Policy{DefaultUser: &nobody}, "", "65534"},
		{"a named user beats the default", Policy{DefaultUser: &nobody}, "0", "0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, b := newControl(tt.policy)
			if _, err := c.Spawn(as(0, 1), api.SpawnRequest{Argv: []string{"x"}, Wallet: 1 << 60, TapRate: 1, User: tt.user}); err != nil {
				t.Fatal(err)
			}
			if got := b.spawns[0]; got.User != tt.wantUser || got.OwnerUID != 0 {
				t.Errorf("spawned as %q owned by %d, want %q owned by root", got.User, got.OwnerUID, tt.wantUser)
			}
			b.cells = append(b.cells, api.Cell{Name: "alices", OwnerUID: aliceUID})
			for _, err := range []error{c.Fund(as(0, 1), "alices", 5), c.Pause(as(0, 1), "alices"), c.Kill(as(0, 1), "alices")} {
				if err != nil {
					t.Errorf("root acting on another's cell: %v", err)
				}
			}
		})
	}
}

// TestDelegated: the members of a rule's group spawn as themselves within
// the rule's limits and act on their own cells only; others may not.
func TestDelegated(t *testing.T) {
	g := agents
	p := Policy{File: "policy.yaml", Rules: []Rule{{Group: &g, Name: "agents", MaxWallet: 100, MaxCells: 2, MaxTap: 0}}}
	c, b := newControl(p)
	alice := as(aliceUID, 10)
	spawn := func(req api.SpawnRequest) error {
		if req.Argv == nil {
			req.Argv = []string{"x"}
		}
		_, err := c.Spawn(alice, req)
		return err
	}
	if err := spawn(api.SpawnRequest{Wallet: 100}); err != nil {
		t.Fatalf("a spawn within the rule: %v", err)
	}
	if got := b.spawns[0]; got.User != "1001" || got.OwnerUID != aliceUID {
		t.Errorf("alice's cell runs as %q owned by %d, want 1001 owned by 1001", got.User, got.OwnerUID)
	}
	forbidden(t, "as root by name", spawn(api.SpawnRequest{Wallet: 1, User: "root"}), "only root may run cells as root")
	forbidden(t, "as root by UID", spawn(api.SpawnRequest{Wallet: 1, User: "0"}), "only root may run cells as root")
	forbidden(t, "as another user", spawn(api.SpawnRequest{Wallet: 1, User: "65534"}), "run_as does not name it")
	forbidden(t, "above max_wallet", spawn(api.SpawnRequest{Wallet: 101}), "max_wallet_credits 100")
	forbidden(t, "a tap", spawn(api.SpawnRequest{Wallet: 1, TapRate: 1}), "allows no tap")
	forbidden(t, "a container", spawn(api.SpawnRequest{Wallet: 1, OCIRootfs: "/srv/rootfs"}), "does not allow OCI")
	forbidden(t, "income", spawn(api.SpawnRequest{Wallet: 1, Income: &api.Income{Counter: "primes", CreditsPerUnit: 1}}), "only root may pay a cell income")
	if err := spawn(api.SpawnRequest{Wallet: 1}); err != nil {
		t.Fatalf("a second cell: %v", err)
	}
	forbidden(t, "a third cell", spawn(api.SpawnRequest{Wallet: 1}), "2 live cells")
	b.cells[0].State = life.Dead
	if err := spawn(api.SpawnRequest{Wallet: 1}); err != nil {
		t.Errorf("a dead cell does not count: %v", err)
	}

	b.cells = append(b.cells, api.Cell{Name: "roots", OwnerUID: 0})
	forbidden(t, "fund without fund: true", c.Fund(alice, "c1", 1), "does not allow funding")
	forbidden(t, "kill another's", c.Kill(alice, "roots"), "not theirs")
	forbidden(t, "pause another's", c.Pause(alice, "roots"), "not theirs")
	if err := c.Pause(alice, "c1"); err != nil {
		t.Errorf("pause own: %v", err)
	}
	if err := c.Kill(alice, "nosuch"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("kill a cell that is not there: %v, want not found", err)
	}
	if _, err := c.State(alice); err != nil {
		t.Errorf("a delegated user reads the state: %v", err)
	}

	bob := as(bobUID, 11)
	_, err := c.State(bob)
	forbidden(t, "bob, in no rule", err, "bob (uid 1002) may not use this daemon")
	_, err = c.State(as(4444, 12))
	forbidden(t, "a UID the host does not know", err, "no such user")
}

func TestDelegatedFund(t *testing.T) {
	g := agents
	p := Policy{File: "p", Rules: []Rule{{Group: &g, Name: "agents", MaxWallet: 100, MaxCells: 5, Fund: true}}}
	c, b := newControl(p)
	alice := as(aliceUID, 10)
	b.cells = []api.Cell{{Name: "mine", OwnerUID: aliceUID, Endowment: 60}}
	if err := c.Fund(alice, "mine", 40); err != nil {
		t.Errorf("fund up to max_wallet: %v", err)
	}
	forbidden(t, "fund beyond max_wallet", c.Fund(alice, "mine", 41), "endowment (60) above")
	forbidden(t, "an overflowing amount", c.Fund(alice, "mine", 1<<62), "above")
}

func TestUserRuleAndRunAs(t *testing.T) {
	u := bobUID
	p := Policy{File: "p", Rules: []Rule{{User: &u, Name: "bob", MaxWallet: 10, MaxCells: 1, RunAs: []identity.Identity{{Name: "nobody", UID: 65534}}}}}
	c, b := newControl(p)
	if _, err := c.Spawn(as(bobUID, 3), api.SpawnRequest{Argv: []string{"x"}, Wallet: 10, User: "65534"}); err != nil {
		t.Fatalf("run as a run_as user: %v", err)
	}
	if got := b.spawns[0]; got.User != "65534" || got.OwnerUID != bobUID {
		t.Errorf("runs as %q owned by %d, want 65534 owned by bob", got.User, got.OwnerUID)
	}
	// The rule is bob's, not alice's, though alice is in groups.
	_, err := c.State(as(aliceUID, 4))
	forbidden(t, "alice under bob's rule", err, "may not use this daemon")
}

func TestParse(t *testing.T) {
	good := `
default_user: nobody
rules:
  - user: nobody
    max_wallet_credits: 1000
    max_cells: 3
    max_tap_credits_per_second: 10
    fund: true
    oci: true
  - group: nogroup
    max_wallet_credits: 5
    max_cells: 1
`
	p, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultUser == nil || p.DefaultUser.Name != "nobody" || len(p.Rules) != 2 {
		t.Fatalf("parsed %+v", p)
	}
	r := p.Rules[0]
	if r.User == nil || *r.User != 65534 || r.MaxWallet != 1000 || r.MaxCells != 3 || r.MaxTap != 10 || !r.Fund || !r.OCI {
		t.Errorf("rule 0 = %+v", r)
	}
	if g := p.Rules[1]; g.Group == nil || g.Fund || g.OCI || g.MaxTap != 0 {
		t.Errorf("rule 1 = %+v", g)
	}
	for _, tt := range []struct{ name, doc, want string }{
		{"a misspelt key", "rules:\n  - user: nobody\n    max_walet_credits: 5\n    max_cells: 1\n", "max_walet_credits"},
		{"no wallet cap", "rules:\n  - user: nobody\n    max_cells: 1\n", "max_wallet_credits must be given"},
		{"no cell cap", "rules:\n  - user: nobody\n    max_wallet_credits: 1\n", "max_cells must be given"},
		{"user and group", "rules:\n  - user: nobody\n    group: nogroup\n    max_wallet_credits: 1\n    max_cells: 1\n", "exactly one of user and group"},
		{"neither", "rules:\n  - max_wallet_credits: 1\n    max_cells: 1\n", "exactly one of user and group"},
		{"an unknown user", "rules:\n  - user: no-such-user-mx\n    max_wallet_credits: 1\n    max_cells: 1\n", "no-such-user-mx"},
		{"an unknown group", "rules:\n  - group: no-such-group-mx\n    max_wallet_credits: 1\n    max_cells: 1\n", "no-such-group-mx"},
		{"run as root", "rules:\n  - user: nobody\n    max_wallet_credits: 1\n    max_cells: 1\n    run_as: [root]\n", "run cells as root"},
		{"a rule for root", "rules:\n  - user: root\n    max_wallet_credits: 1\n    max_cells: 1\n", "root needs no rule"},
		{"a negative tap", "rules:\n  - user: nobody\n    max_wallet_credits: 1\n    max_cells: 1\n    max_tap_credits_per_second: -1\n", "negative"},
		{"not YAML", "rules: [", "invalid policy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
	if p, err := Parse(nil); err != nil || len(p.Rules) != 0 {
		t.Errorf("an empty file: %+v, %v", p, err)
	}
}

func TestLoad(t *testing.T) {
	p, err := Load(t.TempDir()+"/none.yaml", 77)
	if err != nil || p.File != "" || len(p.Rules) != 1 || *p.Rules[0].Group != 77 || !p.Rules[0].Unlimited || p.Delegates() {
		t.Errorf("a missing file: %+v, %v; want the default of group 77", p, err)
	}
	if _, err := Load(t.TempDir(), -1); err == nil {
		t.Errorf("a directory as the policy loaded")
	}
}

// adopting is books that adopt.
type adopting struct{ *books }

func (a adopting) Adopt(_ context.Context, req api.AdoptRequest) (api.CellInfo, error) {
	a.calls = append(a.calls, "adopt "+req.Name)
	a.cells = append(a.cells, api.Cell{Name: req.Name, OwnerUID: -1})
	return api.CellInfo{Name: req.Name}, nil
}

// TestAdoptRootOnly: only root outside every cell adopts; nobody else
// may, not even a member of an unlimited group, and nobody but root acts
// on an adopted cell. An economy that cannot adopt says so.
func TestAdoptRootOnly(t *testing.T) {
	b := &books{inCell: map[int]string{4242: "c0"}}
	c := New(adopting{b}, Default(agents), nil)
	c.lookup = users
	req := api.AdoptRequest{Name: "default/web", Cgroup: "/kubepods/podx", Wallet: 10}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want string // refusal; "" for allowed
	}{
		{"alice in the unlimited group", as(aliceUID, 100), "only root may adopt"},
		{"bob with no rule", as(bobUID, 101), "no rule of the policy"},
		{"root inside a cell", as(0, 4242), "is in cell c0"},
		{"no credentials", context.Background(), "no kernel credentials"},
		{"root", as(0, 1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(b.calls)
			_, err := c.Adopt(tc.ctx, req)
			if tc.want == "" {
				if err != nil || len(b.calls) != before+1 || b.calls[before] != "adopt default/web" {
					t.Fatalf("root's adopt: %v, calls %v", err, b.calls)
				}
				return
			}
			forbidden(t, tc.name, err, tc.want)
			if len(b.calls) != before {
				t.Errorf("reached the economy: %v", b.calls[before:])
			}
		})
	}
	for _, verb := range []string{"fund", "kill", "pause", "resume"} {
		ctx := as(aliceUID, 100)
		var err error
		switch verb {
		case "fund":
			err = c.Fund(ctx, "default/web", 5)
		case "kill":
			err = c.Kill(ctx, "default/web")
		case "pause":
			err = c.Pause(ctx, "default/web")
		case "resume":
			err = c.Resume(ctx, "default/web")
		}
		forbidden(t, "alice "+verb+"s the adopted cell", err, "not theirs")
	}
	plain, _ := newControl(Default(-1))
	if _, err := plain.Adopt(as(0, 1), req); !errors.Is(err, api.ErrUnsupported) {
		t.Errorf("adopt on an economy that does not adopt: %v; want unsupported", err)
	}
}

// TestLiveChanges: root changes any cell's terms and the host's limits; a
// delegated caller only their own cells', a tap within their rule, and
// never the host's; a cell nothing.
func TestLiveChanges(t *testing.T) {
	g := agents
	c, b := newControl(Policy{File: "p", Rules: []Rule{{Group: &g, Name: "agents", MaxWallet: 100, MaxCells: 5, MaxTap: 10}}})
	b.cells = []api.Cell{{Name: "mine", OwnerUID: aliceUID}, {Name: "roots", OwnerUID: 0}}
	b.inCell[77] = "mine"
	alice := as(aliceUID, 10)
	five, fifty := units.Credits(5), units.Credits(50)
	sp := 50.0
	if err := c.Set(alice, "mine", api.SetRequest{TapRate: &five}); err != nil {
		t.Errorf("a tap within the rule: %v", err)
	}
	forbidden(t, "a tap above the rule", c.Set(alice, "mine", api.SetRequest{TapRate: &fifty}), "max_tap_credits_per_second 10")
	forbidden(t, "another's cell", c.Set(alice, "roots", api.SetRequest{MaxBid: &five}), "not theirs")
	forbidden(t, "the host", c.SetHost(alice, api.HostRequest{SetpointCelsius: &sp}), "only root")
	forbidden(t, "from a cell", c.Set(as(0, 77), "mine", api.SetRequest{TapRate: &five}), "in cell mine")
	if err := c.SetHost(as(0, 1), api.HostRequest{SetpointCelsius: &sp}); err != nil {
		t.Errorf("root sets the host: %v", err)
	}
	if err := c.Set(as(0, 1), "roots", api.SetRequest{TapRate: &fifty}); err != nil {
		t.Errorf("root sets a tap: %v", err)
	}
	forbidden(t, "another's log", c.Logs(alice, "roots", false, io.Discard), "not theirs")
	if err := c.Logs(alice, "mine", false, io.Discard); err != nil {
		t.Errorf("alice reads her log: %v", err)
	}
	if want := []string{"set mine", "host", "set roots", "logs mine"}; !slices.Equal(b.calls, want) {
		t.Errorf("reached the economy: %v, want %v", b.calls, want)
	}
}
