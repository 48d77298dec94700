package lab

import "testing"

// TestLatencySpread: a p99 past the histogram's last bound (1 s), which
// LatencyQuantile reports as twice the bound, prints as ">1000000", not as
// a latency nobody measured.
func TestLatencySpread(t *testing.T) {
	for _, tc := range []struct {
		s    Stat
		want string
	}{
		{Stat{N: 1, Median: 5000, Min: 5000, Max: 5000}, "5000"},
		{Stat{N: 3, Median: 2000, Min: 2000, Max: 5000}, "2000 [2000–5000]"},
		{Stat{N: 3, Median: 2e6, Min: 2e6, Max: 2e6}, ">1000000"},
		{Stat{N: 3, Median: 5000, Min: 2000, Max: 2e6}, "5000 [2000–>1000000]"},
	} {
		if got := latencySpread(tc.s); got != tc.want {
			t.Errorf("latencySpread(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}
