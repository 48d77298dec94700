package model

import (
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Interval is what was measured over one sampling interval.
type Interval struct {
	Elapsed time.Duration // length of the interval
	Energy  units.Energy  // host energy spent in it
	// Utilisation is the busy fraction of the run's CPUs in it.
	Utilisation float64
	NumCPU      int
	// CellCPU is each cell's CPU time in it.
	CellCPU []time.Duration
}

// Split is how an interval's energy and CPU divide among the cells.
type Split struct {
	Energy []units.Energy
	Share  []float64
}

// Attribute, the ratio model of per-cell energy, divides an interval's host energy among the cells in proportion
// to the CPU time each used, out of all the CPU time the run's CPUs were
// busy (the rule Kepler and Scaphandre use: a cell's energy = host energy ×
// its CPU time / busy CPU time). Busy time that belongs to no cell (the
// kernel, Maxwell itself, other processes) keeps its part, which no cell is
// charged. The busy time is the larger of the host's busy time and the sum
// of the cells' CPU time, since the two are read at slightly different
// instants. Share is each cell's CPU time over the capacity of the run's CPUs
// for the interval.
//
// Attribute is pure; the split never exceeds the interval's energy.
func Attribute(iv Interval) Split {
	s := Split{Energy: make([]units.Energy, len(iv.CellCPU)), Share: make([]float64, len(iv.CellCPU))}
	capacity := iv.Elapsed.Seconds() * float64(iv.NumCPU)
	if capacity <= 0 {
		return s
	}
	busy := iv.Utilisation * capacity
	var cells float64
	for _, c := range iv.CellCPU {
		cells += c.Seconds()
	}
	busy = max(busy, cells)
	if busy <= 0 {
		return s
	}
	for i, c := range iv.CellCPU {
		s.Share[i] = min(1, c.Seconds()/capacity)
		s.Energy[i] = units.Energy(float64(iv.Energy) * c.Seconds() / busy)
	}
	return s
}
