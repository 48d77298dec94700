package sensors

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Model-specific register addresses (Intel SDM vol. 4; AMD PPR for family
// 17h and later).
const (
	msrRAPLPowerUnit         = 0x606      // MSR_RAPL_POWER_UNIT
	msrPkgEnergyStatus       = 0x611      // MSR_PKG_ENERGY_STATUS
	msrThermStatus           = 0x19C      // IA32_THERM_STATUS, core scope
	msrTemperatureTarget     = 0x1A2      // MSR_TEMPERATURE_TARGET
	msrPackageThermStatus    = 0x1B1      // IA32_PACKAGE_THERM_STATUS
	msrAMDRAPLPowerUnit      = 0xC0010299 // MSR_AMD_RAPL_POWER_UNIT
	msrAMDPkgEnergyStatus    = 0xC001029B // MSR_AMD_PKG_ENERGY_STATUS
	msrEnergyStatusMax       = 1<<32 - 1  // energy status counters are 32 bits wide
	msrThermReadingValid     = 1 << 31    // IA32_THERM_STATUS bit 31
	msrDigitalReadoutShift   = 16         // bits 22:16 of the thermal status MSRs
	msrDigitalReadoutMask    = 0x7F
	msrTjMaxShift            = 16 // bits 23:16 of MSR_TEMPERATURE_TARGET
	msrTjMaxMask             = 0xFF
	msrEnergyStatusUnitShift = 8 // bits 12:8 of the RAPL power unit MSRs
	msrEnergyStatusUnitMask  = 0x1F
)

// Vendor is a CPU vendor as /proc/cpuinfo's vendor_id names it.
type Vendor string

// The vendors whose energy and temperature MSRs Maxwell knows.
const (
	VendorIntel Vendor = "GenuineIntel"
	VendorAMD   Vendor = "AuthenticAMD"
	// VendorHygon makes AMD-compatible parts with AMD's RAPL MSRs.
	VendorHygon Vendor = "HygonGenuine"
)

// amdLike reports whether v uses AMD's RAPL MSR addresses.
func (v Vendor) amdLike() bool { return v == VendorAMD || v == VendorHygon }

// CPUVendor returns the vendor_id of the first processor listed in
// <procfs>/cpuinfo, where procfs is the directory that stands for /proc.
func CPUVendor(procfs string) (Vendor, error) {
	path := filepath.Join(procfs, "cpuinfo")
	f, err := os.Open(path)
	if err != nil {
		return "", classify(path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "vendor_id" {
			v := strings.TrimSpace(val)
			if v == "" {
				return "", fmt.Errorf("%s: %w: empty vendor_id", path, ErrGarbage)
			}
			return Vendor(v), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", classify(path, err)
	}
	return "", fmt.Errorf("%s: %w: no vendor_id", path, ErrNotFound)
}

// PackageCPU names one logical CPU of a physical package (socket), through
// which that package's package-scope MSRs can be read.
type PackageCPU struct {
	Package int `json:"package"`
	CPU     int `json:"cpu"`
}

// PackageCPUs returns the lowest-numbered CPU of each physical package,
// ordered by package, from
// <sysfs>/devices/system/cpu/cpuN/topology/physical_package_id. If sysfs
// holds no topology at all it assumes one package and returns CPU 0 for it.
func PackageCPUs(sysfs string) ([]PackageCPU, error) {
	cpus, err := numberedEntries(filepath.Join(sysfs, "devices", "system", "cpu"), "cpu")
	if err != nil {
		return nil, err
	}
	var out []PackageCPU
	seen := map[int]bool{}
	for _, c := range cpus { // ascending CPU number
		path := filepath.Join(c.path, "topology", "physical_package_id")
		id, err := readInt(path)
		if errors.Is(err, ErrNotFound) {
			continue // offline CPUs have no topology directory
		}
		if err != nil {
			return nil, err
		}
		if id < 0 || seen[int(id)] {
			continue
		}
		seen[int(id)] = true
		out = append(out, PackageCPU{Package: int(id), CPU: c.n})
	}
	if len(out) == 0 {
		return []PackageCPU{{Package: 0, CPU: 0}}, nil
	}
	// Packages are usually numbered in CPU order, but not always.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Package < out[j-1].Package; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// msrPath returns <dev>/cpu/N/msr, where dev is the directory that stands
// for /dev.
func msrPath(dev string, cpu int) string {
	return filepath.Join(dev, "cpu", strconv.Itoa(cpu), "msr")
}

// ReadMSR reads the 64-bit model-specific register reg of logical CPU cpu
// through the msr driver's <dev>/cpu/N/msr, where dev is the directory that
// stands for /dev. The driver needs CAP_SYS_RAWIO (ErrPermission without
// it) and answers EIO for a register the CPU does not have (ErrNotFound).
func ReadMSR(dev string, cpu int, reg uint32) (uint64, error) {
	path := msrPath(dev, cpu)
	f, err := os.Open(path)
	if err != nil {
		return 0, classify(path, err)
	}
	defer f.Close()
	return readMSRFile(f, path, reg)
}

// readMSRFile preads the 8 bytes at offset reg of the msr device f.
func readMSRFile(f *os.File, path string, reg uint32) (uint64, error) {
	var b [8]byte
	if _, err := f.ReadAt(b[:], int64(reg)); err != nil {
		path = fmt.Sprintf("%s register %#x", path, reg)
		if errors.Is(err, syscall.EIO) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("%s: %w: %w", path, ErrNotFound, err)
		}
		return 0, classify(path, err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// MSREnergy is a package energy counter read from MSR_PKG_ENERGY_STATUS
// (Intel) or MSR_AMD_PKG_ENERGY_STATUS (AMD, Hygon) through one CPU of the
// package. It implements EnergyCounter.
//
// The register is a 32-bit count of energy units of 1/2^ESU J, ESU being
// bits 12:8 of the RAPL power unit MSR (typically 61 µJ on Intel, 15.3 µJ
// on AMD), so it wraps after 2^32 units: about 4.4 minutes at 1 kW with
// 61 µJ units. MSREnergy accumulates raw units across wraps (with
// units.Wrap, max 2^32-1) and converts the total to µJ only when read, so
// conversion rounding never accumulates. It is safe for concurrent use.
type MSREnergy struct {
	dev    string
	cpu    int
	reg    uint32
	esu    uint // energy status unit: one count is 1/2^esu J
	src    Source
	mu     sync.Mutex
	start  bool
	last   uint64 // last raw register value, counts
	totalC uint64 // accumulated counts
}

// OpenMSREnergy opens the package energy counter of package pc through
// <dev>/cpu/N/msr for a CPU of vendor v. It reads the energy unit once; an
// all-zero unit register (which some hypervisors return) is ErrGarbage. A
// vendor other than Intel, AMD or Hygon is ErrNotFound.
func OpenMSREnergy(dev string, pc PackageCPU, v Vendor) (*MSREnergy, error) {
	var unitReg, energyReg uint32
	switch {
	case v == VendorIntel:
		unitReg, energyReg = msrRAPLPowerUnit, msrPkgEnergyStatus
	case v.amdLike():
		unitReg, energyReg = msrAMDRAPLPowerUnit, msrAMDPkgEnergyStatus
	default:
		return nil, fmt.Errorf("msr energy for vendor %q: %w", v, ErrNotFound)
	}
	unit, err := ReadMSR(dev, pc.CPU, unitReg)
	if err != nil {
		return nil, err
	}
	if unit == 0 {
		return nil, fmt.Errorf("%s register %#x: %w: zero RAPL power unit", msrPath(dev, pc.CPU), unitReg, ErrGarbage)
	}
	return &MSREnergy{
		dev: dev,
		cpu: pc.CPU,
		reg: energyReg,
		esu: uint(unit>>msrEnergyStatusUnitShift) & msrEnergyStatusUnitMask,
		src: Source{
			Kind:     KindMSR,
			Quantity: QuantityEnergy,
			Name:     fmt.Sprintf("package-%d", pc.Package),
			Path:     msrPath(dev, pc.CPU),
			Tier:     TierSensor,
		},
	}, nil
}

// Source describes e. Its Name is "package-N".
func (e *MSREnergy) Source() Source { return e.src }

// ReadEnergy returns the package's energy, in µJ, counted from the
// register's raw value at the first read. A failed read leaves the
// counter's state unchanged.
func (e *MSREnergy) ReadEnergy() (units.Energy, error) {
	// Hold the lock across the read: two reads applied out of order would
	// look like a wraparound.
	e.mu.Lock()
	defer e.mu.Unlock()
	raw, err := ReadMSR(e.dev, e.cpu, e.reg)
	if err != nil {
		return 0, err
	}
	cur := raw & msrEnergyStatusMax // bits 63:32 are reserved
	if !e.start {
		e.start, e.last, e.totalC = true, cur, cur
	} else {
		// units.Wrap is applied to raw counts here, not µJ: the
		// register's range is 2^32 counts.
		e.totalC += uint64(units.Wrap(units.Energy(e.last), units.Energy(cur), msrEnergyStatusMax))
		e.last = cur
	}
	return countsToEnergy(e.totalC, e.esu), nil
}

// countsToEnergy converts n counts of 1/2^esu J to µJ, rounding down,
// without overflow for any n whose result fits in 64 bits (the result
// saturates otherwise).
func countsToEnergy(n uint64, esu uint) units.Energy {
	hi, lo := bits.Mul64(n, uint64(units.Joule))
	if esu == 0 {
		if hi != 0 {
			return units.Energy(^uint64(0))
		}
		return units.Energy(lo)
	}
	if hi>>esu != 0 {
		return units.Energy(^uint64(0))
	}
	return units.Energy(hi<<(64-esu) | lo>>esu)
}

// MSRThermometer reads an Intel package's temperature from its digital
// thermal sensor: TjMax (MSR_TEMPERATURE_TARGET bits 23:16) minus the
// digital readout (bits 22:16 of the thermal status MSR, in °C below TjMax).
// It implements Thermometer. The readout resolution is 1 °C.
//
// It reads IA32_PACKAGE_THERM_STATUS where the CPU has it and otherwise
// falls back to IA32_THERM_STATUS of the package's first CPU (that core's
// temperature, not the package's hottest). Only IA32_THERM_STATUS has a
// "reading valid" bit (bit 31); a reading with it clear is ErrGarbage. In
// IA32_PACKAGE_THERM_STATUS bit 31 is reserved, so it is not checked there,
// as the kernel's coretemp driver does not.
//
// AMD processors report temperature through SMN registers, not MSRs: read
// them with hwmon's k10temp.
type MSRThermometer struct {
	dev   string
	cpu   int
	reg   uint32
	tjMax int
	src   Source
}

// OpenMSRThermometer opens the thermal sensor of package pc through
// <dev>/cpu/N/msr. It reads TjMax once; a TjMax of zero is ErrGarbage. A
// vendor other than Intel is ErrNotFound.
func OpenMSRThermometer(dev string, pc PackageCPU, v Vendor) (*MSRThermometer, error) {
	if v != VendorIntel {
		return nil, fmt.Errorf("msr temperature for vendor %q: %w", v, ErrNotFound)
	}
	path := msrPath(dev, pc.CPU)
	f, err := os.Open(path)
	if err != nil {
		return nil, classify(path, err)
	}
	defer f.Close()
	target, err := readMSRFile(f, path, msrTemperatureTarget)
	if err != nil {
		return nil, err
	}
	tjMax := int(target>>msrTjMaxShift) & msrTjMaxMask
	if tjMax == 0 {
		return nil, fmt.Errorf("%s register %#x: %w: TjMax 0", path, msrTemperatureTarget, ErrGarbage)
	}
	t := &MSRThermometer{
		dev:   dev,
		cpu:   pc.CPU,
		reg:   msrPackageThermStatus,
		tjMax: tjMax,
		src: Source{
			Kind:     KindMSR,
			Quantity: QuantityTemperature,
			Name:     fmt.Sprintf("package-%d thermal status", pc.Package),
			Path:     path,
			Tier:     TierSensor,
		},
	}
	switch _, err := readMSRFile(f, path, msrPackageThermStatus); {
	case errors.Is(err, ErrNotFound):
		t.reg = msrThermStatus
		t.src.Name = fmt.Sprintf("package-%d cpu%d thermal status", pc.Package, pc.CPU)
	case err != nil:
		return nil, err
	}
	return t, nil
}

// Source describes t. Its Name is "package-N thermal status", or
// "package-N cpuM thermal status" where only the core sensor exists.
func (t *MSRThermometer) Source() Source { return t.src }

// TjMax returns the package's maximum junction temperature, in °C.
func (t *MSRThermometer) TjMax() units.Celsius { return units.Celsius(t.tjMax) }

// ReadTemperature returns the current temperature, in °C.
func (t *MSRThermometer) ReadTemperature() (units.Celsius, error) {
	v, err := ReadMSR(t.dev, t.cpu, t.reg)
	if err != nil {
		return 0, err
	}
	if t.reg == msrThermStatus && v&msrThermReadingValid == 0 {
		return 0, fmt.Errorf("%s register %#x: %w: reading-valid bit clear", t.src.Path, t.reg, ErrGarbage)
	}
	below := int(v>>msrDigitalReadoutShift) & msrDigitalReadoutMask
	c, err := plausibleCelsius(t.src.Path, float64(t.tjMax-below))
	return units.Celsius(c), err
}
