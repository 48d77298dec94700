package meter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
	// Runs is the number of paired runs (without, then with the meter
	// attached); 0 means 15.
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
	// Now reads the monotonic clock that times the loops.
	Now func() time.Time
}

// Spread summarises paired differences over the runs.
type Spread struct {
	Median float64 `json:"median"`
	P25    float64 `json:"p25"`
	P75    float64 `json:"p75"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

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
	// Base* are the medians without the meter: ns per madvise, ns per
	// getppid, µs per churn step.
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
	Runs       int           `json:"runs"`
	Calls      int           `json:"calls_per_loop"`
	ChurnSteps int           `json:"churn_steps"`
	Attach     []BenchAttach `json:"attachments"`
}

// MeasureOverhead measures what the meter costs: for each attachment,
// Runs times, the same tight loops (metered madvise, unrelated getppid,
// Miner churn steps) without and then with the meter attached, from a
// watched cgroup; each figure is the paired difference, summarised over
// the runs. It needs root, and moves this process into a cgroup2
// directory of its own while it runs.
func MeasureOverhead(ctx context.Context, opts BenchOptions) (BenchResult, error) {
	if opts.Now == nil {
		return BenchResult{}, errors.New("meter: bench: no clock")
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
	res := BenchResult{Runs: opts.Runs, Calls: opts.Calls, ChurnSteps: opts.ChurnSteps}

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
		return float64(opts.Now().Sub(start).Microseconds()) / float64(opts.ChurnSteps), nil
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

	before, err := m.Read()
	if err != nil {
		return err
	}
	var dMet, dUnr, dChurn, bMet, bUnr, bChurn []float64
	// One warm-up pair, not recorded.
	for run := -1; run < opts.Runs; run++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		off, err := measure()
		if err != nil {
			return err
		}
		m.mu.Lock()
		err = m.attachLinks()
		m.mu.Unlock()
		if err != nil {
			return err
		}
		on, err := measure()
		m.mu.Lock()
		derr := m.detachLinks()
		m.mu.Unlock()
		if err != nil {
			return err
		}
		if derr != nil {
			return derr
		}
		if run < 0 {
			continue
		}
		ba.Expected += uint64(opts.Calls) + uint64((opts.ChurnSteps+1)/2)
		dMet = append(dMet, on.metered-off.metered)
		dUnr = append(dUnr, on.unrelated-off.unrelated)
		dChurn = append(dChurn, 100*(on.churn-off.churn)/off.churn)
		bMet, bUnr, bChurn = append(bMet, off.metered), append(bUnr, off.unrelated), append(bChurn, off.churn)
	}
	after, err := m.Read()
	if err != nil {
		return err
	}
	// The warm-up run was counted too.
	ba.Counted = after[id].Sub(before[id]).Calls[MadviseDontneed] - uint64(opts.Calls) - uint64((opts.ChurnSteps+1)/2)
	ba.MeteredNs, ba.UnrelatedNs, ba.ChurnPct = spread(dMet), spread(dUnr), spread(dChurn)
	ba.BaseMeteredNs, ba.BaseUnrelatedNs, ba.BaseChurnUs = spread(bMet).Median, spread(bUnr).Median, spread(bChurn).Median
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
