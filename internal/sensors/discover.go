package sensors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Roots are the directories that stand for /sys, /proc and /dev. Tests
// point them at fixture trees; the CLI passes HostRoots.
type Roots struct {
	Sys  string `json:"sys"`
	Proc string `json:"proc"`
	Dev  string `json:"dev"`
}

// HostRoots returns the conventional mount points of sysfs, procfs and
// devtmpfs. It is the one place in Maxwell that names them.
func HostRoots() Roots { return Roots{Sys: "/sys", Proc: "/proc", Dev: "/dev"} }

// Options configures Discover.
type Options struct {
	RAPL  RAPLOptions
	Hwmon HwmonOptions
}

// Found is one source Discover found, with the outcome of reading it once.
type Found struct {
	Source
	// Readable reports whether the one read succeeded.
	Readable bool `json:"readable"`
	// Err is why the source could not be opened or read, if it could not.
	Err string `json:"error,omitempty"`
	// Value is what the one read returned: joules since the counter's
	// arbitrary origin for energy, °C for temperature; 0 if unreadable.
	Value float64 `json:"value"`
	// Chosen reports whether the source is, or is part of, the energy
	// counter or thermometer Discover chose.
	Chosen bool `json:"chosen"`
}

// Inventory is what Discover found on a host. It marshals to JSON (for
// `maxwell sensors --json`); the chosen readers themselves do not survive
// the round trip, only their Sources.
type Inventory struct {
	Roots Roots `json:"roots"`
	// Vendor is the CPU vendor from cpuinfo's vendor_id, empty if unknown.
	Vendor Vendor `json:"vendor,omitempty"`
	// Found lists every source found: RAPL zones, thermal zones, hwmon
	// temperature inputs, MSR packages, in that order.
	Found []Found `json:"found"`
	// Energy describes the chosen energy counter, nil if none.
	Energy *Source `json:"energy,omitempty"`
	// Temperature describes the chosen thermometer, nil if none.
	Temperature *Source `json:"temperature,omitempty"`
	// Errors lists failures that hid whole interfaces, such as an
	// unreadable /sys/class/hwmon.
	Errors []string `json:"errors,omitempty"`

	energy      EnergyCounter
	thermometer Thermometer
}

// EnergyCounter returns the chosen energy counter, or nil if the host has
// no readable one (the caller then falls back to a model). It is the same
// counter Discover read once, so its origin is that first read.
func (inv Inventory) EnergyCounter() EnergyCounter { return inv.energy }

// Thermometer returns the chosen thermometer, or nil if the host has no
// readable one.
func (inv Inventory) Thermometer() Thermometer { return inv.thermometer }

// Discover finds every energy and temperature source under r with default
// Options. See DiscoverWith.
func Discover(r Roots) Inventory { return DiscoverWith(r, Options{}) }

// DiscoverWith finds every energy and temperature source under r, reads
// each once, and chooses one energy counter and one thermometer. It never
// fails: missing interfaces are simply absent from the Inventory, and
// sources that cannot be opened or read are listed with their error. An
// empty root is not searched: with r.Sys empty there are no RAPL, thermal
// zone or hwmon sources, and with r.Dev or r.Proc empty no MSR sources (with
// r.Sys empty, MSRs are read through CPU 0 as one package).
//
// It chooses the readable group of sources with the best Tier, and among
// equal tiers, for energy: the RAPL package zones, then the MSR package
// counters, then the RAPL psys zone; for temperature: the MSR package
// thermal status, then the x86_pkg_temp thermal zones, then hwmon package
// sensors (coretemp "Package id N", k10temp Tdie or Tctl), then other hwmon
// CPU and board sensors, then other thermal zones. Drive, GPU, radio and
// battery sensors are listed but never chosen. A group of package sources
// is chosen only if every package in it was readable; on a host with several
// packages the chosen energy counter is their sum and the chosen
// thermometer their maximum.
func DiscoverWith(r Roots, opts Options) Inventory {
	inv := Inventory{Roots: r, Found: []Found{}}
	var vendorErr error
	if r.Proc != "" {
		inv.Vendor, vendorErr = CPUVendor(r.Proc)
	}
	var cands []candidate
	if r.Sys != "" {
		cands = inv.discoverSys(r.Sys, opts)
	}
	if r.Dev != "" && r.Proc != "" {
		cands = append(cands, inv.discoverMSR(r, vendorErr)...)
	}
	inv.choose(cands)
	return inv
}

// discoverSys lists the RAPL zones, thermal zones and hwmon sensors under
// sysfs, in that order, and returns the candidates, thermal zones last.
func (inv *Inventory) discoverSys(sysfs string, opts Options) []candidate {
	var cands []candidate

	// powercap RAPL.
	zones, failed, err := scanRAPL(sysfs, opts.RAPL)
	inv.addErr(err)
	inv.addFailures(failed, KindRAPL, QuantityEnergy, opts.RAPL)
	for _, z := range zones {
		rank := -1
		switch {
		case z.isPackage():
			rank = rankRAPLPackage
		case z.isPsys():
			rank = rankPsys
		}
		cands = append(cands, inv.addEnergy(z, rank))
	}

	// Thermal zones.
	tzs, err := ThermalZones(sysfs)
	inv.addErr(err)
	var tzCands []candidate
	for _, z := range tzs {
		rank := -1
		switch z.role() {
		case rolePackage:
			rank = rankPkgTemp
		case roleOther:
			rank = rankOtherZone
		}
		tzCands = append(tzCands, inv.addThermometer(z, rank))
	}

	// hwmon.
	hw, err := HwmonSensors(sysfs, opts.Hwmon)
	inv.addErr(err)
	for _, s := range hw {
		rank := -1
		switch s.role {
		case rolePackage:
			rank = rankHwmonPackage
		case roleOther:
			rank = rankHwmonOther
		}
		cands = append(cands, inv.addThermometer(s, rank))
	}
	return append(cands, tzCands...)
}

// Preference ranks within a tier; lower is better. Energy and temperature
// ranks are compared only among themselves.
const (
	rankRAPLPackage = iota
	rankMSRPackage
	rankPsys
)

const (
	rankMSRTemp = iota
	rankPkgTemp
	rankHwmonPackage
	rankHwmonOther
	rankOtherZone
)

// candidate is a Found that may be chosen.
type candidate struct {
	found  int // index into Inventory.Found
	rank   int // -1: never chosen
	energy EnergyCounter
	therm  Thermometer
}

// discoverMSR lists the MSR package energy counters and (on Intel) package
// thermometers. A host without <dev>/cpu/N/msr gives none.
func (inv *Inventory) discoverMSR(r Roots, vendorErr error) []candidate {
	pcs := []PackageCPU{{Package: 0, CPU: 0}}
	if r.Sys != "" {
		var err error
		if pcs, err = PackageCPUs(r.Sys); err != nil {
			inv.addErr(err)
			return nil
		}
	}
	var present []PackageCPU
	for _, pc := range pcs {
		if _, err := os.Stat(msrPath(r.Dev, pc.CPU)); err == nil || !errors.Is(err, fs.ErrNotExist) {
			present = append(present, pc)
		}
	}
	if len(present) == 0 {
		return nil
	}
	if vendorErr != nil {
		inv.addErr(fmt.Errorf("msr: cpu vendor: %w", vendorErr))
		return nil
	}
	vendor := inv.Vendor
	var cands []candidate
	for _, pc := range present {
		e, err := OpenMSREnergy(r.Dev, pc, vendor)
		if err != nil {
			inv.addFailure(Source{
				Kind: KindMSR, Quantity: QuantityEnergy, Tier: TierSensor,
				Name: fmt.Sprintf("package-%d", pc.Package), Path: msrPath(r.Dev, pc.CPU),
			}, err)
			continue
		}
		cands = append(cands, inv.addEnergy(e, rankMSRPackage))
	}
	if vendor != VendorIntel {
		return cands // AMD has no temperature MSR: see k10temp.
	}
	for _, pc := range present {
		t, err := OpenMSRThermometer(r.Dev, pc, vendor)
		if err != nil {
			inv.addFailure(Source{
				Kind: KindMSR, Quantity: QuantityTemperature, Tier: TierSensor,
				Name: fmt.Sprintf("package-%d thermal status", pc.Package), Path: msrPath(r.Dev, pc.CPU),
			}, err)
			continue
		}
		cands = append(cands, inv.addThermometer(t, rankMSRTemp))
	}
	return cands
}

// addErr records an interface-wide error, if err is not nil.
func (inv *Inventory) addErr(err error) {
	if err != nil {
		inv.Errors = append(inv.Errors, err.Error())
	}
}

// addFailure lists a source that could not be opened.
func (inv *Inventory) addFailure(src Source, err error) {
	inv.Found = append(inv.Found, Found{Source: src, Err: err.Error()})
}

// addFailures lists RAPL zones that could not be opened, named by their
// directory.
func (inv *Inventory) addFailures(failed []failure, k Kind, q Quantity, opts RAPLOptions) {
	tier := TierSensor
	if opts.Calibrated {
		tier = TierCalibrated
	}
	for _, f := range failed {
		inv.addFailure(Source{Kind: k, Quantity: q, Name: filepath.Base(f.path), Path: f.path, Tier: tier}, f.err)
	}
}

// addEnergy reads e once and lists it.
func (inv *Inventory) addEnergy(e EnergyCounter, rank int) candidate {
	f := Found{Source: e.Source()}
	if v, err := e.ReadEnergy(); err != nil {
		f.Err = err.Error()
	} else {
		f.Readable, f.Value = true, v.Joules()
	}
	inv.Found = append(inv.Found, f)
	return candidate{found: len(inv.Found) - 1, rank: rank, energy: e}
}

// addThermometer reads t once and lists it.
func (inv *Inventory) addThermometer(t Thermometer, rank int) candidate {
	f := Found{Source: t.Source()}
	if v, err := t.ReadTemperature(); err != nil {
		f.Err = err.Error()
	} else {
		f.Readable, f.Value = true, float64(v)
	}
	inv.Found = append(inv.Found, f)
	return candidate{found: len(inv.Found) - 1, rank: rank, therm: t}
}

// choose picks the energy counter and thermometer from cands.
func (inv *Inventory) choose(cands []candidate) {
	var energy, temp []candidate
	for _, c := range cands {
		switch {
		case c.rank < 0:
		case c.energy != nil:
			energy = append(energy, c)
		case c.therm != nil:
			temp = append(temp, c)
		}
	}
	if g := inv.best(energy); len(g) > 0 {
		parts := make([]EnergyCounter, len(g))
		for i, c := range g {
			parts[i] = c.energy
		}
		inv.energy = sumEnergy(parts)
		src := inv.energy.Source()
		inv.Energy = &src
	}
	if g := inv.best(temp); len(g) > 0 {
		parts := make([]Thermometer, len(g))
		for i, c := range g {
			parts[i] = c.therm
		}
		inv.thermometer = maxTemperature(parts)
		src := inv.thermometer.Source()
		inv.Temperature = &src
	}
}

// best groups cands by (tier, rank) and returns the best usable group,
// marking its members Chosen. A group of package sources is usable only if
// all its members were readable; a group of other sources is reduced to its
// readable members.
func (inv *Inventory) best(cands []candidate) []candidate {
	type key struct {
		tier Tier
		rank int
	}
	groups := map[key][]candidate{}
	var keys []key
	for _, c := range cands {
		k := key{inv.Found[c.found].Tier, c.rank}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], c)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].tier != keys[j].tier {
			return keys[i].tier < keys[j].tier
		}
		return keys[i].rank < keys[j].rank
	})
	for _, k := range keys {
		g := groups[k]
		all := requiresAll(g[0])
		var usable []candidate
		for _, c := range g {
			if inv.Found[c.found].Readable {
				usable = append(usable, c)
			} else if all {
				usable = nil
				break
			}
		}
		if len(usable) == 0 {
			continue
		}
		for _, c := range usable {
			inv.Found[c.found].Chosen = true
		}
		return usable
	}
	return nil
}

// requiresAll reports whether c's group is one source per package, which
// is meaningful only whole.
func requiresAll(c candidate) bool {
	if c.energy != nil {
		return c.rank == rankRAPLPackage || c.rank == rankMSRPackage
	}
	return c.rank <= rankHwmonPackage
}

// sumEnergy returns an EnergyCounter reading the sum of parts, or parts[0]
// if there is only one.
func sumEnergy(parts []EnergyCounter) EnergyCounter {
	if len(parts) == 1 {
		return parts[0]
	}
	return &energySum{parts: parts, src: combined(parts[0].Source(), "sum", sources(parts))}
}

// maxTemperature returns a Thermometer reading the maximum of parts, or
// parts[0] if there is only one.
func maxTemperature(parts []Thermometer) Thermometer {
	if len(parts) == 1 {
		return parts[0]
	}
	return &temperatureMax{parts: parts, src: combined(parts[0].Source(), "max", sources(parts))}
}

// sources returns the Sources of parts.
func sources[T interface{ Source() Source }](parts []T) []Source {
	out := make([]Source, len(parts))
	for i, p := range parts {
		out[i] = p.Source()
	}
	return out
}

// combined describes op over srcs, all of first's kind and quantity: named
// "op(a, b)", with no single path and the least trustworthy tier.
func combined(first Source, op string, srcs []Source) Source {
	names := make([]string, len(srcs))
	tier := first.Tier
	for i, s := range srcs {
		names[i] = s.Name
		tier = max(tier, s.Tier)
	}
	return Source{
		Kind:     first.Kind,
		Quantity: first.Quantity,
		Name:     op + "(" + strings.Join(names, ", ") + ")",
		Tier:     tier,
	}
}

// energySum is the sum of several packages' energy counters. It is as safe
// for concurrent use as its parts.
type energySum struct {
	parts []EnergyCounter
	src   Source
}

func (s *energySum) Source() Source { return s.src }

// ReadEnergy returns the sum of the parts' energies, in µJ. If any part
// fails it returns the error: a partial sum would break monotonicity.
func (s *energySum) ReadEnergy() (units.Energy, error) {
	var total units.Energy
	for _, p := range s.parts {
		e, err := p.ReadEnergy()
		if err != nil {
			return 0, err
		}
		total += e
	}
	return total, nil
}

// temperatureMax is the hottest of several thermometers.
type temperatureMax struct {
	parts []Thermometer
	src   Source
}

func (m *temperatureMax) Source() Source { return m.src }

// ReadTemperature returns the highest of the parts' temperatures, in °C. If
// any part fails it returns the error.
func (m *temperatureMax) ReadTemperature() (units.Celsius, error) {
	var hottest units.Celsius
	for i, p := range m.parts {
		c, err := p.ReadTemperature()
		if err != nil {
			return 0, err
		}
		if i == 0 || c > hottest {
			hottest = c
		}
	}
	return hottest, nil
}
