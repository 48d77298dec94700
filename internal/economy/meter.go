package economy

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/meter"
)

// Meter adapts a meter.Meter, which counts by cgroup id, to
// engine.FreedMeter, which asks by cell. It watches each cell the first time
// it sees it.
type Meter struct {
	M       meter.Meter
	watched map[string]uint64 // cell name → cgroup id
}

// OpenMeter opens the Landauer meter: eBPF where the kernel allows it, else
// the kernel's per-cgroup accounting, which its Source labels approximate.
func OpenMeter(sysRoot, cgroupRoot string, log *slog.Logger) *Meter {
	return &Meter{M: meter.Open(meter.Options{
		EBPF:       meter.EBPFOptions{SysRoot: sysRoot},
		Accounting: meter.AccountingOptions{CgroupRoot: cgroupRoot},
		Logger:     log,
	})}
}

// Freed implements engine.FreedMeter: the figures of cells, reading only
// their cgroups.
func (m *Meter) Freed(cells map[string]cell.Cell) (map[string]uint64, error) {
	if m.watched == nil {
		m.watched = map[string]uint64{}
	}
	var errs []error
	ids := make([]uint64, 0, len(cells))
	for name, c := range cells {
		if id, ok := m.watched[name]; ok {
			if id != 0 {
				ids = append(ids, id)
			}
			continue
		}
		id := c.CgroupID()
		if id == 0 {
			errs = append(errs, fmt.Errorf("cell %s has no cgroup v2 id to meter", name))
			m.watched[name] = 0
			continue
		}
		if err := m.M.Watch(id); err != nil {
			errs = append(errs, fmt.Errorf("watch cell %s: %w", name, err))
			continue
		}
		m.watched[name] = id
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return map[string]uint64{}, errors.Join(errs...)
	}
	counts, err := m.M.Read(ids...)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	out := make(map[string]uint64, len(cells))
	for name := range cells {
		if c, ok := counts[m.watched[name]]; ok {
			out[name] = c.FreedBytes()
		}
	}
	return out, errors.Join(errs...)
}

// Source says what the meter measures with.
func (m *Meter) Source() meter.Source { return m.M.Source() }

// Close detaches the meter.
func (m *Meter) Close() error { return m.M.Close() }
