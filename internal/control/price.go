package control

import (
	"math"
	"math/bits"

	"github.com/maxwellhq/maxwell/internal/units"
)

// ReservePrice returns the reserve price, in credits ($JOULE, one credit per
// microjoule of host energy), of a slot expected to spend expected energy
// when the thermal price multiplier is multiplier: expected × multiplier,
// rounded to the nearest credit (halves round up).
//
// The arithmetic is exact integer arithmetic on the multiplier's binary
// value, with no float64 rounding of large energies. A multiplier below 1
// is taken as 1 (heat never makes energy cheaper than its cost); NaN is
// taken as +Inf (an unknown price is the ceiling, as in FailSafe). A
// product that does not fit in units.Credits saturates at math.MaxInt64.
func ReservePrice(expected units.Energy, multiplier float64) units.Credits {
	return units.Credits(min(reservePrice(expected, multiplier), math.MaxInt64))
}

func reservePrice(expected units.Energy, multiplier float64) uint64 {
	e := uint64(expected)
	switch {
	case math.IsNaN(multiplier):
		multiplier = math.Inf(1)
	case !(multiplier >= 1):
		multiplier = 1
	}
	if e == 0 {
		return 0
	}
	if multiplier >= 1<<64 { // includes +Inf
		return math.MaxUint64
	}
	whole, frac := math.Modf(multiplier)
	hi, lo := bits.Mul64(e, uint64(whole))
	if hi != 0 {
		return math.MaxUint64
	}
	// multiplier ≥ 1, so its unit in the last place is at least 2⁻⁵², and
	// frac = k·2⁻⁵² exactly for an integer k < 2⁵².
	const fracBits = 52
	k := uint64(math.Ldexp(frac, fracBits))
	fh, fl := bits.Mul64(e, k)
	// Round e·k/2⁵² to nearest, halves up.
	fl, carry := bits.Add64(fl, 1<<(fracBits-1), 0)
	fh += carry
	part := fh<<(64-fracBits) | fl>>fracBits
	sum, carry := bits.Add64(lo, part, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return sum
}
