package telemetry

import (
	"github.com/maxwellhq/maxwell/internal/clock/clocktest"

	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// procStat writes a /proc/stat with two CPUs that have each spent busy and
// idle jiffies.
func procStat(t *testing.T, proc string, busy, idle int) {
	t.Helper()
	line := func(name string) string {
		return strings.Join([]string{name, strconv.Itoa(busy), "0", "0", strconv.Itoa(idle), "0", "0", "0", "0", "0", "0"}, " ")
	}
	write(t, filepath.Join(proc, "stat"), line("cpu")+"\n"+line("cpu0")+"\n"+line("cpu1")+"\nbtime 1\n")
}

func TestOpenFallsBackToModels(t *testing.T) {
	root := t.TempDir()
	roots := sensors.Roots{Sys: filepath.Join(root, "sys"), Proc: filepath.Join(root, "proc"), Dev: filepath.Join(root, "dev")}
	procStat(t, roots.Proc, 0, 0)
	clk := clocktest.New()
	tel, err := Open(roots, config.Default(), clk)
	if err != nil {
		t.Fatal(err)
	}
	e, temp := tel.Sources()
	if !e.Estimated() || !temp.Estimated() || !tel.Estimated() {
		t.Fatalf("sources on a host without sensors: %v / %v", e, temp)
	}
	if !strings.Contains(e.Model, "Dell PowerEdge R620") || !strings.Contains(temp.Model, "R=2.5") {
		t.Errorf("model sources do not name their models: %q / %q", e.Model, temp.Model)
	}
	// 2 CPUs as a slice of a 32-thread server idling at 54.1 W.
	if want := 54.1 * 2 / 32; float64(tel.IdlePower) < want-1e-9 || float64(tel.IdlePower) > want+1e-9 {
		t.Errorf("idle power = %v W, want %v", tel.IdlePower, want)
	}
	// One second fully busy: energy = max power (243 W × 2/32) × 1 s.
	procStat(t, roots.Proc, 100, 0)
	clk.Advance(time.Second)
	got, err := tel.Energy.ReadEnergy()
	if err != nil {
		t.Fatal(err)
	}
	if want := 243.0 * 2 / 32; got.Joules() < want-1e-6 || got.Joules() > want+1e-6 {
		t.Errorf("energy after 1 s at full load = %v J, want %v", got.Joules(), want)
	}
	c, err := tel.Temp.ReadTemperature()
	if err != nil {
		t.Fatal(err)
	}
	if c <= 25 {
		t.Errorf("twin temperature %v did not rise under load", c)
	}
}

func TestOpenPrefersRealSensors(t *testing.T) {
	root := t.TempDir()
	roots := sensors.Roots{Sys: filepath.Join(root, "sys"), Proc: filepath.Join(root, "proc"), Dev: filepath.Join(root, "dev")}
	procStat(t, roots.Proc, 0, 0)
	zone := filepath.Join(roots.Sys, "class/powercap/intel-rapl:0")
	write(t, filepath.Join(zone, "name"), "package-0\n")
	write(t, filepath.Join(zone, "energy_uj"), "1000000\n")
	write(t, filepath.Join(zone, "max_energy_range_uj"), "262143328850\n")
	write(t, filepath.Join(roots.Sys, "class/thermal/thermal_zone0/type"), "x86_pkg_temp\n")
	write(t, filepath.Join(roots.Sys, "class/thermal/thermal_zone0/temp"), "47000\n")

	tel, err := Open(roots, config.Default(), clocktest.New())
	if err != nil {
		t.Fatal(err)
	}
	e, temp := tel.Sources()
	if e.Estimated() || e.Kind != sensors.KindRAPL || temp.Estimated() || temp.Kind != sensors.KindThermalZone {
		t.Fatalf("sources = %v / %v, want RAPL and thermal zone", e, temp)
	}
	if tel.Estimator != nil || tel.IdlePower != 0 {
		t.Errorf("model in use although both sensors exist")
	}
	c, err := tel.Temp.ReadTemperature()
	if err != nil || c != 47 {
		t.Errorf("temperature = %v, %v; want 47", c, err)
	}
}

func TestOpenTwinOnRealPower(t *testing.T) {
	root := t.TempDir()
	roots := sensors.Roots{Sys: filepath.Join(root, "sys"), Proc: filepath.Join(root, "proc"), Dev: filepath.Join(root, "dev")}
	procStat(t, roots.Proc, 0, 0)
	zone := filepath.Join(roots.Sys, "class/powercap/intel-rapl:0")
	write(t, filepath.Join(zone, "name"), "package-0\n")
	write(t, filepath.Join(zone, "energy_uj"), "1000000\n")
	write(t, filepath.Join(zone, "max_energy_range_uj"), "262143328850\n")
	tel, err := Open(roots, config.Default(), clocktest.New())
	if err != nil {
		t.Fatal(err)
	}
	e, temp := tel.Sources()
	if e.Estimated() || !temp.Estimated() || !strings.Contains(temp.Model, "measured-power") {
		t.Fatalf("sources = %v / %v, want measured energy and a twin on measured power", e, temp)
	}
}
