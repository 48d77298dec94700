package market

// idSet detects duplicate IDs without allocating in the steady state. When
// the IDs span a range not much wider than their count (the usual case: cell
// or slot numbers), it uses a bitset over that range, which costs a few
// nanoseconds per ID; otherwise it falls back to a reused map.
type idSet struct {
	bits  []uint64
	m     map[int]struct{}
	lo    int
	dense bool
}

// reset empties s for a batch of n IDs, all within [lo, hi].
func (s *idSet) reset(lo, hi, n int) {
	span := uint64(hi) - uint64(lo) // hi ≥ lo; exact even across the sign
	s.lo = lo
	s.dense = span < 64*uint64(n)+4096
	if s.dense {
		words := int(span/64) + 1
		if cap(s.bits) < words {
			s.bits = make([]uint64, words)
		}
		s.bits = s.bits[:words]
		clear(s.bits)
		return
	}
	if s.m == nil {
		s.m = make(map[int]struct{}, n)
	}
	clear(s.m)
}

// add records id and reports whether it was already there.
func (s *idSet) add(id int) (dup bool) {
	if s.dense {
		off := uint64(id) - uint64(s.lo)
		w, b := off/64, uint64(1)<<(off%64)
		dup = s.bits[w]&b != 0
		s.bits[w] |= b
		return dup
	}
	if _, dup = s.m[id]; !dup {
		s.m[id] = struct{}{}
	}
	return dup
}
