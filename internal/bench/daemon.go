package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/life"
)

// DaemonOptions configure MeasureDaemon.
type DaemonOptions struct {
	// Economy is the economy to run, as a daemon would: its Config,
	// Roots, CgroupRoot, CPUs and Log are used;
	// MeasureDaemon sets the cell parent, the sockets and the ledger
	// (in Dir) itself.
	Economy economy.Options
	// Cells is the number of cells: real cgroups, each with a budgeted
	// program (a standing bid of one slot).
	Cells int
	// Busy makes every cell spin (sh -c 'while :; do :; done'), so the
	// CPUs sold are saturated; otherwise each sleeps, as an agent waiting
	// on the network does.
	Busy bool
	// Warmup runs the economy after the last cell is admitted and before
	// the window; 0 means 3 s. Duration is the measured window; 0 means
	// 30 s.
	Warmup, Duration time.Duration
	// Dir holds the ledger and the sockets; "" means a temporary
	// directory, removed at the end.
	Dir string
	// CPUProfile, if set, receives a pprof CPU profile of the window.
	CPUProfile io.Writer
	// Now is the clock of the window; nil means time.Now.
	Now func() time.Time
}

// DaemonResult is what governing the cells cost the economy's process.
type DaemonResult struct {
	Cells int  `json:"cells"`
	Busy  bool `json:"busy"`
	// Realtime is the SCHED_FIFO priority of the tick, 0 for none.
	Realtime    int     `json:"realtime_priority"`
	TickSeconds float64 `json:"tick_seconds"`
	// SpawnSeconds is how long admitting the cells took.
	SpawnSeconds float64 `json:"spawn_seconds"`
	// Seconds and Ticks are the window's length and the ticks in it.
	Seconds float64 `json:"window_seconds"`
	Ticks   int     `json:"ticks"`
	// CPUSeconds is the process's CPU time (user and system, every
	// thread: the tick, the hub, the ledger, the Go runtime) over the
	// window, from getrusage(RUSAGE_SELF); the cells are other processes
	// and do not count.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CorePercent is CPUSeconds over Seconds, in percent of one core.
	CorePercent float64 `json:"core_percent"`
	// CPUPerTickUs and CPUPerCellTickUs divide CPUSeconds by the ticks,
	// and by the ticks and the cells, in µs.
	CPUPerTickUs     float64 `json:"cpu_per_tick_us"`
	CPUPerCellTickUs float64 `json:"cpu_per_cell_tick_us"`
	// Latency is the tick's work from its wake-up to its end
	// (engine.Step.Total); Measure, Decide, Post and Apply its phases;
	// Jitter how far each tick's start fell from the configured tick.
	Latency Summary `json:"tick_latency"`
	Measure Summary `json:"measure"`
	Decide  Summary `json:"decide"`
	Post    Summary `json:"post"`
	Apply   Summary `json:"apply"`
	Jitter  Summary `json:"jitter"`
	// Running is how many cells were running (not paused) at the end.
	Running int `json:"running_at_end"`
}

// MeasureDaemon runs an economy with opts.Cells cells for opts.Duration
// and reports what it cost: the process's CPU time per tick and per cell,
// and the tick's latency and jitter. Everything is real: cgroups, the
// SQLite ledger, the Landauer meter, the agent hub. Needs root.
func MeasureDaemon(ctx context.Context, opts DaemonOptions) (DaemonResult, error) {
	if opts.Cells < 0 || opts.Cells > 100000 {
		return DaemonResult{}, fmt.Errorf("bench: %d cells: want 0..100000", opts.Cells)
	}
	if opts.Warmup <= 0 {
		opts.Warmup = 3 * time.Second
	}
	if opts.Duration <= 0 {
		opts.Duration = 30 * time.Second
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "maxwell-bench-daemon-")
		if err != nil {
			return DaemonResult{}, err
		}
		defer os.RemoveAll(d)
		opts.Dir = d
	}
	eo := opts.Economy
	eo.CellParent = "maxwell-bench-" + strconv.Itoa(os.Getpid())
	eo.AgentSocket = filepath.Join(opts.Dir, "agent.sock")
	eo.LedgerPath = filepath.Join(opts.Dir, "ledger.db")
	eo.StateDir = filepath.Join(opts.Dir, "state")
	var (
		mu    sync.Mutex
		steps []engine.Step
		rec   bool
	)
	eo.OnStep = func(s engine.Step) {
		mu.Lock()
		if rec {
			steps = append(steps, s)
		}
		mu.Unlock()
	}
	econ, err := economy.Open(ctx, eo)
	if err != nil {
		return DaemonResult{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- econ.Run(ctx) }()
	stop := func() error {
		cancel()
		return <-done
	}

	res := DaemonResult{Cells: opts.Cells, Busy: opts.Busy, Realtime: eo.Config.Engine.RealtimePriority, TickSeconds: eo.Config.Engine.Tick.Seconds()}
	t0 := now()
	if err := spawnCells(ctx, econ, opts.Cells, opts.Busy); err != nil {
		return res, errors.Join(err, stop())
	}
	res.SpawnSeconds = now().Sub(t0).Seconds()
	select {
	case <-time.After(opts.Warmup):
	case <-ctx.Done():
		return res, errors.Join(ctx.Err(), stop())
	}

	if opts.CPUProfile != nil {
		if err := pprof.StartCPUProfile(opts.CPUProfile); err != nil {
			return res, errors.Join(err, stop())
		}
	}
	mu.Lock()
	rec = true
	mu.Unlock()
	cpu0, err := processCPU()
	if err != nil {
		return res, errors.Join(err, stop())
	}
	w0 := now()
	select {
	case <-time.After(opts.Duration):
	case <-ctx.Done():
	}
	cpu1, err := processCPU()
	w1 := now()
	mu.Lock()
	rec = false
	window := steps
	mu.Unlock()
	if opts.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return res, errors.Join(err, stop())
	}
	if st, err := econ.State(ctx); err == nil {
		for _, c := range st.Cells {
			if c.State == life.Running {
				res.Running++
			}
		}
	}
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		return res, err
	}
	if ctx.Err() != nil && w1.Sub(w0) < opts.Duration {
		return res, ctx.Err()
	}

	res.Seconds = w1.Sub(w0).Seconds()
	res.Ticks = len(window)
	res.CPUSeconds = (cpu1 - cpu0).Seconds()
	res.CorePercent = 100 * res.CPUSeconds / res.Seconds
	if res.Ticks > 0 {
		res.CPUPerTickUs = 1e6 * res.CPUSeconds / float64(res.Ticks)
		if opts.Cells > 0 {
			res.CPUPerCellTickUs = res.CPUPerTickUs / float64(opts.Cells)
		}
	}
	tick := eo.Config.Engine.Tick
	var total, measure, decide, post, apply, jitter []time.Duration
	for _, s := range window {
		total = append(total, s.Total)
		measure = append(measure, s.Measure)
		decide = append(decide, s.Decide)
		post = append(post, s.Post)
		apply = append(apply, s.Apply)
		j := s.Interval - tick
		if j < 0 {
			j = -j
		}
		jitter = append(jitter, j)
	}
	res.Latency, res.Measure, res.Decide, res.Post, res.Apply, res.Jitter =
		Summarize(total), Summarize(measure), Summarize(decide), Summarize(post), Summarize(apply), Summarize(jitter)
	return res, nil
}

// spawnCells admits n budgeted cells, a few at a time.
func spawnCells(ctx context.Context, econ *economy.Economy, n int, busy bool) error {
	argv := []string{"/bin/sleep", "86400"}
	if busy {
		argv = []string{"/bin/sh", "-c", "while :; do :; done"}
	}
	const parallel = 8
	sem := make(chan struct{}, parallel)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			// A standing bid at twice the base price, and a wallet that
			// lasts (1 MJ): the bench measures governing, not dying.
			req := api.SpawnRequest{Name: fmt.Sprintf("bench-%05d", i), Argv: argv, Wallet: 1_000_000_000_000, MaxBid: 2_000_000, Units: 1}
			if _, err := econ.Spawn(ctx, req); err != nil {
				errc <- fmt.Errorf("bench: spawning cell %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc // nil if none failed
}

// processCPU is the process's user and system CPU time so far.
func processCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("bench: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// WriteText prints r for people.
func (r DaemonResult) WriteText(w io.Writer) error {
	work := "sleeping (idle agents)"
	if r.Busy {
		work = "spinning (every CPU sold saturated)"
	}
	rt := "normal scheduling"
	if r.Realtime > 0 {
		rt = fmt.Sprintf("SCHED_FIFO priority %d", r.Realtime)
	}
	fmt.Fprintf(w, "%d cells, %s, tick %.0f ms, tick thread under %s; admitted in %.1f s\n",
		r.Cells, work, 1000*r.TickSeconds, rt, r.SpawnSeconds)
	fmt.Fprintf(w, "window %.1f s, %d ticks; %d cells running at its end\n", r.Seconds, r.Ticks, r.Running)
	fmt.Fprintf(w, "daemon CPU: %.3f s = %.2f %% of one core; %.0f µs per tick, %.2f µs per cell per tick (getrusage, the whole process)\n",
		r.CPUSeconds, r.CorePercent, r.CPUPerTickUs, r.CPUPerCellTickUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tp50 µs\tp99 µs\tmax µs")
	for _, row := range []struct {
		name string
		s    Summary
	}{{"tick latency", r.Latency}, {"  measure", r.Measure}, {"  decide", r.Decide}, {"  post (ledger)", r.Post}, {"  apply (freeze/thaw)", r.Apply}, {"tick jitter", r.Jitter}} {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\n", row.name, row.s.P50us, row.s.P99us, row.s.MaxUs)
	}
	return tw.Flush()
}
