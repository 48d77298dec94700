package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/internal/hub"
)

func runAgentCmd(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newAgentCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err = cmd.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

func TestAgentStandaloneScientist(t *testing.T) {
	t.Setenv(agent.EnvSocket, "")
	out, _, err := runAgentCmd(t, context.Background(), "scientist", "--limit", "100000", "--threads", "2", "--segment-size", "1000")
	if err != nil {
		t.Fatalf("agent scientist: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last map[string]uint64
	for _, l := range lines {
		last = nil
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("stdout line %q is not a JSON object of counters: %v", l, err)
		}
	}
	if last["primes"] != 9592 || last["range_end"] != 100000 || last["segments"] != 101 {
		t.Errorf("last line %v, want primes 9592 (π(10^5)), range_end 100000, segments 101", last)
	}
}

func TestAgentStandaloneMinerStops(t *testing.T) {
	t.Setenv(agent.EnvSocket, "")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	out, _, err := runAgentCmd(t, ctx, "miner", "--threads", "1", "--report-interval", "50ms",
		"--churn-mib-per-sec", "64", "--chunk-mib", "1")
	if err != nil {
		t.Fatalf("agent miner: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	var last map[string]uint64
	for sc.Scan() {
		n++
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
	}
	if n < 2 || last["hashes"] == 0 || last["bytes_churned"]%(1<<20) != 0 {
		t.Errorf("%d lines, last %v: want several, with hashes and whole MiB churned", n, last)
	}
}

func TestAgentFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"scientist", "--threads", "-1"},
		{"scientist", "--report-interval", "0s"},
		{"miner", "--churn-mib-per-sec", "-1"},
		{"miner", "--chunk-mib", "0"},
		{"miner", "--share-bits", "300"},
		{"scientist", "extra"},
	} {
		if _, _, err := runAgentCmd(t, context.Background(), args...); err == nil {
			t.Errorf("agent %v: no error", args)
		}
	}
}

type agentTestResolver struct{ ok bool }

func (r agentTestResolver) CellForPID(pid int) (string, bool) {
	return "scientist-cell", r.ok && pid == os.Getpid()
}

func startAgentTestHub(t *testing.T, r hub.Resolver) (*hub.Hub, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "agentcmd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	h, err := hub.Listen(sock, r, hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, sock
}

func TestAgentReportsToHost(t *testing.T) {
	h, sock := startAgentTestHub(t, agentTestResolver{ok: true})
	t.Setenv(agent.EnvSocket, sock)
	out, stderr, err := runAgentCmd(t, context.Background(), "scientist", "--limit", "1000000", "--report-interval", "1ms")
	if err != nil {
		t.Fatalf("agent scientist: %v\n%s", err, stderr)
	}
	if out != "" {
		t.Errorf("stdout = %q, want nothing when reporting to a host", out)
	}
	if !strings.Contains(stderr, "cell=scientist-cell") {
		t.Errorf("stderr lacks the assigned cell:\n%s", stderr)
	}
	// The last report reaches the host before the command returns.
	c, _, ok := h.Counters("scientist-cell")
	if !ok || c["primes"] != 78498 || c["range_end"] != 1000000 {
		t.Errorf("host has %v, %v; want primes 78498 at range_end 1000000", c, ok)
	}
}

func TestAgentSocketFlagOverridesEnv(t *testing.T) {
	h, sock := startAgentTestHub(t, agentTestResolver{ok: true})
	t.Setenv(agent.EnvSocket, filepath.Join(t.TempDir(), "nowhere"))
	if _, stderr, err := runAgentCmd(t, context.Background(), "scientist", "--limit", "1000", "--socket", sock); err != nil {
		t.Fatalf("agent scientist --socket: %v\n%s", err, stderr)
	}
	if c, _, _ := h.Counters("scientist-cell"); c["primes"] != 168 {
		t.Errorf("host has %v, want primes 168", c)
	}
}

func TestAgentRefusedExitsNonZero(t *testing.T) {
	_, sock := startAgentTestHub(t, agentTestResolver{ok: false})
	_, stderr, err := runAgentCmd(t, context.Background(), "miner", "--socket", sock, "--threads", "1")
	var pe *agent.ProtocolError
	if !errors.As(err, &pe) || pe.Code != "not_a_cell" {
		t.Fatalf("agent miner refused by host: err = %v, want not_a_cell", err)
	}
	if !strings.Contains(stderr, "not_a_cell") {
		t.Errorf("stderr does not say why:\n%s", stderr)
	}
}

func TestAgentHostGoneExitsNonZero(t *testing.T) {
	dir, err := os.MkdirTemp("", "agentcmd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	h, err := hub.Listen(sock, agentTestResolver{ok: true}, hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- h.Serve(ctx) }()

	done := make(chan error)
	var stderr string
	go func() {
		var err error
		_, stderr, err = runAgentCmd(t, context.Background(), "miner", "--socket", sock, "--threads", "1", "--report-interval", "10ms")
		done <- err
	}()
	// Wait until the miner's reports arrive, then stop the host.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, _, ok := h.Counters("scientist-cell"); ok && c["hashes"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no report from the miner within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-served
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("agent exited 0 after losing its host")
		}
		if !strings.Contains(stderr, "connection to host lost") {
			t.Errorf("stderr does not say the host was lost:\n%s", stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent kept running after losing its host")
	}
}
