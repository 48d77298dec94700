package meter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// BenchOptions configure MeasureOverhead.
type BenchOptions struct {
	// Attachments are measured in turn; nil means DefaultOrder. One
	// that does not load is reported with its error.
	Attachments []Attach
	// Runs is the number of runs with the meter attached; each comes
	// between two without it (see MeasureOverhead), so 2·Runs+1 runs are
	// timed. 0 means 15.
	Runs int
	// Calls is the number of syscalls per timed loop; 0 means 100000.
	Calls int
	// ChurnSteps is the number of Miner churn steps (map 4 MiB, write
	// every page, free it with madvise or munmap) per timed run; 0
	// means 20.
	ChurnSteps int
	// CgroupRoot is where the cgroup hierarchies are mounted; the
	// benchmark moves this process into a cgroup2 directory of its own
	// there for the time it runs. "" means "/sys/fs/cgroup".
	CgroupRoot string
	// ProcRoot is where procfs is mounted; "" means "/proc".
	ProcRoot string
	// SysRoot is passed to OpenEBPF.
	SysRoot string
	// Timing says what times the loops; the zero value is
	// TimingThreadCPU.
	Timing Timing
	// Now reads the monotonic clock that times the loops with
	// TimingWall; other timings do not use it.
	Now func() time.Time
}

// Timing is what times the benchmark's loops.
type Timing int

// The timings of MeasureOverhead.
const (
	// TimingThreadCPU times each loop by the CPU time of the thread that
	// runs it (CLOCK_THREAD_CPUTIME_ID), user and kernel: what the meter
	// adds in the kernel on the thread's behalf counts, the time the
	// thread spends preempted by other jobs does not. On a loaded host
	// that keeps most of the load's noise out of the figures: with two
	// busy loops on a 2-CPU VM, one run each, the tracepoint's metered
	// call had paired differences of IQR 253 ns (too noisy to measure)
	// by the wall clock, and of IQR 9 ns (77 ns [72, 81]) by this one.
	TimingThreadCPU Timing = iota
	// TimingWall times each loop by BenchOptions.Now: what the caller
	// waits, preemptions included.
	TimingWall
)

// String names the timing as the JSON and text reports do.
func (t Timing) String() string {
	switch t {
	case TimingThreadCPU:
		return "thread_cpu"
	case TimingWall:
		return "wall"
	}
	return fmt.Sprintf("timing(%d)", int(t))
}

// MarshalText implements encoding.TextMarshaler.
func (t Timing) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// threadCPU reads this thread's CPU time.
func threadCPU() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return time.Time{}
	}
	return time.Unix(0, ts.Nano())
}

// Spread summarises one figure's paired differences over the runs (see
// MeasureOverhead) and gives the noise rule's verdict on it.
type Spread struct {
	Median float64 `json:"median"`
	P25    float64 `json:"p25"`
	P75    float64 `json:"p75"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// IQR is the interquartile range, P75 − P25: the spread the noise
	// rule weighs.
	IQR float64 `json:"iqr"`
	// TooNoisy is the noise rule's verdict (see Noisy): the spread of the
	// paired differences exceeds the figure, so Median measures nothing
	// and is not to be reported as the cost.
	TooNoisy bool `json:"too_noisy"`
	// Paired are the paired differences, in the order of the runs.
	Paired []float64 `json:"paired"`
}

// Noisy is the noise rule: a figure is too noisy to measure when the
// interquartile range of its paired differences is larger than the
// absolute value of their median. A difference smaller than the spread of
// the very runs it comes from cannot be told from noise: a loaded host
// gives such spreads, and a negative cost of an unrelated syscall
// (−66.8 ns, printed once on a busy host) is what reporting one anyway
// looks like.
func Noisy(iqr, median float64) bool { return iqr > math.Abs(median) }

// paired returns the paired differences of runs that alternate without
// and with the meter, ABAB…A (an odd number of runs, odd indices with the
// meter): each run with the meter less the mean of its two neighbours,
// or, relative, that difference in percent of the mean.
func paired(runs []float64, relative bool) []float64 {
	var d []float64
	for i := 1; i+1 < len(runs); i += 2 {
		off := (runs[i-1] + runs[i+1]) / 2
		x := runs[i] - off
		if relative {
			x = 100 * x / off
		}
		d = append(d, x)
	}
	return d
}

// without returns the runs without the meter of an ABAB…A series.
func without(runs []float64) []float64 {
	var xs []float64
	for i := 0; i < len(runs); i += 2 {
		xs = append(xs, runs[i])
	}
	return xs
}

// judge summarises paired differences and applies the noise rule.
func judge(diffs []float64) Spread {
	s := spread(diffs)
	s.IQR = s.P75 - s.P25
	s.TooNoisy = Noisy(s.IQR, s.Median)
	s.Paired = slices.Clone(diffs)
	return s
}

// spread summarises xs: its median, quartiles, least and greatest.
func spread(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := p * float64(len(s)-1)
		lo := int(i)
		if lo+1 >= len(s) {
			return s[lo]
		}
		return s[lo] + (i-float64(lo))*(s[lo+1]-s[lo])
	}
	return Spread{Median: q(0.5), P25: q(0.25), P75: q(0.75), Min: s[0], Max: s[len(s)-1]}
}

// BenchAttach is the cost of one attachment.
type BenchAttach struct {
	Attach Attach `json:"attach"`
	// Err says why the attachment could not be measured.
	Err string `json:"error,omitempty"`
	// MeteredNs is the extra time per metered call (madvise of one
	// page, MADV_DONTNEED, from a watched cgroup), in ns.
	MeteredNs Spread `json:"metered_ns"`
	// UnrelatedNs is the extra time per unrelated syscall (getppid), in
	// ns.
	UnrelatedNs Spread `json:"unrelated_ns"`
	// ChurnPct is the slowdown of the Miner's churn step, in percent.
	ChurnPct Spread `json:"churn_pct"`
	// Base* are the medians of the runs without the meter: ns per
	// madvise, ns per getppid, µs per churn step.
	BaseMeteredNs   float64 `json:"base_metered_ns"`
	BaseUnrelatedNs float64 `json:"base_unrelated_ns"`
	BaseChurnUs     float64 `json:"base_churn_us"`
	// Counted is the number of metered madvise calls the meter counted
	// during the attached runs, and Expected the number made: Counted
	// must be at least Expected (the Go runtime may add its own).
	Counted  uint64 `json:"counted"`
	Expected uint64 `json:"expected"`
}

// BenchResult is what MeasureOverhead measured.
type BenchResult struct {
	Timing     Timing        `json:"timing"`
	Runs       int           `json:"runs"`
	Calls      int           `json:"calls_per_loop"`
	ChurnSteps int           `json:"churn_steps"`
	Attach     []BenchAttach `json:"attachments"`
}

// MeasureOverhead measures what the meter costs: for each attachment, the
// same tight loops (metered madvise, unrelated getppid, Miner churn steps)
// from a watched cgroup, in runs that alternate without and with the meter
// attached, ABAB…A: Runs runs with it, each between two without it, after
// one unrecorded pair to warm up. Each run with the meter is paired with
// the mean of its two neighbours without it, which cancels a drift of the
// host's speed that is linear over the three runs; the figures are those
// paired differences, summarised over the runs (Spread), and each is
// judged by the noise rule (Noisy): a figure whose paired differences
// spread wider than itself is too noisy to measure. It needs root, and
// moves this process into a cgroup2 directory of its own while it runs.
func MeasureOverhead(ctx context.Context, opts BenchOptions) (BenchResult, error) {
	switch opts.Timing {
	case TimingThreadCPU:
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			return BenchResult{}, fmt.Errorf("meter: bench: no thread CPU clock: %w", err)
		}
		opts.Now = threadCPU
	case TimingWall:
		if opts.Now == nil {
			return BenchResult{}, errors.New("meter: bench: wall timing without a clock")
		}
	default:
		return BenchResult{}, fmt.Errorf("meter: bench: unknown %v", opts.Timing)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.Runs, 15)
	def(&opts.Calls, 100000)
	def(&opts.ChurnSteps, 20)
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = "/sys/fs/cgroup"
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	attachments := opts.Attachments
	if attachments == nil {
		attachments = DefaultOrder
	}
	res := BenchResult{Timing: opts.Timing, Runs: opts.Runs, Calls: opts.Calls, ChurnSteps: opts.ChurnSteps}

	id, restore, err := ownCgroup(opts.CgroupRoot, opts.ProcRoot)
	if err != nil {
		return res, err
	}
	defer restore()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	page := uintptr(os.Getpagesize())
	mem, err := unix.Mmap(-1, 0, int(page), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return res, fmt.Errorf("meter: bench: %w", err)
	}
	defer unix.Munmap(mem)
	addr := uintptr(unsafeAddr(mem))

	for _, a := range attachments {
		ba := BenchAttach{Attach: a}
		if err := benchOne(ctx, &ba, opts, id, addr, page); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			ba.Err = err.Error()
		}
		res.Attach = append(res.Attach, ba)
	}
	return res, nil
}

func benchOne(ctx context.Context, ba *BenchAttach, opts BenchOptions, id uint64, addr, page uintptr) error {
	m, err := OpenEBPF(EBPFOptions{Order: []Attach{ba.Attach}, SysRoot: opts.SysRoot})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Watch(id); err != nil {
		return err
	}
	if err := m.detachLinks(); err != nil {
		return err
	}
	loop := func(trap, a1, a2, a3 uintptr) (float64, error) {
		start := opts.Now()
		for range opts.Calls {
			if _, _, e := syscall.RawSyscall(trap, a1, a2, a3); e != 0 {
				return 0, e
			}
		}
		return float64(opts.Now().Sub(start).Nanoseconds()) / float64(opts.Calls), nil
	}
	churn := func() (float64, error) {
		start := opts.Now()
		var kept []byte
		for i := range opts.ChurnSteps {
			if kept == nil {
				b, err := unix.Mmap(-1, 0, 4<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
				if err != nil {
					return 0, err
				}
				kept = b
			}
			for off := 0; off < len(kept); off += int(page) {
				kept[off] = byte(i) | 1
			}
			if i%2 == 0 {
				if err := unix.Madvise(kept, unix.MADV_DONTNEED); err != nil {
					return 0, err
				}
			} else {
				if err := unix.Munmap(kept); err != nil {
					return 0, err
				}
				kept = nil
			}
		}
		if kept != nil {
			unix.Munmap(kept)
		}
		return float64(opts.Now().Sub(start).Nanoseconds()) / 1e3 / float64(opts.ChurnSteps), nil
	}
	type sample struct{ metered, unrelated, churn float64 }
	measure := func() (sample, error) {
		var s sample
		var err error
		if s.unrelated, err = loop(unix.SYS_GETPPID, 0, 0, 0); err != nil {
			return s, err
		}
		if s.metered, err = loop(unix.SYS_MADVISE, addr, page, unix.MADV_DONTNEED); err != nil {
			return s, err
		}
		s.churn, err = churn()
		return s, err
	}

	attached := false
	set := func(on bool) error {
		if on == attached {
			return nil
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if on {
			if err := m.attachLinks(); err != nil {
				return err
			}
		} else if err := m.detachLinks(); err != nil {
			return err
		}
		attached = on
		return nil
	}
	defer set(false)

	before, err := m.Read()
	if err != nil {
		return err
	}
	// Warm-up: one run without and one with the meter, not recorded.
	for _, on := range []bool{false, true} {
		if err := set(on); err != nil {
			return err
		}
		if _, err := measure(); err != nil {
			return err
		}
	}
	// ABAB…A: run i is with the meter when i is odd.
	runs := make([]sample, 2*opts.Runs+1)
	for i := range runs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := set(i%2 == 1); err != nil {
			return err
		}
		if runs[i], err = measure(); err != nil {
			return err
		}
	}
	if err := set(false); err != nil {
		return err
	}
	column := func(f func(sample) float64) []float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		return xs
	}
	met := column(func(s sample) float64 { return s.metered })
	unr := column(func(s sample) float64 { return s.unrelated })
	chu := column(func(s sample) float64 { return s.churn })
	ba.Expected = uint64(opts.Runs) * (uint64(opts.Calls) + uint64((opts.ChurnSteps+1)/2))
	after, err := m.Read()
	if err != nil {
		return err
	}
	// The warm-up run was counted too.
	ba.Counted = after[id].Sub(before[id]).Calls[MadviseDontneed] - uint64(opts.Calls) - uint64((opts.ChurnSteps+1)/2)
	ba.MeteredNs, ba.UnrelatedNs, ba.ChurnPct = judge(paired(met, false)), judge(paired(unr, false)), judge(paired(chu, true))
	ba.BaseMeteredNs, ba.BaseUnrelatedNs, ba.BaseChurnUs = spread(without(met)).Median, spread(without(unr)).Median, spread(without(chu)).Median
	if ba.Counted < ba.Expected {
		return fmt.Errorf("meter counted %d metered calls, want at least %d", ba.Counted, ba.Expected)
	}
	return nil
}

// ownCgroup moves this process into a new cgroup2 directory and returns
// its id and a function that moves the process back and removes it.
func ownCgroup(cgroupRoot, procRoot string) (uint64, func(), error) {
	v2 := V2Root(cgroupRoot)
	if v2 == "" {
		return 0, nil, fmt.Errorf("meter: bench: no cgroup2 hierarchy under %s", cgroupRoot)
	}
	orig, err := selfV2Cgroup(procRoot)
	if err != nil {
		return 0, nil, err
	}
	pid := strconv.Itoa(os.Getpid())
	dir := filepath.Join(v2, "maxwell-bench-landauer-"+pid)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, nil, fmt.Errorf("meter: bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(pid), 0); err != nil {
		os.Remove(dir)
		return 0, nil, fmt.Errorf("meter: bench: moving into %s: %w", dir, err)
	}
	restore := func() {
		os.WriteFile(filepath.Join(v2, orig, "cgroup.procs"), []byte(pid), 0)
		os.Remove(dir)
	}
	return inode(dir), restore, nil
}

// selfV2Cgroup returns this process's cgroup2 path, relative to the
// hierarchy's root, from procRoot/self/cgroup's "0::" line.
func selfV2Cgroup(procRoot string) (string, error) {
	f, err := os.Open(filepath.Join(procRoot, "self", "cgroup"))
	if err != nil {
		return "", fmt.Errorf("meter: bench: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("meter: bench: no cgroup2 line in %s", f.Name())
}
