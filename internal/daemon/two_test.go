package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/life"
)

// TestTwoDaemons: a second daemon on other sockets but the same cgroup
// parent refuses to start, with a clear error, and the first one's cell
// lives on; on a parent of its own it runs beside the first.
func TestTwoDaemons(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	first := start(t, t.TempDir())
	defer first.stop(t)
	c, err := api.Dial(first.opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	info, err := c.Spawn(ctx, api.SpawnRequest{Name: "survivor", Argv: []string{"/bin/sleep", "300"}, Wallet: 1_000_000, MaxBid: 1, Units: 1})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	second := first.opts
	second.ControlSocket = filepath.Join(dir, "control.sock")
	second.Economy.AgentSocket = filepath.Join(dir, "agent.sock")
	second.Economy.LedgerPath = filepath.Join(dir, "ledger.db")
	second.MetricsAddr, second.Ready = "", nil
	err = Run(ctx, second)
	if !errors.Is(err, cell.ErrParentBusy) {
		t.Fatalf("a second daemon on the same cgroup parent: %v, want ErrParentBusy", err)
	}
	t.Logf("refused: %v", err)
	for _, p := range []string{second.ControlSocket, second.Economy.AgentSocket} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the refused daemon left %s behind", p)
		}
	}
	if err := syscall.Kill(info.PID, 0); err != nil {
		t.Errorf("the first daemon's cell (pid %d) died: %v", info.PID, err)
	}
	if st, err := c.State(ctx); err != nil {
		t.Fatal(err)
	} else if cl, _ := cellOf(st, "survivor"); cl.State == life.Dead {
		t.Errorf("the first daemon's cell is dead: %+v", cl)
	}

	// On a parent of its own, the second runs beside the first.
	second.Economy.CellParent += "-second"
	ready := make(chan struct{})
	second.Ready = func() { close(ready) }
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(sctx, second) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("a second daemon on its own parent: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the second daemon is not ready after 20 s")
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("second daemon: %v", err)
	}
	if err := syscall.Kill(info.PID, 0); err != nil {
		t.Errorf("the first daemon's cell died when the second stopped: %v", err)
	}
}

// TestFailedStartLeavesNothing: a daemon whose socket group does not exist
// refuses to start before it creates anything.
func TestFailedStartLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	opts := Options{ControlSocket: filepath.Join(dir, "control.sock"), Group: "no-such-group-mxtest"}
	opts.Economy.AgentSocket = filepath.Join(dir, "agent.sock")
	opts.Economy.LedgerPath = filepath.Join(dir, "ledger.db")
	opts.Economy.CPUs = []int{0}
	if err := Run(context.Background(), opts); err == nil {
		t.Fatal("a daemon with an unknown group started")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("a failed start left %v behind", names)
	}
}

// TestConcurrentSpawnsGetNames: spawns of one program at once, without
// names, all succeed, each under a name of its own.
func TestConcurrentSpawnsGetNames(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	r := start(t, t.TempDir())
	defer r.stop(t)
	const n = 8
	names := make(chan string, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			c, err := api.Dial(r.opts.ControlSocket)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			info, err := c.Spawn(context.Background(), api.SpawnRequest{Argv: []string{"/bin/sleep", "300"}, Wallet: 1_000_000, MaxBid: 1, Units: 1})
			if err != nil {
				errs <- err
				return
			}
			names <- info.Name
		}()
	}
	seen := map[string]bool{}
	for range n {
		select {
		case name := <-names:
			if seen[name] {
				t.Errorf("two cells named %s", name)
			}
			seen[name] = true
		case err := <-errs:
			t.Errorf("a concurrent spawn failed: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("spawns did not return in 30 s")
		}
	}
	t.Logf("names: %v", seen)
}
