package ledger

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Credits is an amount of money in µJ-credits: one unit is the price of one
// microjoule (µJ) of host energy, the unit of units.Energy. Maxwell speaks of
// "micro-credits" and of "credits that are microjoules"; both mean this one
// integer unit. Amounts are signed so that a wallet may overdraw and so that
// the mint's balance can be −minted. There are no fractions and no floats.
type Credits int64

// String formats c as an integer count of µJ-credits.
func (c Credits) String() string { return fmt.Sprintf("%d µc", int64(c)) }

// FromEnergy converts an amount of energy to the credits that pay for it,
// one µJ-credit per µJ. It fails with ErrOverflow above math.MaxInt64 µJ.
func FromEnergy(e units.Energy) (Credits, error) {
	if e > math.MaxInt64 {
		return 0, fmt.Errorf("ledger: %w: %d µJ", ErrOverflow, uint64(e))
	}
	return Credits(e), nil
}

// add returns a+b, or ok == false where the sum overflows int64.
func add(a, b Credits) (Credits, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// sub returns a−b, or ok == false where the difference overflows int64.
func sub(a, b Credits) (Credits, bool) {
	if b == math.MinInt64 {
		if a >= 0 {
			return 0, false
		}
		return add(a+1, math.MaxInt64)
	}
	return add(a, -b)
}

// tapIncome returns what a tap of rate µJ-credits per second pays over
// elapsed to a wallet holding balance, without lifting the balance above
// ceiling. Fractions of a µJ-credit are truncated. rate and ceiling are
// non-negative; a negative elapsed pays nothing.
func tapIncome(rate, ceiling, balance Credits, elapsed time.Duration) Credits {
	if rate <= 0 || elapsed <= 0 || balance >= ceiling {
		return 0
	}
	room, ok := sub(ceiling, balance)
	if !ok {
		room = math.MaxInt64
	}
	hi, lo := bits.Mul64(uint64(rate), uint64(elapsed.Nanoseconds()))
	income := Credits(math.MaxInt64)
	if hi < uint64(time.Second) {
		q, _ := bits.Div64(hi, lo, uint64(time.Second))
		if q <= math.MaxInt64 {
			income = Credits(q)
		}
	}
	return min(income, room)
}
