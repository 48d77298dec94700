package workload

import (
	"context"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/internal/clock"
)

// Counter names reported by the Sorter.
const (
	CounterRecordsSorted = "records_sorted" // 8-byte records sorted and checked in order
	CounterRuns          = "sort_runs"      // runs sorted
	CounterBytesFreed    = "bytes_freed"    // bytes of sorted runs unmapped
)

// Sorter is useful work that is hungry for memory, as an external sort's
// run phase is: it maps a run of RunSize bytes, fills it with
// pseudo-random 8-byte records, sorts them, checks the order, and unmaps
// the run, again and again. Every run freed is memory the Landauer meter
// counts, so a Sorter pays a real tax for real work: the scenario that
// funds it shows whether the tax lets it live.
type Sorter struct {
	// RunSize is the bytes of one run, rounded down to whole records; 0
	// means 64 MiB.
	RunSize int
	// Interval is the report interval. 0 means DefaultInterval.
	Interval time.Duration
	// Clock supplies the report ticker. nil means clock.System().
	Clock clock.Clock
}

// Run sorts runs until ctx ends, reporting CounterRecordsSorted,
// CounterRuns and CounterBytesFreed every Interval (between runs) and
// once more before returning ctx's error.
func (s Sorter) Run(ctx context.Context, report func(map[string]uint64)) error {
	size := s.RunSize
	if size == 0 {
		size = 64 << 20
	}
	size -= size % 8
	if size < 8 || size > 1<<34 {
		return fmt.Errorf("workload: sorter: run size %d out of range [8, 16 GiB]", s.RunSize)
	}
	tick := orClock(s.Clock).NewTicker(orInterval(s.Interval))
	defer tick.Stop()
	var records, runs, freed uint64
	counters := func() map[string]uint64 {
		return map[string]uint64{CounterRecordsSorted: records, CounterRuns: runs, CounterBytesFreed: freed}
	}
	seed := uint64(0x9e3779b97f4a7c15)
	for {
		select {
		case <-ctx.Done():
			report(counters())
			return ctx.Err()
		case <-tick.Chan():
			report(counters())
		default:
		}
		mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return fmt.Errorf("workload: sorter: mmap %d bytes: %w", size, err)
		}
		recs := unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), size/8)
		for i := range recs {
			// xorshift64*: cheap, deterministic, spread over the range.
			seed ^= seed >> 12
			seed ^= seed << 25
			seed ^= seed >> 27
			recs[i] = seed * 0x2545f4914f6cdd1d
		}
		slices.Sort(recs)
		sorted := slices.IsSorted(recs)
		if err := unix.Munmap(mem); err != nil {
			return fmt.Errorf("workload: sorter: munmap: %w", err)
		}
		if !sorted {
			return fmt.Errorf("workload: sorter: a run came out unsorted")
		}
		records += uint64(len(recs))
		runs++
		freed += uint64(size)
	}
}
