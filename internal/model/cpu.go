package model

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"

	"github.com/prometheus/procfs"
)

// Errors from CPUSampler.
var (
	// ErrCPUNotFound means a CPU of the sampled set has no line in
	// <proc>/stat: it does not exist or is offline (the kernel lists
	// online CPUs only).
	ErrCPUNotFound = errors.New("model: cpu not in /proc/stat")
	// ErrCounterBackwards means a CPU time counter went down between two
	// samples, as the aggregate line does when a CPU goes offline. The
	// sampler restarts from the new reading.
	ErrCounterBackwards = errors.New("model: cpu time counter went backwards")
)

// cpuTimes are the busy and idle CPU times of a set of CPUs, in seconds.
type cpuTimes struct{ busy, idle float64 }

// times splits a /proc/stat cpu line into busy and idle time.
//
// Busy is user + nice + system + irq + softirq + steal. Idle is idle +
// iowait: a CPU waiting for I/O runs nothing and draws idle power. Guest
// and guest_nice are not added, because the kernel already counts them in
// user and nice. Steal counts as busy: on a VM it is time the hypervisor
// gave another guest while this one wanted to run, and from the point of
// view of the work offered it is load.
func times(s procfs.CPUStat) cpuTimes {
	return cpuTimes{
		busy: s.User + s.Nice + s.System + s.IRQ + s.SoftIRQ + s.Steal,
		idle: s.Idle + s.Iowait,
	}
}

// CPUSampler measures CPU utilisation from the kernel's CPU time counters
// in <proc>/stat: the fraction of CPU time that was busy between two
// samples. Each Sample consumes the interval since the one before, so two
// consumers that each want "utilisation since my last look" (an Estimator
// and a recorder, say) need a sampler each. It is safe for concurrent use.
type CPUSampler struct {
	path string  // <proc>/stat
	cpus []int64 // nil: all CPUs, from the aggregate "cpu" line

	mu   sync.Mutex
	prev cpuTimes
	last float64
}

// NewCPUSampler returns a sampler reading procRoot/stat (procRoot is where
// procfs is mounted, normally /proc). With no cpus it measures the whole
// host from the aggregate line; with cpus it sums the per-CPU lines of those
// CPU ids. It takes a first reading as the baseline for the first Sample.
func NewCPUSampler(procRoot string, cpus ...int) (*CPUSampler, error) {
	s := &CPUSampler{path: filepath.Join(procRoot, "stat")}
	if len(cpus) > 0 {
		for _, c := range cpus {
			if c < 0 {
				return nil, fmt.Errorf("%w: cpu id %d", ErrBadParam, c)
			}
			s.cpus = append(s.cpus, int64(c))
		}
		slices.Sort(s.cpus)
		s.cpus = slices.Compact(s.cpus)
	}
	var err error
	if s.prev, err = s.read(); err != nil {
		return nil, err
	}
	return s, nil
}

// NumCPU returns how many CPUs the sampler measures: the size of its CPU
// set, or the number of per-CPU lines in the stat file when it measures the
// whole host.
func (s *CPUSampler) NumCPU() (int, error) {
	if s.cpus != nil {
		return len(s.cpus), nil
	}
	st, err := readCPUStats(s.path)
	if err != nil {
		return 0, fmt.Errorf("model: read cpu stat: %w", err)
	}
	return len(st.cpu), nil
}

// read returns the current busy and idle times of the sampled CPUs.
func (s *CPUSampler) read() (cpuTimes, error) {
	st, err := readCPUStats(s.path)
	if err != nil {
		return cpuTimes{}, fmt.Errorf("model: read cpu stat: %w", err)
	}
	if s.cpus == nil {
		return times(st.total), nil
	}
	var sum cpuTimes
	for _, c := range s.cpus {
		cs, ok := st.cpu[c]
		if !ok {
			return cpuTimes{}, fmt.Errorf("%w: cpu%d", ErrCPUNotFound, c)
		}
		t := times(cs)
		sum.busy += t.busy
		sum.idle += t.idle
	}
	return sum, nil
}

// Sample returns the utilisation of the sampled CPUs, in [0, 1], since the
// previous Sample (or since NewCPUSampler for the first).
//
// If no CPU time at all has passed since then (the counters tick at
// USER_HZ, 100 Hz), Sample returns the previous figure and keeps the old
// baseline, so that the next call covers the longer interval. If a counter
// went backwards (CPU hotplug), Sample returns 0 and an error wrapping
// ErrCounterBackwards, and takes the new reading as its baseline; it never
// returns a negative utilisation.
func (s *CPUSampler) Sample() (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.read()
	if err != nil {
		return 0, err
	}
	dBusy, dIdle := cur.busy-s.prev.busy, cur.idle-s.prev.idle
	if dBusy < 0 || dIdle < 0 {
		s.prev = cur
		return 0, fmt.Errorf("%w: busy %+.2f s, idle %+.2f s", ErrCounterBackwards, dBusy, dIdle)
	}
	total := dBusy + dIdle
	if total == 0 {
		return s.last, nil
	}
	s.prev = cur
	s.last = dBusy / total
	return s.last, nil
}
