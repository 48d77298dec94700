// Package workload holds the CPU workloads Maxwell's first experiment pits
// against each other: a Scientist that counts primes and a Miner that burns
// cycles and churns memory. Each uses all the threads it is given, reports
// cumulative counters at an interval through a callback, and stops promptly
// when its context ends.
package workload

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/internal/clock"
)

// DefaultInterval is the report interval used when none is set.
const DefaultInterval = time.Second

// AvailableCPUs returns how many CPUs this process may run on, from its
// scheduler affinity mask (which a cell's cpuset or taskset narrows), or
// runtime.NumCPU if the mask cannot be read.
func AvailableCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		if n := set.Count(); n > 0 {
			return n
		}
	}
	return runtime.NumCPU()
}

func orClock(c clock.Clock) clock.Clock {
	if c == nil {
		return clock.System()
	}
	return c
}

func orInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultInterval
	}
	return d
}

func orThreads(n int) int {
	if n == 0 {
		return AvailableCPUs()
	}
	return n
}
