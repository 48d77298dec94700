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
	if err := c.cg.limitCPU(cores); err != nil {
		return fmt.Errorf("cell %q: %w", c.name, err)
	}
	return nil
}

// limitCPU caps s at cores CPUs' worth of time per cfsPeriodUs; cores ≤ 0
// removes the cap.
func (s *cgroupSet) limitCPU(cores float64) error {
	quota := int64(-1)
	if cores > 0 {
		quota = max(int64(cores*cfsPeriodUs), 1000) // the kernel's floor is 1 ms
	}
	if dir := s.V1["cpu"]; dir != "" {
		if err := cgroupfs.Write(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(cfsPeriodUs)); err != nil {
			return err
		}
		return cgroupfs.Write(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10))
	}
	if s.V2 != "" && cgroupfs.Exists(filepath.Join(s.V2, "cpu.max")) {
		v := "max"
		if quota > 0 {
			v = strconv.FormatInt(quota, 10)
		}
		return cgroupfs.Write(filepath.Join(s.V2, "cpu.max"), v+" "+strconv.Itoa(cfsPeriodUs))
	}
	return ErrNoCPUController
}
