// Package bench measures the machinery Maxwell itself relies on, such as
// how long it takes to pause and resume a cell under each freezer.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// CellStarter is what MeasurePause needs from a cell manager
// (*cell.Manager is one).
type CellStarter interface {
	Start(ctx context.Context, spec cell.Spec) (cell.Cell, error)
	Layout() cell.Layout
}

// RuntimeLatencies is implemented by cells whose runtime times its own
// pauses and resumes: a Firecracker cell reports the VMM's vmm_pause_vm
// and vmm_resume_vm latency metrics. MeasurePause reads them after every
// pause/resume pair, besides its own wall-clock figures, which include
// the API round trips.
type RuntimeLatencies interface {
	// RuntimeLatencies returns the runtime's own latency of the latest
	// pause and of the latest resume.
	RuntimeLatencies(ctx context.Context) (pause, resume time.Duration, err error)
}

// PauseOptions configure MeasurePause.
//
// To measure a backend other than package cell's (an OCI container or a
// Firecracker microVM manager), pass that manager as the CellStarter,
// Freezers naming the one freezer it offers, and a Path that exists in
// its root file system.
type PauseOptions struct {
	// Trials is the number of pause/resume pairs per freezer (at least 1).
	Trials int
	// Freezers lists the freezers to measure; nil means every freezer the
	// host offers (Layout().Freezers).
	Freezers []cell.FreezerKind
	// CPUs pins each busy cell; empty means no pinning.
	CPUs []int
	// ControllerCPUs pins the thread that requests and waits for each
	// pause and resume; empty means no pinning. Measured here: with the
	// controller sharing the busy cell's CPU, p99 is set by the scheduler
	// (milliseconds); on a CPU of its own it is the freezer's own latency.
	ControllerCPUs []int
	// Path and Args are the busy command; "" means
	// /bin/sh -c 'while :; do :; done'.
	Path string
	Args []string
	// Gap is how long the cell runs (and stays paused) between requests,
	// so that every pause catches it busy; 0 means no gap.
	Gap time.Duration
	// Now is the clock the latencies are read from; nil means time.Now.
	Now func() time.Time
}

// Summary describes a sample of latencies, in microseconds.
type Summary struct {
	N     int     `json:"n"`
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
	MaxUs float64 `json:"max_us"`
}

// FreezerResult is the measurement of one freezer.
type FreezerResult struct {
	// Freezer is the freezer measured: "v1", "v2" or "signal".
	Freezer cell.FreezerKind `json:"freezer"`
	// Backend is the cell backend it ran on, e.g. "cgroup-hybrid".
	Backend string `json:"backend,omitempty"`
	// ControllerCPUs are the CPUs the measuring thread was pinned to.
	ControllerCPUs []int `json:"controller_cpus,omitempty"`
	// Pause is the time from the pause request until the kernel reported
	// every task stopped.
	Pause Summary `json:"pause"`
	// Resume is the time from the resume request until the kernel
	// reported the cell running again.
	Resume Summary `json:"resume"`
	// RuntimePause and RuntimeResume are the runtime's own figures for
	// the same trials, where the cell reports them (see
	// RuntimeLatencies); nil otherwise.
	RuntimePause  *Summary `json:"runtime_pause,omitempty"`
	RuntimeResume *Summary `json:"runtime_resume,omitempty"`
	// Error says why this freezer could not be measured (fully); the
	// summaries then cover the trials done before it.
	Error string `json:"error,omitempty"`
}

// PauseResult is what MeasurePause returns.
type PauseResult struct {
	Trials   int             `json:"trials"`
	Layout   string          `json:"layout"`
	Freezers []FreezerResult `json:"freezers"`
}

// MeasurePause starts one busy cell per freezer, one after the other, and
// times Trials pause and resume requests on it: each latency runs from the
// request until Cell.Pause or Cell.Resume returns, which they do once the
// kernel reports every task stopped or running. A freezer that fails is
// reported in its FreezerResult and the others are still measured; the
// error is non-nil only for bad options or when ctx ends.
func MeasurePause(ctx context.Context, m CellStarter, opts PauseOptions) (PauseResult, error) {
	if opts.Trials < 1 {
		return PauseResult{}, fmt.Errorf("pause benchmark: %d trials, want at least 1", opts.Trials)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Path == "" {
		opts.Path, opts.Args = "/bin/sh", []string{"-c", "while :; do :; done"}
	}
	layout := m.Layout()
	freezers := opts.Freezers
	if freezers == nil {
		freezers = layout.Freezers
	}
	res := PauseResult{Trials: opts.Trials, Layout: layout.String()}
	for _, fz := range freezers {
		fr, err := measureFreezer(ctx, m, fz, opts)
		res.Freezers = append(res.Freezers, fr)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return res, fmt.Errorf("pause benchmark: %w", errors.Join(ctxErr, err))
		}
	}
	return res, nil
}

func measureFreezer(ctx context.Context, m CellStarter, fz cell.FreezerKind, opts PauseOptions) (fr FreezerResult, err error) {
	fr.Freezer = fz
	pauses := make([]time.Duration, 0, opts.Trials)
	resumes := make([]time.Duration, 0, opts.Trials)
	var rtPauses, rtResumes []time.Duration
	defer func() {
		fr.Pause, fr.Resume = Summarize(pauses), Summarize(resumes)
		if len(rtPauses) > 0 {
			p, r := Summarize(rtPauses), Summarize(rtResumes)
			fr.RuntimePause, fr.RuntimeResume = &p, &r
		}
		if err != nil {
			fr.Error = err.Error()
		}
	}()
	c, err := m.Start(ctx, cell.Spec{
		Name: "bench-pause-" + string(fz), Path: opts.Path, Args: opts.Args,
		CPUs: opts.CPUs, Freezer: fz,
	})
	if err != nil {
		return fr, err
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	fr.Backend = c.Backend()
	if len(opts.ControllerCPUs) > 0 {
		// The pin applies to this goroutine's OS thread only, after the
		// cell has started (its shim must not inherit it), and ends with
		// the measurement.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var orig unix.CPUSet
		if err := unix.SchedGetaffinity(0, &orig); err != nil {
			return fr, fmt.Errorf("read the controller thread's CPUs: %w", err)
		}
		var set unix.CPUSet
		for _, c := range opts.ControllerCPUs {
			set.Set(c)
		}
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fr, fmt.Errorf("pin the controller thread to CPUs %v: %w", opts.ControllerCPUs, err)
		}
		// Restore the thread's own CPUs before it returns to the runtime's
		// pool (deferred calls run last-in first-out: this one first).
		defer unix.SchedSetaffinity(0, &orig)
		fr.ControllerCPUs = opts.ControllerCPUs
	}
	err = timeTrials(ctx, c, opts.Trials, opts.Gap, opts.Now, &pauses, &resumes, &rtPauses, &rtResumes)
	return fr, err
}

// timeTrials times trials pause/resume pairs on c, gap apart, appending
// each latency to pauses and resumes, and the runtime's own figures, where
// c reports them (RuntimeLatencies), to rtPauses and rtResumes.
func timeTrials(ctx context.Context, c cell.Cell, trials int, gap time.Duration, now func() time.Time, pauses, resumes, rtPauses, rtResumes *[]time.Duration) error {
	if err := sleep(ctx, gap); err != nil {
		return err
	}
	for range trials {
		t0 := now()
		if err := c.Pause(ctx); err != nil {
			return err
		}
		*pauses = append(*pauses, now().Sub(t0))
		if err := sleep(ctx, gap); err != nil {
			return err
		}
		t0 = now()
		if err := c.Resume(ctx); err != nil {
			return err
		}
		*resumes = append(*resumes, now().Sub(t0))
		if rl, ok := c.(RuntimeLatencies); ok {
			p, r, err := rl.RuntimeLatencies(ctx)
			if err != nil {
				return fmt.Errorf("runtime latencies: %w", err)
			}
			*rtPauses, *rtResumes = append(*rtPauses, p), append(*rtResumes, r)
		}
		if err := sleep(ctx, gap); err != nil {
			return err
		}
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Summarize returns the count, median, 99th percentile and maximum of
// samples, in microseconds. Percentiles use the nearest-rank method: the
// p-th percentile is the smallest sample that at least p% of the samples
// do not exceed, so it is always an observed value. An empty sample gives
// a zero Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return Summary{
		N:     len(s),
		P50us: us(percentile(s, 50)),
		P99us: us(percentile(s, 99)),
		MaxUs: us(s[len(s)-1]),
	}
}

// percentile returns the nearest-rank p-th percentile of sorted, which
// must not be empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
