package sensors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

// intelMSRs gives the intel fixture a fake msr device for CPU 0 (package 0)
// and CPU 2 (package 1).
func intelMSRs(t *testing.T, r Roots) {
	t.Helper()
	for _, cpu := range []int{0, 2} {
		writeMSR(t, r.Dev, cpu, map[uint32]uint64{
			msrRAPLPowerUnit:      intelPowerUnit,
			msrPkgEnergyStatus:    16384 * uint64(cpu+1), // 1 J, 3 J
			msrTemperatureTarget:  100 << 16,
			msrPackageThermStatus: uint64(40+cpu) << 16, // 60 °C, 58 °C
		}, 0)
	}
}

func chosenNames(inv Inventory) []string {
	var out []string
	for _, f := range inv.Found {
		if f.Chosen {
			out = append(out, string(f.Kind)+":"+f.Name)
		}
	}
	return out
}

func TestDiscover(t *testing.T) {
	tests := []struct {
		name  string
		host  string
		opts  Options
		setup func(t *testing.T, r Roots)

		found, readable int
		vendor          Vendor
		errs            int     // len(Inventory.Errors)
		energy          *Source // nil: none chosen
		energyJ         float64 // first read of the chosen counter
		temp            *Source
		tempC           units.Celsius
		chosen          []string
	}{
		{
			name: "intel", host: "intel", vendor: VendorIntel,
			found: 6 + 3 + 9, readable: 18,
			energy:  &Source{Kind: KindRAPL, Quantity: QuantityEnergy, Name: "sum(package-0, package-1)", Tier: TierSensor},
			energyJ: (81234567890 + 79876543210) / 1e6,
			temp:    &Source{Kind: KindThermalZone, Quantity: QuantityTemperature, Name: "max(x86_pkg_temp (thermal_zone1), x86_pkg_temp (thermal_zone2))", Tier: TierSensor},
			tempC:   55,
			chosen: []string{"rapl:package-0", "rapl:package-1",
				"thermal_zone:x86_pkg_temp (thermal_zone1)", "thermal_zone:x86_pkg_temp (thermal_zone2)"},
		},
		{
			name: "intel calibrated", host: "intel", vendor: VendorIntel, opts: Options{RAPL: RAPLOptions{Calibrated: true}},
			found: 18, readable: 18,
			energy:  &Source{Kind: KindRAPL, Quantity: QuantityEnergy, Name: "sum(package-0, package-1)", Tier: TierCalibrated},
			energyJ: (81234567890 + 79876543210) / 1e6,
			temp:    &Source{Kind: KindThermalZone, Quantity: QuantityTemperature, Name: "max(x86_pkg_temp (thermal_zone1), x86_pkg_temp (thermal_zone2))", Tier: TierSensor},
			tempC:   55,
		},
		{
			// MSRs beat the thermal zones for temperature but not RAPL
			// for energy.
			name: "intel with msr", host: "intel", vendor: VendorIntel, setup: intelMSRs,
			found: 18 + 4, readable: 22,
			energy:  &Source{Kind: KindRAPL, Quantity: QuantityEnergy, Name: "sum(package-0, package-1)", Tier: TierSensor},
			energyJ: (81234567890 + 79876543210) / 1e6,
			temp:    &Source{Kind: KindMSR, Quantity: QuantityTemperature, Name: "max(package-0 thermal status, package-1 thermal status)", Tier: TierSensor},
			tempC:   60,
			chosen: []string{"rapl:package-0", "rapl:package-1",
				"msr:package-0 thermal status", "msr:package-1 thermal status"},
		},
		{
			// One unreadable package rules out the RAPL package sum: the
			// MSR counters of both packages are used instead.
			name: "intel with a garbage package", host: "intel", vendor: VendorIntel,
			setup: func(t *testing.T, r Roots) {
				intelMSRs(t, r)
				writeFile(t, filepath.Join(r.Sys, "class", "powercap", "intel-rapl:1", "energy_uj"), "x\n")
			},
			found: 22, readable: 21,
			energy:  &Source{Kind: KindMSR, Quantity: QuantityEnergy, Name: "sum(package-0, package-1)", Tier: TierSensor},
			energyJ: countsToEnergy(16384, 14).Joules() + countsToEnergy(3*16384, 14).Joules(),
			temp:    &Source{Kind: KindMSR, Quantity: QuantityTemperature, Name: "max(package-0 thermal status, package-1 thermal status)", Tier: TierSensor},
			tempC:   60,
			chosen: []string{"msr:package-0", "msr:package-1",
				"msr:package-0 thermal status", "msr:package-1 thermal status"},
		},
		{
			name: "intel hwmon only", host: "intel", vendor: VendorIntel,
			setup: func(t *testing.T, r Roots) {
				removeAll(t, filepath.Join(r.Sys, "class", "thermal"))
				removeAll(t, filepath.Join(r.Sys, "class", "powercap"))
			},
			found: 9, readable: 9,
			temp:   &Source{Kind: KindHwmon, Quantity: QuantityTemperature, Name: "max(coretemp Package id 0, coretemp Package id 1)", Tier: TierSensor},
			tempC:  55,
			chosen: []string{"hwmon:coretemp Package id 0", "hwmon:coretemp Package id 1"},
		},
		{
			name: "laptop", host: "laptop", vendor: VendorIntel,
			found: 4 + 4 + 5, readable: 13,
			energy:  &Source{Kind: KindRAPL, Quantity: QuantityEnergy, Name: "package-0", Path: "sys/class/powercap/intel-rapl:0/energy_uj", Tier: TierSensor},
			energyJ: 45678.901234,
			temp:    &Source{Kind: KindThermalZone, Quantity: QuantityTemperature, Name: "x86_pkg_temp (thermal_zone3)", Path: "sys/class/thermal/thermal_zone3/temp", Tier: TierSensor},
			tempC:   61,
			chosen:  []string{"rapl:package-0", "thermal_zone:x86_pkg_temp (thermal_zone3)"},
		},
		{
			name: "laptop falls back to psys and acpitz", host: "laptop", vendor: VendorIntel,
			setup: func(t *testing.T, r Roots) {
				writeFile(t, filepath.Join(r.Sys, "class", "powercap", "intel-rapl:0", "energy_uj"), "\n")
				removeAll(t, filepath.Join(r.Sys, "class", "hwmon"))
				removeAll(t, filepath.Join(r.Sys, "class", "thermal", "thermal_zone3"))
			},
			found: 4 + 3, readable: 6,
			energy:  &Source{Kind: KindRAPL, Quantity: QuantityEnergy, Name: "psys", Path: "sys/class/powercap/intel-rapl:1/energy_uj", Tier: TierSensor},
			energyJ: 98765.432109,
			// acpitz and INT3400 are "other" zones; the wifi zone is not
			// the host's.
			temp:   &Source{Kind: KindThermalZone, Quantity: QuantityTemperature, Name: "max(acpitz (thermal_zone0), INT3400 Thermal (thermal_zone1))", Tier: TierSensor},
			tempC:  48,
			chosen: []string{"rapl:psys", "thermal_zone:acpitz (thermal_zone0)", "thermal_zone:INT3400 Thermal (thermal_zone1)"},
		},
		{
			name: "amd", host: "amd", vendor: VendorAMD,
			found: 1 + 4, readable: 5,
			energy:  &Source{Kind: KindRAPL, Quantity: QuantityEnergy, Name: "package-0", Path: "sys/class/powercap/intel-rapl:0/energy_uj", Tier: TierSensor},
			energyJ: 12345.678901,
			temp:    &Source{Kind: KindHwmon, Quantity: QuantityTemperature, Name: "k10temp Tctl (offset 0)", Path: "sys/class/hwmon/hwmon1/temp1_input", Tier: TierSensor},
			tempC:   61.25,
			chosen:  []string{"rapl:package-0", "hwmon:k10temp Tctl (offset 0)"},
		},
		{
			// AMD: an MSR energy counter but never an MSR thermometer.
			name: "amd with msr, no rapl", host: "amd", vendor: VendorAMD,
			opts: Options{Hwmon: HwmonOptions{TctlOffset: 10}},
			setup: func(t *testing.T, r Roots) {
				removeAll(t, filepath.Join(r.Sys, "class", "powercap"))
				writeMSR(t, r.Dev, 0, map[uint32]uint64{msrAMDRAPLPowerUnit: amdPowerUnit, msrAMDPkgEnergyStatus: 65536 * 7}, 0)
			},
			found: 4 + 1, readable: 5,
			energy:  &Source{Kind: KindMSR, Quantity: QuantityEnergy, Name: "package-0", Path: "dev/cpu/0/msr", Tier: TierSensor},
			energyJ: 7,
			temp:    &Source{Kind: KindHwmon, Quantity: QuantityTemperature, Name: "k10temp Tctl (offset 10)", Path: "sys/class/hwmon/hwmon1/temp1_input", Tier: TierSensor},
			tempC:   51.25,
		},
		{
			name: "threadripper", host: "threadripper", vendor: VendorAMD,
			found: 1 + 3, readable: 4,
			energy:  &Source{Kind: KindRAPL, Quantity: QuantityEnergy, Name: "package-0", Path: "sys/class/powercap/intel-rapl:0/energy_uj", Tier: TierSensor},
			energyJ: 23456.789012,
			temp:    &Source{Kind: KindHwmon, Quantity: QuantityTemperature, Name: "k10temp Tdie", Path: "sys/class/hwmon/hwmon0/temp2_input", Tier: TierSensor},
			tempC:   45,
		},
		{
			// Five zones (two fail to open), four hwmon inputs, two
			// thermal zones; nothing readable, nothing chosen.
			name: "garbage", host: "garbage",
			found: 5 + 4 + 2, readable: 0,
		},
		{
			// The msr device exists but cpuinfo has no vendor.
			name: "garbage with msr", host: "garbage",
			setup: func(t *testing.T, r Roots) {
				writeMSR(t, r.Dev, 0, map[uint32]uint64{msrRAPLPowerUnit: intelPowerUnit}, 0)
			},
			found: 11, readable: 0, errs: 1,
		},
		{name: "empty", host: "empty", vendor: VendorIntel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fixture(t, tt.host)
			if tt.setup != nil {
				tt.setup(t, r)
			}
			inv := DiscoverWith(r, tt.opts)
			checkInventory(t, inv)
			readable := 0
			for _, f := range inv.Found {
				if f.Readable {
					readable++
				}
			}
			if len(inv.Found) != tt.found || readable != tt.readable {
				t.Errorf("found %d (%d readable), want %d (%d readable)", len(inv.Found), readable, tt.found, tt.readable)
				for _, f := range inv.Found {
					t.Logf("  %s readable=%v err=%s", f.Source, f.Readable, f.Err)
				}
			}
			if tt.errs != len(inv.Errors) {
				t.Errorf("errors: %q, want %d", inv.Errors, tt.errs)
			}
			if inv.Vendor != tt.vendor {
				t.Errorf("vendor %q, want %q", inv.Vendor, tt.vendor)
			}
			if tt.chosen != nil && !slices.Equal(chosenNames(inv), tt.chosen) {
				t.Errorf("chosen %q, want %q", chosenNames(inv), tt.chosen)
			}

			checkChosen(t, "energy", inv.Energy, tt.energy, r)
			if ec := inv.EnergyCounter(); (ec == nil) != (tt.energy == nil) {
				t.Errorf("EnergyCounter() = %v, want one: %v", ec, tt.energy != nil)
			} else if ec != nil {
				// The counter was read once by Discover; with the files
				// unchanged it must read the same again.
				e, err := ec.ReadEnergy()
				if err != nil || !closeTo(e.Joules(), tt.energyJ, 1e-6) {
					t.Errorf("ReadEnergy = %v, %v; want %.6f J", e, err, tt.energyJ)
				}
				if ec.Source() != *inv.Energy {
					t.Errorf("EnergyCounter().Source() = %+v, Energy = %+v", ec.Source(), *inv.Energy)
				}
			}
			checkChosen(t, "temperature", inv.Temperature, tt.temp, r)
			if th := inv.Thermometer(); (th == nil) != (tt.temp == nil) {
				t.Errorf("Thermometer() = %v, want one: %v", th, tt.temp != nil)
			} else if th != nil {
				c, err := th.ReadTemperature()
				if err != nil || !closeTo(float64(c), float64(tt.tempC), 1e-9) {
					t.Errorf("ReadTemperature = %v, %v; want %v", c, err, tt.tempC)
				}
			}
		})
	}
}

// checkChosen compares a chosen Source with want, whose Path is relative
// to the fixture's root directory.
func checkChosen(t *testing.T, what string, got, want *Source, r Roots) {
	t.Helper()
	if (got == nil) != (want == nil) {
		t.Errorf("chosen %s = %v, want %v", what, got, want)
		return
	}
	if got == nil {
		return
	}
	w := *want
	if w.Path != "" {
		w.Path = filepath.Join(filepath.Dir(r.Sys), w.Path)
	}
	if *got != w {
		t.Errorf("chosen %s = %+v,\nwant %+v", what, *got, w)
	}
}

// checkInventory asserts what must hold of any inventory, on any host.
func checkInventory(t *testing.T, inv Inventory) {
	t.Helper()
	chosenE, chosenT := 0, 0
	for _, f := range inv.Found {
		if f.Kind == "" || f.Name == "" || f.Quantity == "" {
			t.Errorf("found source without kind, quantity or name: %+v", f)
		}
		if f.Tier != TierSensor && f.Tier != TierCalibrated {
			t.Errorf("%s: tier %v", f.Name, f.Tier)
		}
		if f.Readable == (f.Err != "") {
			t.Errorf("%s: readable %v with error %q", f.Name, f.Readable, f.Err)
		}
		if !f.Readable && f.Value != 0 {
			t.Errorf("%s: unreadable with value %v", f.Name, f.Value)
		}
		if f.Chosen {
			if !f.Readable {
				t.Errorf("%s: chosen but unreadable", f.Name)
			}
			switch f.Quantity {
			case QuantityEnergy:
				chosenE++
			case QuantityTemperature:
				chosenT++
			}
		}
	}
	if (chosenE > 0) != (inv.Energy != nil) || (inv.Energy != nil) != (inv.EnergyCounter() != nil) {
		t.Errorf("energy: %d chosen found, Energy %v, counter %v", chosenE, inv.Energy, inv.EnergyCounter())
	}
	if (chosenT > 0) != (inv.Temperature != nil) || (inv.Temperature != nil) != (inv.Thermometer() != nil) {
		t.Errorf("temperature: %d chosen found, Temperature %v, thermometer %v", chosenT, inv.Temperature, inv.Thermometer())
	}
	if inv.Energy != nil && (inv.Energy.Quantity != QuantityEnergy || inv.Energy.Tier == TierModel) {
		t.Errorf("chosen energy source %+v", *inv.Energy)
	}
	if inv.Temperature != nil && (inv.Temperature.Quantity != QuantityTemperature || inv.Temperature.Tier == TierModel) {
		t.Errorf("chosen temperature source %+v", *inv.Temperature)
	}
	if _, err := json.Marshal(inv); err != nil {
		t.Errorf("inventory does not marshal: %v", err)
	}
}

func closeTo(a, b, eps float64) bool { return a-b < eps && b-a < eps }

func removeAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoverSumTracksPackages(t *testing.T) {
	r := fixture(t, "intel")
	inv := Discover(r)
	ec := inv.EnergyCounter()
	if ec == nil {
		t.Fatal("no energy counter on the intel fixture")
	}
	before, err := ec.ReadEnergy()
	if err != nil {
		t.Fatal(err)
	}
	pc := filepath.Join(r.Sys, "class", "powercap")
	// Package 0 advances 5 J; package 1 wraps, advancing 2 J.
	writeFile(t, filepath.Join(pc, "intel-rapl:0", "energy_uj"), "81239567890\n")
	writeFile(t, filepath.Join(pc, "intel-rapl:1", "energy_uj"), "1999999\n")
	writeFile(t, filepath.Join(pc, "intel-rapl:1", "max_energy_range_uj"), "79876543210\n") // not reread
	after, err := ec.ReadEnergy()
	if err != nil {
		t.Fatal(err)
	}
	// Package 1: 262143328850 - 79876543210 + 1999999 + 1 µJ.
	want := units.Energy(5000000 + 262143328850 - 79876543210 + 1999999 + 1)
	if got := after - before; got != want {
		t.Errorf("advance = %d µJ, want %d", got, want)
	}
	writeFile(t, filepath.Join(pc, "intel-rapl:1", "energy_uj"), "oops\n")
	if _, err := ec.ReadEnergy(); err == nil {
		t.Error("sum read succeeded with a garbage package")
	}
}

func TestInventoryJSON(t *testing.T) {
	r := fixture(t, "intel")
	intelMSRs(t, r)
	inv := Discover(r)
	data, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind":"rapl"`, `"name":"package-0"`, `"readable":true`, `"chosen":true`, `"vendor":"GenuineIntel"`, `"energy":{`, `"temperature":{`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("JSON lacks %s:\n%s", want, data)
		}
	}
	var back Inventory
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Found, inv.Found) || *back.Energy != *inv.Energy || *back.Temperature != *inv.Temperature || back.Roots != inv.Roots {
		t.Errorf("round trip changed the inventory:\n%+v\n%+v", back, inv)
	}
	if back.EnergyCounter() != nil || back.Thermometer() != nil {
		t.Error("readers survived a JSON round trip")
	}
}

func TestDiscoverNoRoots(t *testing.T) {
	for _, r := range []Roots{
		{},
		{Sys: filepath.Join(t.TempDir(), "x"), Proc: filepath.Join(t.TempDir(), "y"), Dev: filepath.Join(t.TempDir(), "z")},
	} {
		inv := Discover(r)
		checkInventory(t, inv)
		if len(inv.Found) != 0 || inv.Energy != nil || inv.Temperature != nil || len(inv.Errors) != 0 {
			t.Errorf("Discover(%+v) = %+v, want nothing", r, inv)
		}
	}
}

// TestDiscoverHost runs discovery on this machine's real /sys, /proc and
// /dev. What it finds depends on the host (the CI VM has no sensors at
// all), so it checks only what holds everywhere.
func TestDiscoverHost(t *testing.T) {
	r := HostRoots()
	if r.Sys != "/sys" || r.Proc != "/proc" || r.Dev != "/dev" {
		t.Errorf("HostRoots() = %+v", r)
	}
	inv := Discover(r)
	checkInventory(t, inv)
	for _, f := range inv.Found {
		t.Logf("%s: readable=%v value=%g err=%s", f.Source, f.Readable, f.Value, f.Err)
	}
	t.Logf("energy: %v; temperature: %v; errors: %q", inv.Energy, inv.Temperature, inv.Errors)
	if ec := inv.EnergyCounter(); ec != nil {
		if _, err := ec.ReadEnergy(); err != nil {
			t.Errorf("chosen energy counter %v fails on its second read: %v", ec.Source(), err)
		}
	}
	if th := inv.Thermometer(); th != nil {
		if _, err := th.ReadTemperature(); err != nil {
			t.Errorf("chosen thermometer %v fails on its second read: %v", th.Source(), err)
		}
	}
}
