package units

import (
	"fmt"
	"math"
)

// Credits is an amount of Maxwell's money. One credit pays for one
// microjoule (µJ) of host energy, the unit of Energy, so an amount of
// credits is an amount of energy. Amounts are whole numbers, signed so that a
// wallet may overdraw and the mint's balance can be −minted; there are no
// fractions and no floats. Every package from the market to the API and the
// dashboard counts money in Credits.
type Credits int64

// String formats c as a count of credits.
func (c Credits) String() string { return fmt.Sprintf("%d credits", int64(c)) }

// Joules returns the energy c pays for, in joules.
func (c Credits) Joules() float64 { return float64(c) / float64(Joule) }

// CreditsFor returns the credits that pay for energy e, one per µJ, and
// false where e exceeds the largest amount of credits.
func CreditsFor(e Energy) (Credits, bool) {
	if e > math.MaxInt64 {
		return 0, false
	}
	return Credits(e), true
}

// Add returns c+d, and false where the sum overflows.
func (c Credits) Add(d Credits) (Credits, bool) {
	s := c + d
	if (d > 0 && s < c) || (d < 0 && s > c) {
		return 0, false
	}
	return s, true
}

// Sub returns c−d, and false where the difference overflows.
func (c Credits) Sub(d Credits) (Credits, bool) {
	if d == math.MinInt64 {
		if c >= 0 {
			return 0, false
		}
		return (c + 1).Add(math.MaxInt64)
	}
	return c.Add(-d)
}
