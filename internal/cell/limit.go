package cell

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"
)

// ErrNoCPUController means the cell's cgroups have no CPU bandwidth
// controller to limit it with (signal cells, or a v2 group without the cpu
// controller).
var ErrNoCPUController = errors.New("no CPU bandwidth controller for this cell")

// cfsPeriodUs is the CPU bandwidth period Maxwell sets, in µs: the kernel's
// default, 100 ms, which is also Maxwell's default tick.
const cfsPeriodUs = 100_000

// CPULimiter is implemented by cells whose CPU time can be capped.
type CPULimiter interface {
	// LimitCPU caps the cell at cores CPUs' worth of time per period;
	// cores ≤ 0 removes the cap.
	LimitCPU(cores float64) error
}

// LimitCPU implements CPULimiter with the CFS bandwidth controller:
// cpu.cfs_quota_us and cpu.cfs_period_us in a v1 cpu hierarchy, cpu.max in
// a v2 group.
func (c *cell) LimitCPU(cores float64) error {
	if c.cg == nil {
		return fmt.Errorf("cell %q: %w", c.name, ErrNoCPUController)
	}
	quota := int64(-1)
	if cores > 0 {
		quota = max(int64(cores*cfsPeriodUs), 1000) // the kernel's floor is 1 ms
	}
	if dir := c.cg.V1["cpu"]; dir != "" {
		if err := cgroupfs.Write(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(cfsPeriodUs)); err != nil {
			return fmt.Errorf("cell %q: %w", c.name, err)
		}
		if err := cgroupfs.Write(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10)); err != nil {
			return fmt.Errorf("cell %q: %w", c.name, err)
		}
		return nil
	}
	if c.cg.V2 != "" && cgroupfs.Exists(filepath.Join(c.cg.V2, "cpu.max")) {
		v := "max"
		if quota > 0 {
			v = strconv.FormatInt(quota, 10)
		}
		if err := cgroupfs.Write(filepath.Join(c.cg.V2, "cpu.max"), v+" "+strconv.Itoa(cfsPeriodUs)); err != nil {
			return fmt.Errorf("cell %q: %w", c.name, err)
		}
		return nil
	}
	return fmt.Errorf("cell %q: %w", c.name, ErrNoCPUController)
}
