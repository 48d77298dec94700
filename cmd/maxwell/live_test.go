package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
)

// TestLiveControl drives a real daemon from the CLI while it runs: pause
// and resume, a cell's standing bid and tap, the host's setpoint and power
// budget; each takes effect, shows in ps --json and is an event.
func TestLiveControl(t *testing.T) {
	c, _ := startDaemon(t)
	sock := c.Path()
	ctx := context.Background()
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "busy", Argv: []string{"/bin/sh", "-c", "while :; do :; done"}, Wallet: 1 << 40, MaxBid: 1_000_000, Units: 1, Dir: "/"}); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) string {
		t.Helper()
		out, stderr, err := runCtl(t, append(args[:1:1], append([]string{"--socket", sock}, args[1:]...)...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
		return out
	}
	state := func() api.State {
		st, err := c.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	await := func(what string, ok func(api.State) bool) api.State {
		t.Helper()
		for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
			if st := state(); ok(st) {
				return st
			}
			if time.Since(start) > 15*time.Second {
				t.Fatalf("%s: not within 15 s", what)
			}
		}
	}
	busy := func(st api.State) api.Cell { cl, _ := cellNamed(st, "busy"); return cl }

	if out := cli("pause", "busy"); out != "paused busy\n" {
		t.Errorf("pause printed %q", out)
	}
	await("paused", func(st api.State) bool { return busy(st).State == life.Paused })
	cli("resume", "busy")
	await("running again", func(st api.State) bool { return busy(st).State == life.Running })

	var setOut struct {
		Cell string `json:"cell"`
		Set  struct {
			MaxBid *int64 `json:"max_bid_credits"`
			Tap    *int64 `json:"tap_credits_per_second"`
		} `json:"set"`
	}
	if out := cli("set", "busy", "--max-bid", "3000000", "--units", "2", "--tap", "1000", "--cap", "5000000000000", "--json"); json.Unmarshal([]byte(out), &setOut) != nil ||
		setOut.Cell != "busy" || setOut.Set.MaxBid == nil || *setOut.Set.MaxBid != 3000000 || setOut.Set.Tap == nil || *setOut.Set.Tap != 1000 {
		t.Errorf("set --json printed %q", out)
	}
	st := await("new terms", func(st api.State) bool {
		b := busy(st)
		return b.TapRate == 1000 && b.BidPrice == 3000000 && b.BidUnits == 2
	})
	if b := busy(st); b.TapCap != 5_000_000_000_000 {
		t.Errorf("tap cap %d", b.TapCap)
	}

	if out := cli("host", "set", "--setpoint", "30", "--power-budget", "5", "--json"); !strings.Contains(out, `"setpoint_celsius": 30`) || !strings.Contains(out, `"power_budget_watts": 5`) {
		t.Errorf("host set --json printed %q", out)
	}
	st = await("the host's limits", func(st api.State) bool {
		return st.Temperature.Setpoint == 30 && st.PowerBudgetWatts == 5 && st.Binding != ""
	})
	t.Logf("binding %s at ×%.2f (%.1f °C, %.1f W)", st.Binding, st.Multiplier, st.Temperature.Celsius, st.Power.Watts)
	kinds := map[event.Kind]int{}
	for _, e := range st.Events {
		kinds[e.Kind]++
	}
	for _, k := range []event.Kind{event.Paused, event.Resumed, event.TermsChanged, event.HostChanged} {
		if kinds[k] == 0 {
			t.Errorf("no %s event", k)
		}
	}
	out := cli("kill", "busy", "--json")
	var res []struct {
		Cell string `json:"cell"`
		Done bool   `json:"done"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 || !res[0].Done {
		t.Errorf("kill --json: %q (%v)", out, err)
	}
	if _, _, err := runCtl(t, "set", "--socket", sock, "busy", "--tap", "5"); err == nil || !strings.Contains(err.Error(), "dead") {
		t.Errorf("set on a dead cell: %v", err)
	}
	if _, _, err := runCtl(t, "host", "set", "--socket", sock); err == nil || !strings.Contains(err.Error(), "nothing to change") {
		t.Errorf("host set without a flag: %v", err)
	}
}

// TestConfigCmd: config says which file won, and --json gives it.
func TestConfigCmd(t *testing.T) {
	f := t.TempDir() + "/c.yaml"
	os.WriteFile(f, []byte("engine:\n  setpoint_celsius: 61\n"), 0o644)
	out, _, err := run(t, "--config", f, "config", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		File   string
		Config struct {
			Engine struct{ SetpointCelsius float64 }
		}
	}
	if json.Unmarshal([]byte(out), &got); got.File != f || got.Config.Engine.SetpointCelsius != 61 {
		t.Errorf("config --json: %s", out)
	}
	if out, _, err := run(t, "--config", f, "config"); err != nil || !strings.HasPrefix(out, "# "+f+" on top of the embedded defaults") || !strings.Contains(out, "setpoint_celsius: 61") {
		t.Errorf("config: %v\n%s", err, out)
	}
}

// TestCellLogs: a cell's output reaches `maxwell logs`, and -f follows it
// as it is written.
func TestCellLogs(t *testing.T) {
	c, _ := startDaemon(t)
	ctx := context.Background()
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "talker", Argv: []string{"/bin/sh", "-c", "i=0; while :; do echo line $i; echo err $i >&2; i=$((i+1)); sleep 0.05; done"},
		Wallet: 1 << 40, MaxBid: 1_000_000, Units: 1, Dir: "/"}); err != nil {
		t.Fatal(err)
	}
	var out string
	for start := time.Now(); !strings.Contains(out, "line 3"); time.Sleep(100 * time.Millisecond) {
		out, _, _ = runCtl(t, "logs", "--socket", c.Path(), "talker")
		if time.Since(start) > 15*time.Second {
			t.Fatalf("logs: %q", out)
		}
	}
	// stdout and stderr are two pipes into one file: each line is whole,
	// but which of "line 0" and "err 0" comes first is the scheduler's.
	for _, want := range []string{"line 0\n", "err 0\n", "line 1\n", "err 1\n"} {
		if !strings.HasPrefix(out, want) && !strings.Contains(out, "\n"+want) {
			t.Errorf("logs lack the whole line %q: %q", want, out)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	var b syncBuffer
	if err := c.Logs(fctx, "talker", true, &b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	n := strings.Count(got, "\n")
	if n <= strings.Count(out, "\n") {
		t.Errorf("following gave %d lines, the first read %d: nothing new", n, strings.Count(out, "\n"))
	}
	if _, _, err := runCtl(t, "logs", "--socket", c.Path(), "nobody"); err == nil || !strings.Contains(err.Error(), "no such cell") {
		t.Errorf("logs of nobody: %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestReloadOnSIGHUP: a good configuration file is applied on SIGHUP (the
// setpoint moves, the event says so); a bad one is refused with the
// reason and the old one kept; so is a bad policy file.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cfg, pol := dir+"/config.yaml", dir+"/policy.yaml"
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(cfg, "engine:\n  setpoint_celsius: 55\n")
	c, _, proc := startDaemonProcess(t, "--config", cfg, "--policy", pol)
	ctx := context.Background()
	await := func(what string, ok func(api.State) bool) api.State {
		t.Helper()
		for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
			st, err := c.State(ctx)
			if err == nil && ok(st) {
				return st
			}
			if time.Since(start) > 15*time.Second {
				t.Fatalf("%s: not within 15 s (%v)", what, err)
			}
		}
	}
	events := func(st api.State, k event.Kind) (n int, last string) {
		for _, e := range st.Events {
			if e.Kind == k {
				n, last = n+1, e.Detail
			}
		}
		return n, last
	}
	write(cfg, "engine:\n  setpoint_celsius: 48\n  tick: 200ms\n")
	proc.Signal(syscall.SIGHUP)
	st := await("the new setpoint", func(st api.State) bool { return st.Temperature.Setpoint == 48 })
	if n, d := events(st, event.ConfigReloaded); n != 1 || !strings.Contains(d, "setpoint") || !strings.Contains(d, "engine.tick") {
		t.Errorf("config_reloaded ×%d: %q (want the setpoint applied, the tick kept until a restart)", n, d)
	}
	write(cfg, "engine:\n  setpoint_celsius: 40\n  setpont: 1\n")
	proc.Signal(syscall.SIGHUP)
	st = await("the refusal", func(st api.State) bool { n, _ := events(st, event.ConfigRefused); return n == 1 })
	if _, d := events(st, event.ConfigRefused); !strings.Contains(d, "setpont") || st.Temperature.Setpoint != 48 {
		t.Errorf("refused: %q, setpoint %v (want the old 48 kept)", d, st.Temperature.Setpoint)
	}
	write(cfg, "engine:\n  setpoint_celsius: 48\n  tick: 200ms\n")
	write(pol, "rules:\n  - user: nobody\n")
	proc.Signal(syscall.SIGHUP)
	st = await("the policy refusal", func(st api.State) bool { n, _ := events(st, event.ConfigRefused); return n == 2 })
	if _, d := events(st, event.ConfigRefused); !strings.Contains(d, "policy") || !strings.Contains(d, "max_wallet_credits") {
		t.Errorf("policy refused: %q", d)
	}
}
