package control

import (
	"math"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

func TestReservePrice(t *testing.T) {
	const maxU = math.MaxUint64
	tests := []struct {
		name     string
		expected units.Energy
		m        float64
		want     uint64
	}{
		{"unit multiplier", 1500, 1, 1500},
		{"integer multiplier", 1500, 3, 4500},
		{"fraction", 1000, 1.5, 1500},
		{"rounds half up", 1, 1.5, 2},
		{"rounds down below half", 3, 1.1, 3}, // 3.3
		{"rounds up above half", 7, 1.1, 8},   // 7.7
		{"one joule at 1.25", units.Joule, 1.25, 1250000},
		{"zero energy", 0, 7, 0},
		{"below 1 is 1", 1000, 0.5, 1000},
		{"negative is 1", 1000, -3, 1000},
		{"NaN is ceiling", 1000, math.NaN(), maxU},
		{"+Inf is ceiling", 1000, math.Inf(1), maxU},
		{"-Inf is 1", 1000, math.Inf(-1), 1000},
		// 2^60 µJ × 1.5: exact, beyond float64's 53-bit integers.
		{"large exact", 1<<60 + 1, 1.5, 3<<59 + 2},
		{"large integer mult", 1<<62 + 3, 3, 3<<62 + 9},
		{"overflow by whole part", 1 << 62, 4, maxU},
		{"overflow by fraction", maxU - 1, 1.5, maxU},
		{"max energy unit mult", maxU, 1, maxU},
		{"huge multiplier", 2, 1e30, maxU},
		{"2^63 × 1.5", 1 << 63, 1.5, 3 << 62},
		{"2^63 × 2 overflows", 1 << 63, 2, maxU},
		{"overflow by rounding carry", maxU, 1 + 0x1p-52, maxU},
		{"fits", (1 << 63) / 3 * 2, 1.5, (1 << 63) / 3 * 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reservePrice(tt.expected, tt.m); got != tt.want {
				t.Errorf("reservePrice(%d, %v) = %d, want %d", tt.expected, tt.m, got, tt.want)
			}
			want := units.Credits(min(tt.want, math.MaxInt64))
			if got := ReservePrice(tt.expected, tt.m); got != want {
				t.Errorf("ReservePrice(%d, %v) = %d, want %d", tt.expected, tt.m, got, want)
			}
		})
	}
}

// TestReservePriceMatchesFloat compares with float64 arithmetic where that
// is exact enough (products well under 2^53).
func TestReservePriceMatchesFloat(t *testing.T) {
	for _, e := range []units.Energy{1, 7, 999, 123456, 98765432} {
		for m := 1.0; m < 20; m += 0.37 {
			want := units.Credits(math.Floor(float64(e)*m + 0.5))
			if got := ReservePrice(e, m); got != want {
				t.Errorf("ReservePrice(%d, %v) = %d, want %d", e, m, got, want)
			}
		}
	}
}
