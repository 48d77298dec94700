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
	return startAgentTestHubOpts(t, r, hub.Options{})
}

func startAgentTestHubOpts(t *testing.T, r hub.Resolver, opts hub.Options) (*hub.Hub, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "agentcmd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	h, err := hub.Listen(sock, r, opts)
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

func TestAgentBidFlagErrors(t *testing.T) {
	t.Setenv(agent.EnvSocket, "")
	for _, args := range [][]string{
		{"scientist", "--bidding", "--limit", "10"}, // no host
		{"scientist", "--valuation", "0"},
		{"scientist", "--valuation", "NaN"},
		{"miner", "--greed", "-1"},
		{"miner", "--greed", "+Inf"},
		{"miner", "--units", "65"},
		{"scientist", "--units", "-1"},
	} {
		if _, _, err := runAgentCmd(t, context.Background(), args...); err == nil {
			t.Errorf("agent %v: no error", args)
		}
	}
}

// awaitBid opens auctions on h, one every few milliseconds, until cell
// bids in one, and returns that bid.
func awaitBid(t *testing.T, h *hub.Hub, cell string, first uint64, ti hub.TickInfo) (hub.Bid, uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tick := first; ; tick++ {
		if time.Now().After(deadline) {
			t.Fatalf("no bid from %s within 10s", cell)
		}
		if err := h.OpenAuction(tick, func(string) (hub.TickInfo, bool) { return ti, true }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		if b, ok := h.CloseAuction(tick)[cell]; ok {
			return b, tick
		}
	}
}

func TestAgentBids(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ti   hub.TickInfo
		want hub.Bid
	}{
		{"scientist", []string{"scientist", "--threads", "2", "--valuation", "3"},
			hub.TickInfo{Reserve: 2500, Multiplier: 2.5, SlotEnergy: 1000, Balance: 1 << 20}, hub.Bid{Price: 3000, Units: 2}},
		{"miner", []string{"miner", "--threads", "1", "--units", "3", "--greed", "4"},
			hub.TickInfo{Reserve: 9000, Multiplier: 9, SlotEnergy: 1000, Balance: 1}, hub.Bid{Price: 4000, Units: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, sock := startAgentTestHubOpts(t, agentTestResolver{ok: true}, hub.Options{Auctions: true})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			var stderr string
			go func() {
				var err error
				_, stderr, err = runAgentCmd(t, ctx, append(tt.args, "--bidding", "--socket", sock, "--report-interval", "10ms")...)
				done <- err
			}()
			got, _ := awaitBid(t, h, "scientist-cell", 1, tt.ti)
			if got != tt.want {
				t.Errorf("bid = %+v, want %+v", got, tt.want)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("agent: %v\n%s", err, stderr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("agent did not stop")
			}
			if !strings.Contains(stderr, "bidding=true") {
				t.Errorf("stderr does not say it bids:\n%s", stderr)
			}
		})
	}
}

// The Scientist waits while the reserve is above its valuation, and bids
// again once it falls.
func TestAgentScientistWaits(t *testing.T) {
	h, sock := startAgentTestHubOpts(t, agentTestResolver{ok: true}, hub.Options{Auctions: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := runAgentCmd(t, ctx, "scientist", "--threads", "1", "--bidding", "--socket", sock)
		done <- err
	}()
	cheap := hub.TickInfo{Reserve: 1000, Multiplier: 1, SlotEnergy: 1000}
	_, tick := awaitBid(t, h, "scientist-cell", 1, cheap) // connected and bidding
	dear := hub.TickInfo{Reserve: 2001, Multiplier: 2.001, SlotEnergy: 1000}
	for range 20 {
		tick++
		if err := h.OpenAuction(tick, func(string) (hub.TickInfo, bool) { return dear, true }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		if b, ok := h.CloseAuction(tick)["scientist-cell"]; ok {
			t.Fatalf("tick %d: bid %+v with the reserve above its valuation", tick, b)
		}
	}
	if b, _ := awaitBid(t, h, "scientist-cell", tick+1, cheap); b.Price != 2000 || b.Units != 1 {
		t.Errorf("bid = %+v, want 2000 for 1 unit", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("agent: %v", err)
	}
}

func TestAgentBiddingNeedsAuctions(t *testing.T) {
	_, sock := startAgentTestHub(t, agentTestResolver{ok: true}) // a host without auctions
	_, stderr, err := runAgentCmd(t, context.Background(), "miner", "--threads", "1", "--bidding", "--socket", sock)
	if !errors.Is(err, agent.ErrNotBidding) {
		t.Fatalf("agent miner --bidding against a host without auctions = %v, want ErrNotBidding", err)
	}
	if !strings.Contains(stderr, "no auction") {
		t.Errorf("stderr does not say why:\n%s", stderr)
	}
}
