package units

import (
	"math"
	"testing"
)

func TestCreditsArithmetic(t *testing.T) {
	for _, tc := range []struct {
		a, b     Credits
		sum, dif Credits
		sok, dok bool
	}{
		{1, 2, 3, -1, true, true},
		{math.MaxInt64, 1, 0, math.MaxInt64 - 1, false, true},
		{math.MinInt64, -1, 0, math.MinInt64 + 1, false, true},
		{0, math.MinInt64, math.MinInt64, 0, true, false},
		{-1, math.MinInt64, 0, math.MaxInt64, false, true},
	} {
		if s, ok := tc.a.Add(tc.b); ok != tc.sok || (ok && s != tc.sum) {
			t.Errorf("%d.Add(%d) = %d, %t", tc.a, tc.b, s, ok)
		}
		if d, ok := tc.a.Sub(tc.b); ok != tc.dok || (ok && d != tc.dif) {
			t.Errorf("%d.Sub(%d) = %d, %t", tc.a, tc.b, d, ok)
		}
	}
	if c, ok := CreditsFor(3 * Joule); !ok || c != 3_000_000 || c.Joules() != 3 {
		t.Errorf("CreditsFor(3 J) = %d, %v", c, ok)
	}
	if _, ok := CreditsFor(math.MaxUint64); ok {
		t.Error("CreditsFor(max) ok")
	}
	if s := Credits(-42).String(); s != "-42 credits" {
		t.Errorf("String = %q", s)
	}
}
