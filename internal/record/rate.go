package record

import "time"

// CounterRate returns how fast a cell's counter grew between two instants
// of a run, per second, from the samples nearest inside [from, to]. ok is
// false when the window holds fewer than two samples with the counter.
func CounterRate(r Run, cell, counter string, from, to time.Duration) (rate float64, ok bool) {
	var (
		first, last     uint64
		firstT, lastT   time.Duration
		haveFirst, have bool
	)
	for _, s := range r.Samples {
		if s.Elapsed < from || s.Elapsed > to {
			continue
		}
		for _, c := range s.Cells {
			v, present := c.Counters[counter]
			if c.Cell != cell || !present {
				continue
			}
			if !haveFirst {
				first, firstT, haveFirst = v, s.Elapsed, true
			}
			last, lastT, have = v, s.Elapsed, true
		}
	}
	if !have || lastT <= firstT || last < first {
		return 0, false
	}
	return float64(last-first) / (lastT - firstT).Seconds(), true
}
