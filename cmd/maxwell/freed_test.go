package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
)

// startDaemon runs the test binary as `maxwell daemon` on private sockets,
// ledger and cgroup parent, with metrics on a free port, and stops it at
// the end of the test.
func startDaemon(t *testing.T, extra ...string) (c *api.Client, metricsAddr string) {
	t.Helper()
	c, metricsAddr, _ = startDaemonProcess(t, extra...)
	return c, metricsAddr
}

// startDaemonProcess is startDaemon, also giving the daemon's process.
func startDaemonProcess(t *testing.T, extra ...string) (c *api.Client, metricsAddr string, p *os.Process) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr = ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	sock := filepath.Join(dir, "control.sock")
	args := append([]string{"daemon", "--socket", sock, "--ledger", filepath.Join(dir, "ledger.db"),
		"--cgroup-parent", fmt.Sprintf("mxd-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6), "--metrics-addr", metricsAddr, "--policy", filepath.Join(dir, "none.yaml")}, extra...)
	d := exec.Command(exe, args...)
	d.Env = append(os.Environ(), envAsMain+"=1")
	var log bytes.Buffer
	d.Stdout, d.Stderr = &log, &log
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- d.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			d.Process.Kill()
			<-done
			t.Errorf("the daemon did not stop in 20 s")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	c, err = api.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if _, err := c.Ping(context.Background()); err == nil {
			return c, metricsAddr, d.Process
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("the daemon did not answer in 20 s:\n%s", log.String())
		}
	}
}

// TestDaemonReportsFreedBytes: a Miner churning memory under a real daemon
// shows its freed bytes in `ps --json` and in the metrics, and its
// Landauer tax is those bytes at the configured 600 pJ/B (finding 13: the
// tax was charged while the freed bytes stayed 0).
func TestDaemonReportsFreedBytes(t *testing.T) {
	c, metrics := startDaemon(t)
	exe, _ := os.Executable()
	ctx := context.Background()
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "miner", Argv: []string{exe, "agent", "miner", "--threads", "1", "--churn-mib-per-sec", "128"},
		Wallet: 1 << 40, MaxBid: 2_000_000, Units: 1, Dir: "/"}); err != nil {
		t.Fatal(err)
	}
	var cell api.Cell
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		st, err := c.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range st.Cells {
			if cl.Name == "miner" {
				cell = cl
			}
		}
		if cell.FreedBytes > 64<<20 && cell.Tax > 0 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("after 30 s the Miner shows %d freed bytes and %d credits of tax", cell.FreedBytes, cell.Tax)
		}
	}
	// 600 pJ per byte = 0.0006 credits per byte, rounded down per tick.
	want := float64(cell.FreedBytes) * 600 / 1e6
	if got := float64(cell.Tax); got > want+1 || got < want*0.99 {
		t.Errorf("tax %d credits for %d freed bytes, want %.0f (600 pJ/B)", cell.Tax, cell.FreedBytes, want)
	}
	t.Logf("freed %d bytes, taxed %d credits", cell.FreedBytes, cell.Tax)
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var freed float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "maxwell_agent_freed_bytes_total{") && strings.Contains(line, `"miner"`) {
			f := strings.Fields(line)
			freed, _ = strconv.ParseFloat(f[len(f)-1], 64)
		}
	}
	if freed < 64<<20 {
		t.Errorf("maxwell_agent_freed_bytes_total for the miner is %v", freed)
	}
}
