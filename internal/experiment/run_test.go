package experiment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/clock/clocktest"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

// envAgent makes the test binary an agent that declares "primes" its
// useful work and reports them until killed.
const envAgent = "MAXWELL_EXPERIMENT_TEST_AGENT"

func TestMain(m *testing.M) {
	cell.RunShimIfRequested()
	if os.Getenv(envAgent) == "1" {
		os.Exit(testAgent())
	}
	os.Exit(m.Run())
}

func testAgent() int {
	ctx := context.Background()
	cfg := agent.FromEnv()
	cfg.Hello = proto.Hello{Kind: "test", Useful: &proto.Useful{Counter: "primes", Unit: "prime"}}
	c, err := agent.Dial(ctx, cfg)
	if err != nil {
		return 2
	}
	for n := uint64(1); ; n++ {
		if err := c.Report(ctx, map[string]uint64{"primes": 10 * n, "other": n}); err != nil {
			return 3
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openEconomy opens a real economy on a fake clock, with cells under a
// parent of its own.
func openEconomy(t *testing.T, policy engine.Policy) (*economy.Economy, *clocktest.Fake, context.CancelFunc, chan error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	dir := t.TempDir()
	clk := clocktest.New()
	econ, err := economy.Open(context.Background(), economy.Options{
		Config: config.Default(), Roots: sensors.HostRoots(), CgroupRoot: "/sys/fs/cgroup",
		CellParent:  "maxwell-test-experiment-" + strconv.Itoa(os.Getpid()),
		AgentSocket: filepath.Join(dir, "agent.sock"), LedgerPath: filepath.Join(dir, "ledger.db"),
		LogDir: filepath.Join(dir, "logs"), CPUs: []int{0}, Policy: policy, Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- econ.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("economy: %v", err)
		}
	})
	return econ, clk, cancel, done
}

// drive advances clk by step every real pause until stop is closed.
func drive(clk *clocktest.Fake, step, pause time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(pause)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			clk.Advance(step)
		}
	}
}

func TestRunOnTheEconomy(t *testing.T) {
	econ, clk, _, _ := openEconomy(t, engine.PolicyCFS)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	r := &Run{
		Kind: "test", Duration: 4 * time.Second, Interval: 500 * time.Millisecond,
		CPUs: []int{0}, ConnectTimeout: 2 * time.Second, Dir: dir, Clock: clk,
		Agents: []api.SpawnRequest{
			{Name: "worker", Argv: []string{exe}, Env: []string{envAgent + "=1"}, Wallet: 1},
			{Name: "crasher", Argv: []string{"/bin/sh", "-c", "exit 3"}, Wallet: 1},
			{Name: "silent", Argv: []string{"/bin/sleep", "300"}, Wallet: 1},
		},
	}
	stop := make(chan struct{})
	// 100 ms of the economy's clock every 40 ms: each 500 ms sample has
	// 200 ms of real time to be taken, even on a loaded host.
	go drive(clk, 100*time.Millisecond, 40*time.Millisecond, stop)
	sum, err := r.Execute(context.Background(), econ)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	run, err := record.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := config.Default().Engine.SetpointCelsius; float64(run.Meta.Setpoint) != want || want == 0 {
		t.Errorf("meta.json setpoint %v °C, want the economy's %v °C", run.Meta.Setpoint, want)
	}
	seen := map[string]string{}
	for _, e := range run.Events {
		seen[string(e.Kind)+"/"+e.Cell] = e.Detail
		if e.Elapsed < 0 || time.Duration(e.Elapsed) > 5*time.Second {
			t.Errorf("event %+v timed outside the run", e)
		}
	}
	if d, ok := seen["exited/crasher"]; !ok || !strings.Contains(d, "exit status 3") {
		t.Errorf("the crash is not recorded with its cause: %q (events %v)", d, seen)
	}
	for _, k := range []string{"spawned/worker", "agent_reporting/worker", "agent_silent/silent", "killed/silent", "killed/worker"} {
		if _, ok := seen[k]; !ok {
			t.Errorf("no %s event (events %v)", k, seen)
		}
	}
	// 4 s of the economy's clock at 500 ms: 8 samples, however long the
	// machine took.
	if sum.Samples != 8 || sum.DurationSeconds != 4 {
		t.Errorf("%d samples over %.2f s, want 8 over 4", sum.Samples, sum.DurationSeconds)
	}
	// The worker declared its primes its useful work; nobody else did.
	u, ok := sum.UsefulIn("prime")
	if !ok || u.Work == 0 || len(u.Agents) != 1 || u.Agents[0] != "worker" || len(sum.Useful) != 1 {
		t.Errorf("useful work %+v", sum.Useful)
	}
	// The baseline records no market and no wallets.
	if _, err := os.Stat(filepath.Join(dir, record.MarketFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cfs run wrote %s: %v", record.MarketFile, err)
	}
	st, err := econ.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Cells {
		if c.PID > 0 && c.Name == "silent" {
			if err := syscall.Kill(c.PID, 0); err == nil {
				t.Errorf("the silent agent (pid %d) outlived the run", c.PID)
			}
		}
	}
	if _, ok := seen[string(event.RunEnded)+"/"]; ok {
		t.Error("the run ended early though the worker was alive")
	}
}

func TestRunValidates(t *testing.T) {
	clk := clocktest.New()
	for name, r := range map[string]*Run{
		"no duration": {Interval: time.Second, CPUs: []int{0}, Agents: []api.SpawnRequest{{Name: "a"}}, Clock: clk},
		"no CPUs":     {Duration: time.Second, Interval: time.Second, Agents: []api.SpawnRequest{{Name: "a"}}, Clock: clk},
		"no agents":   {Duration: time.Second, Interval: time.Second, CPUs: []int{0}, Clock: clk},
		"no name":     {Duration: time.Second, Interval: time.Second, CPUs: []int{0}, Agents: []api.SpawnRequest{{}}, Clock: clk},
		"no clock":    {Duration: time.Second, Interval: time.Second, CPUs: []int{0}, Agents: []api.SpawnRequest{{Name: "a"}}},
	} {
		if _, err := r.Execute(context.Background(), nil); err == nil {
			t.Errorf("%s: Execute succeeded", name)
		}
	}
}
