package units

import (
	"math"
	"testing"
	"time"
)

func TestWrap(t *testing.T) {
	tests := []struct {
		name           string
		prev, cur, max Energy
		want           Energy
	}{
		{"forward", 100, 250, 1000, 150},
		{"no change", 7, 7, 1000, 0},
		{"wrapped once", 900, 50, 999, 150},
		{"wrapped at top", 999, 0, 999, 1},
		{"unknown range backwards", 900, 50, 0, 0},
		{"prev beyond range", 5000, 10, 999, 0},
		{"powercap 32-bit range", 262143328850 - 10, 5, 262143328850, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Wrap(tt.prev, tt.cur, tt.max); got != tt.want {
				t.Errorf("Wrap(%d, %d, %d) = %d, want %d", tt.prev, tt.cur, tt.max, got, tt.want)
			}
		})
	}
}

func TestEnergyConversions(t *testing.T) {
	if got := EnergyFromJoules(1.5); got != 1500000 {
		t.Errorf("EnergyFromJoules(1.5) = %d", got)
	}
	if got := EnergyFromJoules(math.NaN()); got != 0 {
		t.Errorf("EnergyFromJoules(NaN) = %d", got)
	}
	if got := EnergyFromJoules(-3); got != 0 {
		t.Errorf("EnergyFromJoules(-3) = %d", got)
	}
	if got := Power(10).Over(1500 * time.Millisecond); got != 15*Joule {
		t.Errorf("10 W over 1.5 s = %v", got)
	}
	if got := AveragePower(30*Joule, 3*time.Second); got != 10 {
		t.Errorf("AveragePower = %v", got)
	}
	if got := AveragePower(30*Joule, 0); got != 0 {
		t.Errorf("AveragePower over 0 s = %v", got)
	}
	if got := FromMillidegrees(45250); got != 45.25 {
		t.Errorf("FromMillidegrees = %v", got)
	}
}
