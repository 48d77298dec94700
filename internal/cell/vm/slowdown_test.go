package vm_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/vm/vmtest"
)

// scientistRate runs the Scientist standalone (it prints its counters
// each second) and returns the integers it sieved per second between its
// first and its last report in window, and their count.
func scientistRate(t testing.TB, lines <-chan string, window time.Duration) (float64, int) {
	t.Helper()
	type counters struct {
		RangeEnd uint64 `json:"range_end"`
	}
	var first, last counters
	var t0, t1 time.Time
	n := 0
	deadline := time.After(window)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the Scientist stopped")
			}
			var c counters
			if json.Unmarshal([]byte(l), &c) != nil || c.RangeEnd == 0 {
				continue
			}
			if n == 0 {
				first, t0 = c, time.Now()
			}
			last, t1 = c, time.Now()
			n++
		case <-deadline:
			if n < 2 {
				t.Fatalf("%d reports in %v", n, window)
			}
			return float64(last.RangeEnd-first.RangeEnd) / t1.Sub(t0).Seconds(), n
		}
	}
}

// lineWriter sends each complete line written to it on a channel,
// dropping lines when nobody reads.
type lineWriter struct {
	buf []byte
	ch  chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.ch <- strings.TrimRight(string(w.buf[:i]), "\r"):
		default:
		}
		w.buf = w.buf[i+1:]
	}
}

// BenchmarkTCGSlowdown runs the Scientist (one thread) for 8 s as a
// process and for 8 s in a microVM, and reports both rates and their
// ratio: how much slower the VM's accelerator makes guest code.
// go test -run '^$' -bench TCGSlowdown -benchtime 1x ./internal/cell/vm/
func BenchmarkTCGSlowdown(b *testing.B) {
	e := newEnv(b, nil)
	const window = 8 * time.Second
	args := []string{"agent", "scientist", "--threads", "1", "--report-interval", "1s"}

	// As a process on the host: the same static binary the guest runs.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, vmtest.Maxwell(b), args...)
	cmd.Env = []string{agent.EnvSocket + "=", agent.EnvSerial + "="}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	host, _ := scientistRate(b, lines, window)
	cmd.Process.Kill()
	cmd.Wait()

	// In a microVM: standalone too (no agent port configured).
	vmLines := &lineWriter{ch: make(chan string, 64)}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	c, err := e.vms.Start(sctx, cell.Spec{Name: "slowdown", Path: e.img.Maxwell, Args: args, Stdout: vmLines,
		Env: []string{"PATH=/bin", agent.EnvSerial + "="}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	guest, _ := scientistRate(b, vmLines.ch, window)
	b.ReportMetric(host, "host-int/s")
	b.ReportMetric(guest, "vm-int/s")
	b.ReportMetric(host/guest, "slowdown-x")
	b.Logf("Scientist, 1 thread: %.3g integers/s as a process, %.3g in a %s microVM: %.1f× slower", host, guest, c.Backend(), host/guest)
}
