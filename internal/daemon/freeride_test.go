package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/life"
)

// envSpinner makes the test binary an agent that says hello without
// bidding, reports, and burns CPU.
const envSpinner = "MAXWELL_DAEMON_TEST_SPINNER"

func spinnerAgent() {
	ctx := context.Background()
	cfg := agent.FromEnv()
	cfg.Hello = proto.Hello{Kind: "spinner"} // bidding: false
	c, err := agent.Dial(ctx, cfg)
	if err != nil {
		os.Exit(2)
	}
	go func() {
		for n := uint64(1); ; n++ {
			if c.Report(ctx, map[string]uint64{"spins": n}) != nil {
				os.Exit(3)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for {
	}
}

// frozen reads the kernel's own word on whether a cell's cgroup is frozen
// (cgroup.events of the v2 group, or freezer.state of the v1 freezer: a
// cell uses one of them), and its CPU time.
func frozen(t *testing.T, parent, name string) (bool, time.Duration) {
	t.Helper()
	any := false
	if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/unified", parent, name, "cgroup.events")); err == nil {
		any = any || strings.Contains(string(b), "frozen 1")
	} else if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parent, name, "cgroup.events")); err == nil {
		any = any || strings.Contains(string(b), "frozen 1")
	}
	if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", parent, name, "freezer.state")); err == nil {
		any = any || strings.TrimSpace(string(b)) == "FROZEN"
	}
	var cpu time.Duration
	if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", parent, name, "cpuacct.usage")); err == nil {
		ns, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		cpu = time.Duration(ns)
	} else if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parent, name, "cpu.stat")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
				us, _ := strconv.ParseInt(v, 10, 64)
				cpu = time.Duration(us) * time.Microsecond
			}
		}
	}
	return any, cpu
}

// TestNoFreeRides: a cell that does not bid — a program spawned without
// --max-bid, an agent whose hello says bidding: false — is frozen in the
// kernel, not just called paused, once its startup grace is over, and
// burns no CPU while it is.
func TestNoFreeRides(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := start(t, dir, func(o *Options) { o.Economy.Config.Engine.StartupGrace = time.Second })
	defer r.stop(t)
	c, err := api.Dial(r.opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "loop", Argv: []string{"/bin/sh", "-c", "while :; do :; done"}, Wallet: 1_000_000_000}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "silent-agent", Argv: []string{exe}, Env: []string{envSpinner + "=1"}, Wallet: 1_000_000_000}); err != nil {
		t.Fatal(err)
	}
	parent := r.opts.Economy.CellParent
	// The agent connects in its startup slot.
	waitState(t, c, "the silent agent's report", func(s api.State) bool {
		cl, _ := cellOf(s, "silent-agent")
		return cl.Counters["spins"] > 0
	})
	time.Sleep(1500 * time.Millisecond) // past the grace
	for _, name := range []string{"loop", "silent-agent"} {
		st := waitState(t, c, name+" paused", func(s api.State) bool {
			cl, _ := cellOf(s, name)
			return cl.State == life.Paused
		})
		cl, _ := cellOf(st, name)
		f, cpu0 := frozen(t, parent, name)
		if !f {
			t.Errorf("%s is %s in ps, but its cgroup is not frozen", name, cl.State)
		}
		time.Sleep(500 * time.Millisecond)
		if f, cpu1 := frozen(t, parent, name); !f || cpu1 != cpu0 {
			t.Errorf("%s burnt %v of CPU in 500 ms while paused (frozen %v)", name, cpu1-cpu0, f)
		}
		// What it burnt in its startup slot, it paid for.
		if cl.Paid <= 0 {
			t.Errorf("%s paid %d for its startup slot", name, cl.Paid)
		}
	}
}
