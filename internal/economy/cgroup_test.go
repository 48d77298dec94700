package economy

import (
	"math"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/clock/clocktest"
	"github.com/maxwellhq/maxwell/internal/units"
)

func TestProcCgroup(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"v2", "0::/maxwell/scientist\n", "/maxwell/scientist"},
		{"hybrid: the unified path", "12:cpu,cpuacct:/maxwell/miner\n7:memory:/maxwell/miner\n0::/maxwell/miner\n", "/maxwell/miner"},
		{"hybrid, unified at the root: the cpu hierarchy's", "4:memory:/m/x\n3:cpu,cpuacct:/m/x\n0::/\n", "/m/x"},
		{"v1 only", "5:pids:/p/c\n2:cpuacct,cpu:/p/c\n", "/p/c"},
		{"v2 at the root", "0::/\n", "/"},
		{"garbage", "nonsense\n\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := procCgroup([]byte(tt.in)); got != tt.want {
				t.Errorf("procCgroup(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestBurnRate: the burn rate is what a cell spent (payment, tax, rent)
// over the last api.BurnWindow, so it is the rate of its spent total
// over that window, whether it wins every tick or some.
func TestBurnRate(t *testing.T) {
	tests := []struct {
		name string
		// every tick of 100 ms: payment, tax and rent
		pay, tax, rent func(tick int) units.Credits
		ticks          int
		want           float64 // credits per second
	}{
		{"pays every tick", func(int) units.Credits { return 1000 }, func(int) units.Credits { return 0 }, func(int) units.Credits { return 0 }, 300, 10000},
		{"wins every other tick, taxed and rented", func(i int) units.Credits { return units.Credits(2000 * (i % 2)) }, func(int) units.Credits { return 50 }, func(int) units.Credits { return 5 }, 301, 10000 + 500 + 50},
		{"young: since admission", func(int) units.Credits { return 300 }, func(int) units.Credits { return 0 }, func(int) units.Credits { return 0 }, 11, 3000},
		{"one sample: no rate yet", func(int) units.Credits { return 300 }, func(int) units.Credits { return 0 }, func(int) units.Credits { return 0 }, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New()
			var c cellAccount
			for i := range tt.ticks {
				clk.Advance(100 * time.Millisecond)
				r := c.report
				r.PaidTotal += tt.pay(i)
				r.TaxTotal += tt.tax(i)
				c.report = r
				c.rent += tt.rent(i)
				c.sample(clk.Now())
			}
			if got := c.burnRate(); math.Abs(got-tt.want) > tt.want*0.02 {
				t.Errorf("burn rate %v credits/s, want %v", got, tt.want)
			}
			if n := len(c.spends); n > int(api.BurnWindow/(100*time.Millisecond))+2 {
				t.Errorf("%d samples kept for a %v window", n, api.BurnWindow)
			}
		})
	}
}
