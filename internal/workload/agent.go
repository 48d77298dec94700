package workload

import (
	"fmt"
	"math"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
)

// AgentOptions are what every built-in agent takes besides its work's own
// settings.
type AgentOptions struct {
	// Threads is the number of worker threads; 0 means one per CPU the
	// agent may run on.
	Threads int
	// Interval is how often the agent reports.
	Interval time.Duration
	// Units is how many slots a bidding agent bids for, 0 to
	// proto.MaxBidUnits; 0 means one per thread.
	Units int
	// Multiple is the strategy's price, in multiples of a slot's energy:
	// the Scientist's valuation, the Miner's greed.
	Multiple float64
}

// Validate says, naming the flag of each setting, what is wrong with o.
func (o AgentOptions) Validate(multipleFlag string) error {
	switch {
	case o.Threads < 0:
		return fmt.Errorf("--threads %d: want 0 or more", o.Threads)
	case o.Interval <= 0:
		return fmt.Errorf("--report-interval %v: want a positive duration", o.Interval)
	case o.Units < 0 || o.Units > proto.MaxBidUnits:
		return fmt.Errorf("--units %d: want 0 to %d", o.Units, proto.MaxBidUnits)
	case !(o.Multiple > 0) || math.IsInf(o.Multiple, 0):
		return fmt.Errorf("--%s %v: want a positive number", multipleFlag, o.Multiple)
	}
	return nil
}

// BidUnits returns how many slots the agent bids for: Units, else one per
// thread, at most proto.MaxBidUnits.
func (o AgentOptions) BidUnits() int {
	n := o.Units
	if n == 0 {
		n = o.Threads
	}
	if n == 0 {
		n = AvailableCPUs()
	}
	return min(max(n, 1), proto.MaxBidUnits)
}

// MinerChurn converts the Miner's churn settings, in MiB, to bytes, and
// says what is wrong with them, naming their flags.
func MinerChurn(mibPerSec float64, chunkMiB int) (rate uint64, chunk int, err error) {
	if !(mibPerSec >= 0) || mibPerSec > 1<<20 {
		return 0, 0, fmt.Errorf("--churn-mib-per-sec %v: want 0 to %d", mibPerSec, 1<<20)
	}
	if chunkMiB < 1 || chunkMiB > 1<<16 {
		return 0, 0, fmt.Errorf("--chunk-mib %d: want 1 to %d", chunkMiB, 1<<16)
	}
	return uint64(math.Round(mibPerSec * (1 << 20))), chunkMiB << 20, nil
}
