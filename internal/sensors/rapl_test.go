package sensors

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

func TestClassify(t *testing.T) {
	const path = "/sys/class/powercap/intel-rapl:0/energy_uj"
	tests := []struct {
		name string
		err  error
		want error // sentinel, or nil for none
	}{
		{"EACCES", &fs.PathError{Op: "open", Path: path, Err: syscall.EACCES}, ErrPermission},
		{"EPERM", &fs.PathError{Op: "open", Path: path, Err: syscall.EPERM}, ErrPermission},
		{"wrapped fs.ErrPermission", errors.Join(errors.New("context"), fs.ErrPermission), ErrPermission},
		{"ENOENT", &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}, ErrNotFound},
		{"ENODEV", syscall.ENODEV, ErrNotFound},
		{"ENXIO", syscall.ENXIO, ErrNotFound},
		{"EIO", syscall.EIO, nil},
		{"EOF", io.EOF, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(path, tt.err)
			if !errors.Is(got, tt.err) {
				t.Errorf("classify lost the original error: %v", got)
			}
			if !strings.Contains(got.Error(), path) {
				t.Errorf("error %q does not name the path", got)
			}
			for _, s := range []error{ErrPermission, ErrNotFound, ErrGarbage} {
				if is := errors.Is(got, s); is != (s == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v", got, s, is)
				}
			}
		})
	}
	if classify(path, nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

func zoneNames(zs []*RAPLZone) []string {
	var out []string
	for _, z := range zs {
		out = append(out, z.Source().Name)
	}
	return out
}

func TestRAPLZones(t *testing.T) {
	tests := []struct {
		host     string
		names    []string
		energy   []units.Energy // first read of each zone, µJ
		maxRange []units.Energy
		wantErr  error
	}{
		{
			host:     "intel",
			names:    []string{"package-0", "package-0/core", "package-0/dram", "package-1", "package-1/core", "package-1/dram"},
			energy:   []units.Energy{81234567890, 23456789012, 12345678901, 79876543210, 22334455667, 11223344556},
			maxRange: []units.Energy{262143328850, 262143328850, 65712999613, 262143328850, 262143328850, 65712999613},
		},
		{
			// intel-rapl-mmio:0 duplicates package-0 and is skipped.
			host:   "laptop",
			names:  []string{"package-0", "package-0/core", "package-0/uncore", "psys"},
			energy: []units.Energy{45678901234, 12345678901, 345678901, 98765432109},
		},
		{
			host:     "amd",
			names:    []string{"package-0"},
			energy:   []units.Energy{12345678901},
			maxRange: []units.Energy{65532610987},
		},
		{
			// intel-rapl:2 has an empty name, intel-rapl:3 a negative
			// range: both fail to open, the others open but read garbage.
			host:    "garbage",
			names:   []string{"package-0", "package-0/core", "psys"},
			wantErr: ErrGarbage,
		},
		{host: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			r := fixture(t, tt.host)
			zones, err := RAPLZones(r.Sys, RAPLOptions{})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("RAPLZones error = %v, want %v", err, tt.wantErr)
			}
			if got := zoneNames(zones); !slices.Equal(got, tt.names) {
				t.Fatalf("zones = %q, want %q", got, tt.names)
			}
			for i, z := range zones {
				src := z.Source()
				if src.Kind != KindRAPL || src.Quantity != QuantityEnergy || src.Tier != TierSensor {
					t.Errorf("%s: source = %+v", src.Name, src)
				}
				if filepath.Base(src.Path) != "energy_uj" || !strings.Contains(src.Path, "intel-rapl:") {
					t.Errorf("%s: path = %q", src.Name, src.Path)
				}
				if i < len(tt.maxRange) && z.MaxEnergyRange() != tt.maxRange[i] {
					t.Errorf("%s: max range = %d, want %d", src.Name, z.MaxEnergyRange(), tt.maxRange[i])
				}
				got, err := z.ReadEnergy()
				if tt.energy == nil {
					if !errors.Is(err, ErrGarbage) {
						t.Errorf("%s: ReadEnergy = %v, %v; want ErrGarbage", src.Name, got, err)
					}
					continue
				}
				if err != nil || got != tt.energy[i] {
					t.Errorf("%s: ReadEnergy = %d, %v; want %d", src.Name, got, err, tt.energy[i])
				}
			}
		})
	}
}

func TestRAPLMissingRoot(t *testing.T) {
	zones, err := RAPLZones(filepath.Join(t.TempDir(), "nonexistent"), RAPLOptions{})
	if err != nil || len(zones) != 0 {
		t.Errorf("RAPLZones on a missing root = %v, %v; want none, nil", zones, err)
	}
	if _, err := OpenRAPLZone(filepath.Join(t.TempDir(), "intel-rapl:0"), RAPLOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenRAPLZone on a missing zone: %v, want ErrNotFound", err)
	}
}

func TestRAPLCalibratedTier(t *testing.T) {
	r := fixture(t, "amd")
	dir := filepath.Join(r.Sys, "class", "powercap", "intel-rapl:0")
	for _, tt := range []struct {
		opts RAPLOptions
		want Tier
	}{
		{RAPLOptions{}, TierSensor},
		{RAPLOptions{Calibrated: true}, TierCalibrated},
	} {
		z, err := OpenRAPLZone(dir, tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := z.Source().Tier; got != tt.want {
			t.Errorf("opts %+v: tier = %v, want %v", tt.opts, got, tt.want)
		}
	}
}

func TestRAPLWraparound(t *testing.T) {
	const max = 262143328850
	tests := []struct {
		name     string
		maxRange string // contents of max_energy_range_uj; "" removes it
		writes   []string
		want     []units.Energy // total after each read; 0 with wantErr
		wantErr  []error
	}{
		{
			name:     "forward",
			maxRange: "262143328850",
			writes:   []string{"1000", "1500", "1500", "4000"},
			want:     []units.Energy{1000, 1500, 1500, 4000},
		},
		{
			name:     "wraps once",
			maxRange: "262143328850",
			writes:   []string{"262143328000", "262143328850", "100", "5000"},
			// 850 to the top, then 0..100 is 101 µJ (max+1 wraps to 0).
			want: []units.Energy{262143328000, max, max + 101, max + 5001},
		},
		{
			name:     "wraps twice",
			maxRange: "1000",
			writes:   []string{"900", "100", "950", "50"},
			want:     []units.Energy{900, 1101, 1951, 2052},
		},
		{
			name:     "unknown range does not guess",
			maxRange: "",
			writes:   []string{"900", "100", "150"},
			want:     []units.Energy{900, 900, 950},
		},
		{
			name:     "garbage leaves the counter alone",
			maxRange: "1000",
			writes:   []string{"100", "abc", "", "1001", "300"},
			want:     []units.Energy{100, 0, 0, 0, 300},
			wantErr:  []error{nil, ErrGarbage, ErrGarbage, ErrGarbage, nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fixture(t, "amd")
			dir := filepath.Join(r.Sys, "class", "powercap", "intel-rapl:0")
			if tt.maxRange == "" {
				if err := os.Remove(filepath.Join(dir, "max_energy_range_uj")); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFile(t, filepath.Join(dir, "max_energy_range_uj"), tt.maxRange+"\n")
			}
			z, err := OpenRAPLZone(dir, RAPLOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var last units.Energy
			for i, w := range tt.writes {
				writeFile(t, filepath.Join(dir, "energy_uj"), w+"\n")
				got, err := z.ReadEnergy()
				var wantErr error
				if tt.wantErr != nil {
					wantErr = tt.wantErr[i]
				}
				if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
					t.Fatalf("read %d (%q): error %v, want %v", i, w, err, wantErr)
				}
				if got != tt.want[i] {
					t.Errorf("read %d (%q) = %d, want %d", i, w, got, tt.want[i])
				}
				if err == nil {
					if got < last {
						t.Errorf("read %d went backwards: %d < %d", i, got, last)
					}
					last = got
				}
			}
		})
	}
}

// permHelperEnv, when set, makes TestRAPLPermissionDenied check the
// fixture at its value from inside a process that dropped root.
const permHelperEnv = "MAXWELL_SENSORS_TEST_PERMISSION_ROOT"

// TestRAPLPermissionDenied checks that root-only energy_uj files (mode
// 0400 root since Linux 5.10; 000 here) give ErrPermission, and that
// Discover records them without choosing them. Root reads through any
// mode, so as root the test reruns itself as nobody (uid 65534) on a copy
// of the test binary.
func TestRAPLPermissionDenied(t *testing.T) {
	if root := os.Getenv(permHelperEnv); root != "" {
		checkPermissionDenied(t, root)
		t.Log("checked permission denied as uid", os.Geteuid())
		return
	}
	dir, err := os.MkdirTemp("", "maxwell-sensors-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	extractFixture(t, "intel", dir)
	paths, err := filepath.Glob(filepath.Join(dir, "sys", "class", "powercap", "*", "energy_uj"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no energy_uj in fixture: %v", err)
	}
	for _, p := range paths {
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() != 0 {
		checkPermissionDenied(t, dir)
		return
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sensors.test")
	copyFile(t, self, bin)
	cmd := exec.Command(bin, "-test.run=^TestRAPLPermissionDenied$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), permHelperEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)) {
		// The helper never started: this root may not change uid (no
		// CAP_SETUID) or the temporary directory is mounted noexec.
		t.Skipf("cannot run the helper as uid 65534 to provoke EACCES: %v", err)
	}
	if err != nil {
		t.Fatalf("helper as nobody failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "checked permission denied as uid 65534") {
		t.Fatalf("helper did not run the check:\n%s", out)
	}
}

// checkPermissionDenied runs, unprivileged, against the intel fixture at
// root whose energy_uj files are unreadable.
func checkPermissionDenied(t *testing.T, root string) {
	sys := filepath.Join(root, "sys")
	zones, err := RAPLZones(sys, RAPLOptions{})
	if err != nil || len(zones) != 6 {
		t.Fatalf("RAPLZones = %d zones, %v; want 6 (names stay readable)", len(zones), err)
	}
	for _, z := range zones {
		_, err := z.ReadEnergy()
		if !errors.Is(err, ErrPermission) || !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s: ReadEnergy error %v, want ErrPermission wrapping EACCES", z.Source().Name, err)
		}
		if err != nil && !strings.Contains(err.Error(), z.Source().Path) {
			t.Errorf("%s: error %q does not name the path", z.Source().Name, err)
		}
	}
	inv := Discover(Roots{Sys: sys, Proc: filepath.Join(root, "proc"), Dev: filepath.Join(root, "dev")})
	if inv.EnergyCounter() != nil || inv.Energy != nil {
		t.Errorf("chose energy %v from unreadable zones", inv.Energy)
	}
	for _, f := range inv.Found {
		if f.Kind == KindRAPL && (f.Readable || !strings.Contains(f.Err, "permission denied")) {
			t.Errorf("%s: readable %v, err %q; want a permission error", f.Name, f.Readable, f.Err)
		}
	}
	if inv.Thermometer() == nil {
		t.Error("no thermometer: the temperature sources are readable")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkRAPLZoneReadEnergy(b *testing.B) {
	r := fixture(b, "amd")
	z, err := OpenRAPLZone(filepath.Join(r.Sys, "class", "powercap", "intel-rapl:0"), RAPLOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := z.ReadEnergy(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRAPLConcurrentReads(t *testing.T) {
	// Reads racing a counter that only moves forward must never see a
	// wraparound, however they interleave.
	r := fixture(t, "amd")
	dir := filepath.Join(r.Sys, "class", "powercap", "intel-rapl:0")
	path := filepath.Join(dir, "energy_uj")
	writeFile(t, path, "1000\n")
	z, err := OpenRAPLZone(dir, RAPLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if g == 0 {
					// Replace the file atomically, as sysfs never shows
					// a half-written value.
					tmp := filepath.Join(dir, "energy_uj.tmp")
					if err := os.WriteFile(tmp, []byte(strconv.Itoa(1000+10*(i+1))+"\n"), 0o644); err != nil {
						t.Error(err)
						return
					}
					if err := os.Rename(tmp, path); err != nil {
						t.Error(err)
						return
					}
				}
				if _, err := z.ReadEnergy(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, err := z.ReadEnergy()
	if err != nil || got != 1500 {
		t.Errorf("after concurrent reads: %d, %v; want 1500", got, err)
	}
}
