package sensors

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Real RAPL power unit register values: power unit 1/8 W, energy status
// unit 2^-14 J (61.03515625 µJ) on Intel, 2^-16 J (15.2587890625 µJ) on AMD
// Zen, time unit 2^-10 s.
const (
	intelPowerUnit = 0xA0E03
	amdPowerUnit   = 0xA1003
)

func TestCPUVendor(t *testing.T) {
	tests := []struct {
		host    string
		want    Vendor
		wantErr error
	}{
		{"intel", VendorIntel, nil},
		{"amd", VendorAMD, nil},
		{"empty", VendorIntel, nil},
		{"garbage", "", ErrGarbage},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, err := CPUVendor(fixture(t, tt.host).Proc)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("CPUVendor = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, err := CPUVendor(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Errorf("CPUVendor without cpuinfo: %v, want ErrNotFound", err)
	}
}

func TestPackageCPUs(t *testing.T) {
	intel := fixture(t, "intel")
	if got, err := PackageCPUs(intel.Sys); err != nil || !slices.Equal(got, []PackageCPU{{0, 0}, {1, 2}}) {
		t.Errorf("PackageCPUs(intel) = %v, %v", got, err)
	}
	if got, err := PackageCPUs(t.TempDir()); err != nil || !slices.Equal(got, []PackageCPU{{0, 0}}) {
		t.Errorf("PackageCPUs(no topology) = %v, %v; want one package through CPU 0", got, err)
	}
	// Packages numbered against CPU order, and an offline CPU without
	// topology.
	sys := t.TempDir()
	cpu := filepath.Join(sys, "devices", "system", "cpu")
	for _, c := range []struct{ dir, pkg string }{{"cpu0", "1"}, {"cpu1", "1"}, {"cpu2", "0"}, {"cpu3", ""}} {
		if c.pkg == "" {
			mkdir(t, filepath.Join(cpu, c.dir))
			continue
		}
		mkdir(t, filepath.Join(cpu, c.dir, "topology"))
		writeFile(t, filepath.Join(cpu, c.dir, "topology", "physical_package_id"), c.pkg+"\n")
	}
	if got, err := PackageCPUs(sys); err != nil || !slices.Equal(got, []PackageCPU{{0, 2}, {1, 0}}) {
		t.Errorf("PackageCPUs(reordered) = %v, %v; want [{0 2} {1 0}]", got, err)
	}
	writeFile(t, filepath.Join(cpu, "cpu1", "topology", "physical_package_id"), "one\n")
	if _, err := PackageCPUs(sys); !errors.Is(err, ErrGarbage) {
		t.Errorf("PackageCPUs with a garbage package id: %v, want ErrGarbage", err)
	}
}

func TestReadMSR(t *testing.T) {
	dev := t.TempDir()
	writeMSR(t, dev, 0, map[uint32]uint64{
		msrRAPLPowerUnit:      intelPowerUnit,
		msrAMDPkgEnergyStatus: 0x1122334455667788,
	}, 0)
	tests := []struct {
		name    string
		cpu     int
		reg     uint32
		want    uint64
		wantErr error
	}{
		{"low register", 0, msrRAPLPowerUnit, intelPowerUnit, nil},
		{"AMD register past 3 GiB", 0, msrAMDPkgEnergyStatus, 0x1122334455667788, nil},
		{"unwritten register reads zero", 0, msrPkgEnergyStatus, 0, nil},
		{"register past the end", 0, msrAMDPkgEnergyStatus + 8, 0, ErrNotFound},
		{"no such CPU", 1, msrRAPLPowerUnit, 0, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadMSR(dev, tt.cpu, tt.reg)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("ReadMSR(%d, %#x) = %#x, %v; want %#x, %v", tt.cpu, tt.reg, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCountsToEnergy(t *testing.T) {
	tests := []struct {
		n    uint64
		esu  uint
		want units.Energy
	}{
		{0, 14, 0},
		{1, 14, 61},     // 61.035 µJ
		{100, 14, 6103}, // not 100 × 61
		{1 << 32, 14, 262144000000},
		{1 << 40, 14, 67108864000000},
		{3, 16, 45},             // 45.776 µJ
		{7, 0, 7000000},         // 1 J units
		{1 << 63, 0, 1<<64 - 1}, // saturates
		{1 << 63, 31, 4294967296000000},
	}
	for _, tt := range tests {
		if got := countsToEnergy(tt.n, tt.esu); got != tt.want {
			t.Errorf("countsToEnergy(%d, %d) = %d, want %d", tt.n, tt.esu, got, tt.want)
		}
	}
}

func TestMSREnergy(t *testing.T) {
	tests := []struct {
		name    string
		vendor  Vendor
		unitReg uint32
		unit    uint64
		reg     uint32
		raws    []uint64       // energy status register before each read
		want    []units.Energy // µJ after each read
	}{
		{
			name: "intel forward", vendor: VendorIntel,
			unitReg: msrRAPLPowerUnit, unit: intelPowerUnit, reg: msrPkgEnergyStatus,
			raws: []uint64{1000, 2000, 2000, 18384},
			want: []units.Energy{61035, 122070, 122070, 1122070},
		},
		{
			// 0xFFFFFFF0 → 0x10 is 0x20 counts, not a step backwards.
			name: "intel wraps", vendor: VendorIntel,
			unitReg: msrRAPLPowerUnit, unit: intelPowerUnit, reg: msrPkgEnergyStatus,
			raws: []uint64{0xFFFFFFF0, 0x10, 0x30},
			want: []units.Energy{countsToEnergy(0xFFFFFFF0, 14), countsToEnergy(0x100000010, 14), countsToEnergy(0x100000030, 14)},
		},
		{
			// Bits 63:32 are reserved and must not leak into the count.
			name: "reserved high bits", vendor: VendorIntel,
			unitReg: msrRAPLPowerUnit, unit: intelPowerUnit, reg: msrPkgEnergyStatus,
			raws: []uint64{0xDEAD000000000010, 0xBEEF000000000020},
			want: []units.Energy{976, 1953}, // 16 and 32 counts of 61.035 µJ
		},
		{
			name: "amd", vendor: VendorAMD,
			unitReg: msrAMDRAPLPowerUnit, unit: amdPowerUnit, reg: msrAMDPkgEnergyStatus,
			raws: []uint64{65536, 131072, 0xFFFFFFFF, 0},
			want: []units.Energy{1000000, 2000000, countsToEnergy(0xFFFFFFFF, 16), countsToEnergy(0x100000000, 16)},
		},
		{
			name: "hygon uses the AMD registers", vendor: VendorHygon,
			unitReg: msrAMDRAPLPowerUnit, unit: amdPowerUnit, reg: msrAMDPkgEnergyStatus,
			raws: []uint64{3, 6},
			want: []units.Energy{45, 91},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := t.TempDir()
			writeMSR(t, dev, 2, map[uint32]uint64{tt.unitReg: tt.unit, tt.reg: tt.raws[0]}, 0)
			e, err := OpenMSREnergy(dev, PackageCPU{Package: 1, CPU: 2}, tt.vendor)
			if err != nil {
				t.Fatal(err)
			}
			src := e.Source()
			if src.Kind != KindMSR || src.Quantity != QuantityEnergy || src.Name != "package-1" ||
				src.Path != filepath.Join(dev, "cpu", "2", "msr") || src.Tier != TierSensor {
				t.Errorf("source = %+v", src)
			}
			for i, raw := range tt.raws {
				writeMSR(t, dev, 2, map[uint32]uint64{tt.reg: raw}, 0)
				got, err := e.ReadEnergy()
				if err != nil || got != tt.want[i] {
					t.Errorf("read %d (raw %#x) = %d, %v; want %d", i, raw, got, err, tt.want[i])
				}
			}
		})
	}
}

func TestMSREnergyNoDrift(t *testing.T) {
	// One count (61.035 µJ) per read: converting each delta would lose
	// 0.035 µJ a read; converting the accumulated count loses none.
	dev := t.TempDir()
	writeMSR(t, dev, 0, map[uint32]uint64{msrRAPLPowerUnit: intelPowerUnit}, 0)
	e, err := OpenMSREnergy(dev, PackageCPU{}, VendorIntel)
	if err != nil {
		t.Fatal(err)
	}
	var got units.Energy
	for raw := uint64(0); raw <= 1000; raw++ {
		writeMSR(t, dev, 0, map[uint32]uint64{msrPkgEnergyStatus: raw}, 0)
		if got, err = e.ReadEnergy(); err != nil {
			t.Fatal(err)
		}
	}
	if got != 61035 { // floor(1000 × 61.03515625)
		t.Errorf("after 1000 one-count reads: %d µJ, want 61035", got)
	}
}

func TestOpenMSREnergyErrors(t *testing.T) {
	dev := t.TempDir()
	writeMSR(t, dev, 0, map[uint32]uint64{msrPkgEnergyStatus: 5}, 0)
	tests := []struct {
		name   string
		cpu    int
		vendor Vendor
		want   error
	}{
		{"zero unit register", 0, VendorIntel, ErrGarbage},
		{"AMD unit register absent", 0, VendorAMD, ErrNotFound},
		{"unknown vendor", 0, "CentaurHauls", ErrNotFound},
		{"no msr device", 1, VendorIntel, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenMSREnergy(dev, PackageCPU{CPU: tt.cpu}, tt.vendor); !errors.Is(err, tt.want) {
				t.Errorf("OpenMSREnergy: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMSRThermometer(t *testing.T) {
	const (
		tjMax100 = 100 << 16
		valid    = 1 << 31
	)
	// size cuts the file after MSR_TEMPERATURE_TARGET, so that
	// IA32_PACKAGE_THERM_STATUS (0x1B1) is absent but IA32_THERM_STATUS
	// (0x19C) is present.
	const noPkgReg = msrTemperatureTarget + 8
	tests := []struct {
		name     string
		regs     map[uint32]uint64
		size     int64
		vendor   Vendor
		wantName string
		openErr  error
		want     units.Celsius
		readErr  error
	}{
		{
			name:     "package register",
			regs:     map[uint32]uint64{msrTemperatureTarget: tjMax100, msrPackageThermStatus: 35 << 16},
			vendor:   VendorIntel,
			wantName: "package-0 thermal status",
			want:     65,
		},
		{
			name:     "package register ignores reserved bit 31",
			regs:     map[uint32]uint64{msrTemperatureTarget: 0x5640000 | tjMax100, msrPackageThermStatus: valid | 0x8 | 20<<16},
			vendor:   VendorIntel,
			wantName: "package-0 thermal status",
			want:     80,
		},
		{
			name:     "core register fallback",
			regs:     map[uint32]uint64{msrTemperatureTarget: tjMax100, msrThermStatus: valid | 0x08000000 | 35<<16},
			size:     noPkgReg,
			vendor:   VendorIntel,
			wantName: "package-0 cpu0 thermal status",
			want:     65,
		},
		{
			name:     "core register reading not valid",
			regs:     map[uint32]uint64{msrTemperatureTarget: tjMax100, msrThermStatus: 35 << 16},
			size:     noPkgReg,
			vendor:   VendorIntel,
			wantName: "package-0 cpu0 thermal status",
			readErr:  ErrGarbage,
		},
		{
			name:     "readout beyond TjMax",
			regs:     map[uint32]uint64{msrTemperatureTarget: 20 << 16, msrPackageThermStatus: 0x7F << 16},
			vendor:   VendorIntel,
			wantName: "package-0 thermal status",
			readErr:  ErrGarbage,
		},
		{
			name:    "TjMax zero",
			regs:    map[uint32]uint64{msrPackageThermStatus: 35 << 16},
			vendor:  VendorIntel,
			openErr: ErrGarbage,
		},
		{
			name:    "AMD has no temperature MSR",
			regs:    map[uint32]uint64{msrTemperatureTarget: tjMax100},
			vendor:  VendorAMD,
			openErr: ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := t.TempDir()
			writeMSR(t, dev, 0, tt.regs, tt.size)
			th, err := OpenMSRThermometer(dev, PackageCPU{}, tt.vendor)
			if !errors.Is(err, tt.openErr) || (tt.openErr == nil) != (err == nil) {
				t.Fatalf("OpenMSRThermometer: %v, want %v", err, tt.openErr)
			}
			if err != nil {
				return
			}
			if got := th.Source(); got.Name != tt.wantName || got.Kind != KindMSR || got.Quantity != QuantityTemperature {
				t.Errorf("source = %+v, want name %q", got, tt.wantName)
			}
			if th.TjMax() != units.Celsius(tt.regs[msrTemperatureTarget]>>16&0xFF) {
				t.Errorf("TjMax = %v", th.TjMax())
			}
			got, err := th.ReadTemperature()
			if got != tt.want || !errors.Is(err, tt.readErr) || (tt.readErr == nil) != (err == nil) {
				t.Errorf("ReadTemperature = %v, %v; want %v, %v", got, err, tt.want, tt.readErr)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
