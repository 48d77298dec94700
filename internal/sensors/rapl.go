package sensors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/maxwellhq/maxwell/internal/units"
)

// RAPLOptions configures the powercap RAPL reader.
type RAPLOptions struct {
	// Calibrated marks every zone TierCalibrated instead of TierSensor.
	// Set it only on a host whose RAPL readings have been checked against
	// an external power meter.
	Calibrated bool
}

// RAPLZone is one powercap RAPL zone, <sysfs>/class/powercap/intel-rapl:N
// (a package, or "psys" for the platform) or a subzone intel-rapl:N:M
// (core, uncore, dram). AMD processors use the same driver and also appear
// as intel-rapl.
//
// RAPLZone implements EnergyCounter: it keeps the last raw energy_uj value
// and accumulates the advances between reads with units.Wrap, so its reading
// is monotonic across hardware wraparound as long as it is read at least
// once per wrap period (minutes to hours, depending on the part's energy
// unit and its power). It is safe for concurrent use.
type RAPLZone struct {
	dir      string
	src      Source
	maxRange units.Energy // max_energy_range_uj, µJ; 0 if unknown

	mu      sync.Mutex
	started bool
	last    units.Energy // last raw energy_uj, µJ
	total   units.Energy // accumulated, µJ
}

// RAPLZones returns every powercap RAPL zone and subzone under sysfs (the
// directory that stands for /sys), ordered package by package, each package
// followed by its subzones. A host without powercap gives no zones and no
// error.
//
// The intel-rapl-mmio:N zones that some Intel client parts also expose are
// skipped: they hold the same package energy counter as intel-rapl:N (the
// MMIO interface only adds power-limit controls), so listing them would
// count the package twice.
func RAPLZones(sysfs string, opts RAPLOptions) ([]*RAPLZone, error) {
	zones, failed, err := scanRAPL(sysfs, opts)
	if err != nil {
		return nil, err
	}
	return zones, joinFailures(failed)
}

// scanRAPL does RAPLZones' work, returning the zones that could not be
// opened separately so that Discover can list them.
func scanRAPL(sysfs string, opts RAPLOptions) ([]*RAPLZone, []failure, error) {
	dir := filepath.Join(sysfs, "class", "powercap")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, classify(dir, err)
	}
	type indexed struct {
		idx  []int
		path string
	}
	var found []indexed
	for _, e := range ents {
		idx, ok := raplIndex(e.Name())
		if !ok {
			continue
		}
		found = append(found, indexed{idx, filepath.Join(dir, e.Name())})
	}
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i].idx, found[j].idx
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return len(a) < len(b)
	})
	var (
		zones  []*RAPLZone
		failed []failure
	)
	parents := map[int]string{} // package index -> zone name
	for _, f := range found {
		z, err := OpenRAPLZone(f.path, opts)
		if err != nil {
			failed = append(failed, failure{path: f.path, err: err})
			continue
		}
		if len(f.idx) == 1 {
			parents[f.idx[0]] = z.src.Name
		} else if p, ok := parents[f.idx[0]]; ok {
			z.src.Name = p + "/" + z.src.Name
		}
		zones = append(zones, z)
	}
	return zones, failed, nil
}

// raplIndex parses "intel-rapl:N" or "intel-rapl:N:M" into [N] or [N M].
func raplIndex(name string) ([]int, bool) {
	rest, ok := strings.CutPrefix(name, "intel-rapl:")
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 2 {
		return nil, false
	}
	idx := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		idx[i] = n
	}
	return idx, true
}

// OpenRAPLZone opens the powercap zone in dir, e.g.
// /sys/class/powercap/intel-rapl:0. It reads the zone's name and
// max_energy_range_uj but not energy_uj, so it succeeds for an unprivileged
// caller; the first ReadEnergy tells whether the counter can be read. A
// subzone opened this way is named by its own name ("core"), without its
// package's.
func OpenRAPLZone(dir string, opts RAPLOptions) (*RAPLZone, error) {
	name, err := readString(filepath.Join(dir, "name"))
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%s: %w: empty zone name", filepath.Join(dir, "name"), ErrGarbage)
	}
	var maxRange uint64
	maxPath := filepath.Join(dir, "max_energy_range_uj")
	switch v, err := readUint(maxPath); {
	case err == nil:
		maxRange = v
	case errors.Is(err, ErrNotFound):
		// Unknown range: units.Wrap then refuses to guess a wrap.
	default:
		return nil, err
	}
	tier := TierSensor
	if opts.Calibrated {
		tier = TierCalibrated
	}
	return &RAPLZone{
		dir:      dir,
		maxRange: units.Energy(maxRange),
		src: Source{
			Kind:     KindRAPL,
			Quantity: QuantityEnergy,
			Name:     name,
			Path:     filepath.Join(dir, "energy_uj"),
			Tier:     tier,
		},
	}, nil
}

// Source describes z. Its Name is the zone's name ("package-0", "psys"),
// prefixed by its package's for a subzone found by RAPLZones
// ("package-0/dram").
func (z *RAPLZone) Source() Source { return z.src }

// MaxEnergyRange returns the zone's max_energy_range_uj: the value after
// which energy_uj wraps to zero, in µJ, or 0 if the kernel does not say.
func (z *RAPLZone) MaxEnergyRange() units.Energy { return z.maxRange }

// ReadEnergy returns the energy the zone has used, in µJ, counted from the
// zone's raw value at the first read. A failed read leaves the counter's
// state unchanged. Errors wrap ErrPermission (energy_uj is root-only since
// Linux 5.10), ErrNotFound, or ErrGarbage (not a number, or beyond
// max_energy_range_uj).
func (z *RAPLZone) ReadEnergy() (units.Energy, error) {
	// Hold the lock across the read: two reads applied out of order would
	// look like a wraparound.
	z.mu.Lock()
	defer z.mu.Unlock()
	v, err := readUint(z.src.Path)
	if err != nil {
		return 0, err
	}
	cur := units.Energy(v)
	if z.maxRange > 0 && cur > z.maxRange {
		return 0, fmt.Errorf("%s: %w: %d µJ beyond max_energy_range_uj %d",
			z.src.Path, ErrGarbage, v, z.maxRange)
	}
	if !z.started {
		z.started, z.last, z.total = true, cur, cur
		return z.total, nil
	}
	z.total += units.Wrap(z.last, cur, z.maxRange)
	z.last = cur
	return z.total, nil
}

// isPackage reports whether z is a top-level package zone ("package-N").
func (z *RAPLZone) isPackage() bool {
	return !strings.Contains(z.src.Name, "/") && strings.HasPrefix(z.src.Name, "package-")
}

// isPsys reports whether z is the platform zone.
func (z *RAPLZone) isPsys() bool { return z.src.Name == "psys" }
