package bench_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/bench"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/vm"
	"github.com/maxwellhq/maxwell/internal/cell/vm/vmtest"
)

// vmManager returns a microVM manager over a cell manager of the test's
// own, both closed at cleanup.
func vmManager(tb testing.TB) *vm.Manager {
	tb.Helper()
	vmtest.NeedRoot(tb)
	img := vmtest.Image(tb)
	co := cell.DefaultOptions()
	co.Parent = fmt.Sprintf("mxbenchvm-%d", os.Getpid())
	cm, err := cell.NewManager(co)
	if err != nil {
		tb.Fatal(err)
	}
	state, err := os.MkdirTemp("", "vm")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := vm.NewManager(ctx, cm, vm.Options{Kernel: img.Kernel, Initrd: img.Initrd, StateDir: state})
	if err != nil {
		cm.Close()
		tb.Fatal(err)
	}
	tb.Logf("accelerator: %s (%s)", m.Accel().Accel, m.Accel().Reason)
	tb.Cleanup(func() {
		m.Close()
		cm.Close()
		os.RemoveAll(state)
	})
	return m
}

// TestMeasureVMPause boots a busy guest and times QMP stop→paused and
// cont→running.
func TestMeasureVMPause(t *testing.T) {
	m := vmManager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := bench.MeasureVMPause(ctx, m, bench.VMPauseOptions{Trials: 10, Gap: 20 * time.Millisecond})
	if err != nil || res.Error != "" {
		t.Fatalf("MeasureVMPause = %+v, %v", res, err)
	}
	if !strings.HasPrefix(res.Backend, vm.BackendQEMU+"/") || res.BootMs <= 0 {
		t.Errorf("backend %q, boot %v ms", res.Backend, res.BootMs)
	}
	for _, s := range []bench.Summary{res.Pause, res.Resume} {
		if s.N != 10 || s.P50us <= 0 || s.P50us > s.P99us || s.P99us > s.MaxUs {
			t.Errorf("summary %+v: want 10 ordered, positive samples", s)
		}
	}
	t.Logf("%s: boot %.0f ms; pause p50 %.0f µs p99 %.0f µs max %.0f µs; resume p50 %.0f µs p99 %.0f µs max %.0f µs",
		res.Backend, res.BootMs, res.Pause.P50us, res.Pause.P99us, res.Pause.MaxUs, res.Resume.P50us, res.Resume.P99us, res.Resume.MaxUs)
}

// BenchmarkVMPauseResume measures QMP pause and resume on one booted
// guest: go test -run '^$' -bench VMPauseResume -benchtime 200x
// ./internal/bench/ (reported as p50/p99/max in µs).
func BenchmarkVMPauseResume(b *testing.B) {
	m := vmManager(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := bench.MeasureVMPause(ctx, m, bench.VMPauseOptions{Trials: b.N, Gap: 10 * time.Millisecond})
	if err != nil || res.Error != "" {
		b.Fatalf("MeasureVMPause = %+v, %v", res, err)
	}
	b.ReportMetric(res.BootMs, "boot-ms")
	b.ReportMetric(res.Pause.P50us, "pause-p50-µs")
	b.ReportMetric(res.Pause.P99us, "pause-p99-µs")
	b.ReportMetric(res.Pause.MaxUs, "pause-max-µs")
	b.ReportMetric(res.Resume.P50us, "resume-p50-µs")
	b.ReportMetric(res.Resume.P99us, "resume-p99-µs")
	b.ReportMetric(res.Resume.MaxUs, "resume-max-µs")
	b.Logf("%s", res.Backend)
}
