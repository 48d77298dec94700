package workload

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestAgentOptions(t *testing.T) {
	ok := AgentOptions{Threads: 2, Interval: time.Second, Units: 3, Multiple: 2}
	if err := ok.Validate("greed"); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	for _, tc := range []struct {
		o    AgentOptions
		want string
	}{
		{AgentOptions{Threads: -1, Interval: time.Second, Multiple: 1}, "--threads -1"},
		{AgentOptions{Interval: 0, Multiple: 1}, "--report-interval"},
		{AgentOptions{Interval: time.Second, Units: 65, Multiple: 1}, "--units 65"},
		{AgentOptions{Interval: time.Second, Multiple: math.NaN()}, "--greed NaN"},
		{AgentOptions{Interval: time.Second, Multiple: math.Inf(1)}, "--greed +Inf"},
		{AgentOptions{Interval: time.Second, Multiple: 0}, "--greed 0"},
	} {
		if err := tc.o.Validate("greed"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %q", tc.o, err, tc.want)
		}
	}
	if n := (AgentOptions{Units: 5}).BidUnits(); n != 5 {
		t.Errorf("BidUnits with units 5 = %d", n)
	}
	if n := (AgentOptions{Threads: 3}).BidUnits(); n != 3 {
		t.Errorf("BidUnits with 3 threads = %d", n)
	}
	if n := (AgentOptions{Threads: 1000}).BidUnits(); n != 64 {
		t.Errorf("BidUnits with 1000 threads = %d, want the protocol's 64", n)
	}
	if rate, chunk, err := MinerChurn(1.5, 4); err != nil || rate != 3<<19 || chunk != 4<<20 {
		t.Errorf("MinerChurn(1.5, 4) = %d, %d, %v", rate, chunk, err)
	}
	for _, bad := range [][2]float64{{-1, 4}, {math.NaN(), 4}, {1, 0}, {1, 1 << 17}} {
		if _, _, err := MinerChurn(bad[0], int(bad[1])); err == nil {
			t.Errorf("MinerChurn(%v, %v) accepted", bad[0], bad[1])
		}
	}
}
