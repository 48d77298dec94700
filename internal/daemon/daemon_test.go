package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

func TestMain(m *testing.M) {
	cell.RunShimIfRequested()
	if os.Getenv(envSpinner) == "1" {
		spinnerAgent()
	}
	os.Exit(m.Run())
}

type running struct {
	opts   Options
	cancel context.CancelFunc
	done   chan error
}

// testOptions are a daemon's options on private sockets, ledger and
// cgroup parent in dir, with metrics on a free loopback port.
func testOptions(t *testing.T, dir string) Options {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	return Options{
		MetricsAddr:   metricsAddr,
		ControlSocket: filepath.Join(dir, "control.sock"),
		Economy: economy.Options{
			// A parent of its own: the daemon sweeps its parent at start,
			// and other packages' tests keep cells under the default one.
			CellParent: "maxwell-test-daemon-" + strconv.Itoa(os.Getpid()),
			Config:     config.Default(), Roots: sensors.HostRoots(), CgroupRoot: "/sys/fs/cgroup",
			AgentSocket: filepath.Join(dir, "agent.sock"),
			LedgerPath:  filepath.Join(dir, "ledger.db"), CPUs: []int{0},
		},
	}
}

func start(t *testing.T, dir string, adjust ...func(*Options)) *running {
	t.Helper()
	ready := make(chan struct{})
	opts := testOptions(t, dir)
	opts.Ready = func() { close(ready) }
	for _, f := range adjust {
		f(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{opts: opts, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, opts) }()
	select {
	case <-ready:
	case err := <-r.done:
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon not ready after 20 s")
	}
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("daemon stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop within 30 s")
	}
}

func waitState(t *testing.T, c *api.Client, what string, ok func(api.State) bool) api.State {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := c.State(context.Background())
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last state %+v, err %v)", what, st.Cells, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cellOf(st api.State, name string) (api.Cell, bool) {
	for _, c := range st.Cells {
		if c.Name == name {
			return c, true
		}
	}
	return api.Cell{}, false
}

func TestDaemonLifecycle(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	dir := t.TempDir()
	r := start(t, dir)
	ctx := context.Background()
	c, err := api.Dial(r.opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// A second daemon on the same socket refuses to start.
	second := r.opts
	second.Ready = nil
	if err := Run(ctx, second); !errors.Is(err, api.ErrRunning) {
		t.Errorf("second daemon: %v, want ErrRunning", err)
	}

	// A budgeted program: it bids 2× the slot energy for one slot.
	slot := units.Credits(759375)
	info, err := c.Spawn(ctx, api.SpawnRequest{Name: "spinner", Argv: []string{"/bin/sh", "-c", "while :; do :; done"},
		Wallet: 1_000_000_000, MaxBid: 2 * slot, Units: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := waitState(t, c, "the spinner running and paying", func(s api.State) bool {
		cl, ok := cellOf(s, "spinner")
		return ok && cl.State == life.Running && cl.Paid > 0
	})

	// Prometheus sees the same economy.
	resp, err := http.Get("http://" + r.opts.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	for _, name := range []string{"maxwell_temperature_celsius", "maxwell_reserve_price_credits", "maxwell_agent_balance_credits", "maxwell_agent_paid_credits_total", "maxwell_apoptosis_total"} {
		if _, ok := families[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	if f := families["maxwell_agent_balance_credits"]; f != nil {
		var found bool
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == "agent" && l.GetValue() == "spinner")
			}
		}
		if !found {
			t.Error("no balance for the spinner in the metrics")
		}
	}
	sp, _ := cellOf(st, "spinner")
	if sp.Balance >= 1_000_000_000 || sp.PID != info.PID {
		t.Errorf("spinner row %+v", sp)
	}
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "spinner", Argv: []string{"/bin/true"}, Wallet: 1}); !errors.Is(err, api.ErrExists) {
		t.Errorf("duplicate spawn: %v", err)
	}

	// Operator controls.
	if err := c.Pause(ctx, "spinner"); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "the spinner held", func(s api.State) bool {
		cl, _ := cellOf(s, "spinner")
		return cl.State == life.Paused && cl.BidUnits == 0
	})
	if err := c.Resume(ctx, "spinner"); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "the spinner running again", func(s api.State) bool {
		cl, _ := cellOf(s, "spinner")
		return cl.State == life.Running
	})
	before, _ := cellOf(waitState(t, c, "state", func(api.State) bool { return true }), "spinner")
	if err := c.Fund(ctx, "spinner", 5_000_000_000); err != nil {
		t.Fatal(err)
	}
	after, _ := cellOf(waitState(t, c, "state", func(api.State) bool { return true }), "spinner")
	if after.Balance < before.Balance+4_000_000_000 {
		t.Errorf("fund: balance %d → %d", before.Balance, after.Balance)
	}
	if err := c.Fund(ctx, "nobody", 5); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("fund nobody: %v", err)
	}

	// A program that cannot pay dies: apoptosis.
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "pauper", Argv: []string{"/bin/sh", "-c", "while :; do :; done"},
		Wallet: slot, MaxBid: 3 * slot, Units: 1}); err != nil {
		t.Fatal(err)
	}
	st = waitState(t, c, "the pauper's apoptosis", func(s api.State) bool {
		cl, _ := cellOf(s, "pauper")
		return cl.State == life.Dead && s.Apoptoses >= 1
	})
	pp, _ := cellOf(st, "pauper")
	if err := syscall.Kill(pp.PID, 0); err == nil {
		t.Errorf("the pauper (pid %d) is dead in the books but alive", pp.PID)
	}

	// The kill switch.
	if err := c.Kill(ctx, "spinner"); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "the spinner dead", func(s api.State) bool {
		cl, _ := cellOf(s, "spinner")
		return cl.State == life.Dead
	})
	if err := syscall.Kill(info.PID, 0); err == nil {
		t.Errorf("killed spinner (pid %d) still alive", info.PID)
	}

	// One more, left running across a stop: stopping kills it and settles
	// its wallet; the ledger's books balance.
	last, err := c.Spawn(ctx, api.SpawnRequest{Name: "survivor", Argv: []string{"/bin/sleep", "300"}, Wallet: 1_000_000, MaxBid: 1, Units: 1})
	if err != nil {
		t.Fatal(err)
	}
	r.stop(t)
	if err := syscall.Kill(last.PID, 0); err == nil {
		t.Errorf("a cell (pid %d) outlived its daemon", last.PID)
	}
	l, err := ledger.Open(ctx, r.opts.Economy.LedgerPath, ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx)
	l.Close()
	if err != nil || !rep.OK || rep.OpenWallets != 0 {
		t.Errorf("ledger after stop: %+v %v", rep, err)
	}
	if _, err := c.State(ctx); !errors.Is(err, api.ErrNotRunning) {
		t.Errorf("state of a stopped daemon: %v, want ErrNotRunning", err)
	}

	// A restart continues the ledger's ticks and refuses reused names.
	r2 := start(t, dir)
	defer r2.stop(t)
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "spinner", Argv: []string{"/bin/true"}, Wallet: 1}); !errors.Is(err, api.ErrExists) {
		t.Errorf("a dead cell's name reused: %v", err)
	}
}

func TestDaemonSpawnsContainers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containers")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed (Debian package runc; .ci/run installs it)")
	}
	if _, err := os.Stat(oci.DefaultBusybox); err != nil {
		t.Skipf("%s is missing (Debian package busybox-static)", oci.DefaultBusybox)
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := (oci.RootFS{Busybox: oci.DefaultBusybox}).Build(context.Background(), rootfs); err != nil {
		t.Fatal(err)
	}
	r := start(t, dir)
	defer r.stop(t)
	c, err := api.Dial(r.opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := c.Spawn(ctx, api.SpawnRequest{Name: "boxed", Argv: []string{"/bin/sh", "-c", "while :; do :; done"},
		Wallet: 1_000_000_000, MaxBid: 2 * 759375, Units: 1, OCIRootfs: rootfs})
	if err != nil {
		t.Fatal(err)
	}
	if info.Backend != oci.Backend {
		t.Errorf("backend %q, want %q", info.Backend, oci.Backend)
	}
	waitState(t, c, "the container running and paying", func(s api.State) bool {
		cl, ok := cellOf(s, "boxed")
		return ok && cl.State == life.Running && cl.Paid > 0
	})
	if err := c.Kill(ctx, "boxed"); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "the container dead", func(s api.State) bool {
		cl, _ := cellOf(s, "boxed")
		return cl.State == life.Dead
	})
}
