package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/vm"
)

// Booter is implemented by cells that boot a guest before running its
// command (a QEMU microVM cell): MeasureVMPause times the boot and pauses
// a booted guest only.
type Booter interface {
	WaitBooted(ctx context.Context) error
}

// VMPauseOptions configure MeasureVMPause.
type VMPauseOptions struct {
	// Trials is the number of pause/resume pairs (at least 1).
	Trials int
	// Path and Args are the busy command in the guest; "" means
	// /bin/sh -c 'while :; do :; done' (the Maxwell guest image's
	// busybox).
	Path string
	Args []string
	// CPUs pins the VMM; empty means no pinning.
	CPUs []int
	// Gap is how long the guest runs (and stays paused) between
	// requests; 0 means none.
	Gap time.Duration
	// Now is the clock latencies are read from; nil means time.Now.
	Now func() time.Time
}

// VMPauseResult is what MeasureVMPause returns: `maxwell bench pause
// --vm`.
type VMPauseResult struct {
	Trials int `json:"trials"`
	// Backend is the cell's, e.g. "qemu-microvm/tcg" or "firecracker":
	// it says whether the guest was emulated.
	Backend string `json:"backend"`
	// Accel says why the guest ran under its accelerator, where
	// PauseVMHost measured it.
	Accel *vm.AccelInfo `json:"accel,omitempty"`
	// BootMs is the time from Start until the guest's init said it runs
	// the command, in milliseconds; 0 where the cell does not say.
	BootMs float64 `json:"boot_ms,omitempty"`
	// Pause is from the request (QMP stop; Firecracker's PATCH /vm)
	// until the VMM reported the VM paused (query-status; GET /);
	// Resume likewise for cont and running.
	Pause  Summary `json:"pause"`
	Resume Summary `json:"resume"`
	// RuntimePause and RuntimeResume are the VMM's own figures where it
	// keeps them (Firecracker's vmm_pause_vm and vmm_resume_vm).
	RuntimePause  *Summary `json:"runtime_pause,omitempty"`
	RuntimeResume *Summary `json:"runtime_resume,omitempty"`
	// Error says why the measurement stopped early; the summaries cover
	// the trials done before.
	Error string `json:"error,omitempty"`
}

// MeasureVMPause boots one busy microVM cell of m, waits for its guest to
// boot, and times Trials pause and resume requests on it: each latency
// runs from the request until Cell.Pause or Cell.Resume returns, which a
// VM cell does once its VMM reports the new state. The error is non-nil
// only for bad options or when ctx ends; a failing VM is reported in the
// result's Error.
func MeasureVMPause(ctx context.Context, m CellStarter, opts VMPauseOptions) (res VMPauseResult, err error) {
	if opts.Trials < 1 {
		return res, fmt.Errorf("VM pause benchmark: %d trials, want at least 1", opts.Trials)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Path == "" {
		opts.Path, opts.Args = "/bin/sh", []string{"-c", "while :; do :; done"}
	}
	res.Trials = opts.Trials
	pauses := make([]time.Duration, 0, opts.Trials)
	resumes := make([]time.Duration, 0, opts.Trials)
	var rtPauses, rtResumes []time.Duration
	var failure error
	defer func() {
		res.Pause, res.Resume = Summarize(pauses), Summarize(resumes)
		if len(rtPauses) > 0 {
			p, r := Summarize(rtPauses), Summarize(rtResumes)
			res.RuntimePause, res.RuntimeResume = &p, &r
		}
		if failure != nil {
			res.Error = failure.Error()
		}
		if ctxErr := ctx.Err(); ctxErr != nil && err == nil {
			err = fmt.Errorf("VM pause benchmark: %w", errors.Join(ctxErr, failure))
		}
	}()
	t0 := opts.Now()
	c, ferr := m.Start(ctx, cell.Spec{Name: "bench-pause-vm", Path: opts.Path, Args: opts.Args, CPUs: opts.CPUs})
	if ferr != nil {
		failure = ferr
		return res, nil
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && failure == nil {
			failure = cerr
		}
	}()
	res.Backend = c.Backend()
	if b, ok := c.(Booter); ok {
		if failure = b.WaitBooted(ctx); failure != nil {
			return res, nil
		}
		res.BootMs = float64(opts.Now().Sub(t0)) / float64(time.Millisecond)
	}
	failure = timeTrials(ctx, c, opts.Trials, opts.Gap, opts.Now, &pauses, &resumes, &rtPauses, &rtResumes)
	return res, nil
}

// VMHostOptions configure PauseVMHost.
type VMHostOptions struct {
	CgroupRoot, ProcRoot string
	// VM configures the microVM manager (VMM, guest, accelerator,
	// DevRoot); its StateDir is the benchmark's own.
	VM     vm.Options
	Trials int
	// CPU pins the VMM (-1: no pinning).
	CPU int
	Log *slog.Logger
}

// PauseVMHost boots one busy microVM cell, as an economy would (the VMM
// in a cell under a cgroup parent of the benchmark's own), and times
// its pauses and resumes (MeasureVMPause): `maxwell bench pause --vm`.
func PauseVMHost(ctx context.Context, opts VMHostOptions) (VMPauseResult, error) {
	co := cell.DefaultOptions()
	co.CgroupRoot, co.ProcRoot, co.Logger = opts.CgroupRoot, opts.ProcRoot, opts.Log
	co.Parent = "maxwell-bench-vm-" + strconv.Itoa(os.Getpid())
	cm, err := cell.NewManager(co)
	if err != nil {
		return VMPauseResult{}, err
	}
	defer cm.Close()
	// Socket paths are limited to 108 bytes: a short state directory.
	state, err := os.MkdirTemp("", "maxwell-bench-vm-")
	if err != nil {
		return VMPauseResult{}, err
	}
	defer os.RemoveAll(state)
	vo := opts.VM
	vo.StateDir, vo.Logger = filepath.Join(state, "vm"), opts.Log
	vo.Firecracker.StateDir = filepath.Join(state, "firecracker")
	m, err := vm.NewManager(ctx, cm, vo)
	if err != nil {
		return VMPauseResult{}, err
	}
	defer m.Close()
	po := VMPauseOptions{Trials: opts.Trials, Gap: 10 * time.Millisecond}
	if opts.CPU >= 0 {
		po.CPUs = []int{opts.CPU}
	}
	res, err := MeasureVMPause(ctx, m, po)
	if m.VMM() == vm.VMMQEMU {
		a := m.Accel()
		res.Accel = &a
	}
	return res, err
}

// WriteText prints the result: the backend and why, the boot time, and a
// table of the latencies in microseconds.
func (r VMPauseResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "microVM %s", r.Backend)
	if r.Accel != nil {
		fmt.Fprintf(w, ": %s", r.Accel.Reason)
	}
	fmt.Fprintf(w, "\nboot (start to the guest's init running the command): %.0f ms\n", r.BootMs)
	fmt.Fprintf(w, "%d trials, times in microseconds, each from the request until the VMM reported the new state\n\n", r.Trials)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "WHAT\tN\tP50\tP99\tMAX\t")
	rows := []struct {
		what string
		s    *Summary
	}{{"pause (stop → paused)", &r.Pause}, {"resume (cont → running)", &r.Resume}, {"VMM's own vmm_pause_vm", r.RuntimePause}, {"VMM's own vmm_resume_vm", r.RuntimeResume}}
	for _, row := range rows {
		if row.s == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t\n", row.what, row.s.N, row.s.P50us, row.s.P99us, row.s.MaxUs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Error != "" {
		fmt.Fprintf(w, "stopped early: %s\n", r.Error)
	}
	return nil
}
