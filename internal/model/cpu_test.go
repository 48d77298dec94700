package model

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ticks are the ten counters of a /proc/stat cpu line, in USER_HZ ticks:
// user nice system idle iowait irq softirq steal guest guest_nice.
type ticks [10]uint64

// fixture is testdata/proc/stat's cpu0 and cpu1.
var fixture = map[int]ticks{
	0: {2373, 4, 976, 30931, 36, 1, 22, 59, 0, 0},
	1: {2651, 6, 1156, 30368, 125, 2, 39, 66, 0, 0},
}

// add returns a + b, counter by counter.
func add(a, b ticks) ticks {
	for i := range a {
		a[i] += b[i]
	}
	return a
}

// writeStat writes dir/stat in the kernel's format with the given online
// CPUs; the aggregate line is their sum, as the kernel computes it.
func writeStat(t *testing.T, dir string, cpus map[int]ticks) {
	t.Helper()
	var total ticks
	ids := make([]int, 0, len(cpus))
	for id, c := range cpus {
		total = add(total, c)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	line := func(name string, c ticks) string {
		f := make([]string, len(c))
		for i, v := range c {
			f[i] = fmt.Sprint(v)
		}
		return name + " " + strings.Join(f, " ") + "\n"
	}
	var b strings.Builder
	b.WriteString(line("cpu ", total))
	for _, id := range ids {
		b.WriteString(line(fmt.Sprintf("cpu%d", id), cpus[id]))
	}
	b.WriteString("intr 170730 0 0 0 0 1 1 10\nctxt 296895\nbtime 1795627702\nprocesses 5968\n" +
		"procs_running 1\nprocs_blocked 0\nsoftirq 60338 0 8568 5 1228 10203 0 69 22123 0 18142\n")
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyFixture copies testdata/proc/stat into a fresh directory.
func copyFixture(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "proc", "stat"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stat"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestWriteStatMatchesFixture(t *testing.T) {
	// The helper must render the fixture's CPU lines exactly, so that the
	// tests below move from the fixture's state and not from another.
	dir := t.TempDir()
	writeStat(t, dir, fixture)
	got, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "proc", "stat"))
	if err != nil {
		t.Fatal(err)
	}
	gl, wl := strings.SplitN(string(got), "\n", 4), strings.SplitN(string(want), "\n", 4)
	for i := 0; i < 3; i++ {
		if strings.Join(strings.Fields(gl[i]), " ") != strings.Join(strings.Fields(wl[i]), " ") {
			t.Errorf("line %d: helper %q, fixture %q", i, gl[i], wl[i])
		}
	}
}

func TestCPUSamplerFixture(t *testing.T) {
	s, err := NewCPUSampler(filepath.Join("testdata", "proc"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.NumCPU()
	if err != nil || n != 2 {
		t.Errorf("NumCPU() = %d, %v; want 2", n, err)
	}
	// Nothing moved since the baseline: no CPU time passed, so the
	// sampler reports its previous figure, 0 at the start.
	u, err := s.Sample()
	if err != nil || u != 0 {
		t.Errorf("Sample() on an unchanged file = %v, %v; want 0, nil", u, err)
	}
	one, err := NewCPUSampler(filepath.Join("testdata", "proc"), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := one.NumCPU(); n != 1 {
		t.Errorf("NumCPU() with set {1,1} = %d, want 1", n)
	}
}

func TestCPUSamplerUtilisation(t *testing.T) {
	// Deltas applied to the fixture, and the expected utilisation for the
	// whole host and for cpu0 and cpu1 alone.
	tests := []struct {
		name         string
		d0, d1       ticks
		host, u0, u1 float64
	}{
		{
			name: "cpu0 busy in user, cpu1 idle",
			d0:   ticks{100, 0, 0, 0, 0, 0, 0, 0, 0, 0},
			d1:   ticks{0, 0, 0, 100, 0, 0, 0, 0, 0, 0},
			host: 0.5, u0: 1, u1: 0,
		},
		{
			name: "every busy field counts",
			// user nice system irq softirq steal = 10+5+20+3+2+10 = 50 busy, 50 idle
			d0:   ticks{10, 5, 20, 40, 10, 3, 2, 10, 0, 0},
			d1:   ticks{10, 5, 20, 40, 10, 3, 2, 10, 0, 0},
			host: 0.5, u0: 0.5, u1: 0.5,
		},
		{
			name: "iowait is idle",
			d0:   ticks{25, 0, 0, 0, 75, 0, 0, 0, 0, 0},
			d1:   ticks{0, 0, 75, 25, 0, 0, 0, 0, 0, 0},
			host: 0.5, u0: 0.25, u1: 0.75,
		},
		{
			name: "guest is not counted twice",
			// guest time is already inside user; a guest delta alone must
			// not change anything.
			d0:   ticks{60, 0, 0, 40, 0, 0, 0, 0, 60, 0},
			d1:   ticks{0, 20, 0, 80, 0, 0, 0, 0, 0, 20},
			host: 0.4, u0: 0.6, u1: 0.2,
		},
		{
			name: "uneven totals",
			d0:   ticks{30, 0, 0, 70, 0, 0, 0, 0, 0, 0},
			d1:   ticks{0, 0, 150, 50, 0, 0, 0, 0, 0, 0},
			host: 180.0 / 300, u0: 0.3, u1: 0.75,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyFixture(t)
			host, err := NewCPUSampler(dir)
			if err != nil {
				t.Fatal(err)
			}
			c0, err := NewCPUSampler(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			c1, err := NewCPUSampler(dir, 1)
			if err != nil {
				t.Fatal(err)
			}
			both, err := NewCPUSampler(dir, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			writeStat(t, dir, map[int]ticks{0: add(fixture[0], tt.d0), 1: add(fixture[1], tt.d1)})
			for _, c := range []struct {
				name string
				s    *CPUSampler
				want float64
			}{{"host", host, tt.host}, {"cpu0", c0, tt.u0}, {"cpu1", c1, tt.u1}, {"cpus 0,1", both, tt.host}} {
				got, err := c.s.Sample()
				if err != nil {
					t.Fatalf("%s: Sample(): %v", c.name, err)
				}
				if !closeTo(got, c.want, 1e-9) {
					t.Errorf("%s: Sample() = %v, want %v", c.name, got, c.want)
				}
			}
		})
	}
}

func TestCPUSamplerSequence(t *testing.T) {
	dir := copyFixture(t)
	s, err := NewCPUSampler(dir)
	if err != nil {
		t.Fatal(err)
	}
	state := map[int]ticks{0: fixture[0], 1: fixture[1]}
	step := func(d0, d1 ticks) {
		state = map[int]ticks{0: add(state[0], d0), 1: add(state[1], d1)}
		writeStat(t, dir, state)
	}
	sample := func(want float64) {
		t.Helper()
		got, err := s.Sample()
		if err != nil {
			t.Fatalf("Sample(): %v", err)
		}
		if !closeTo(got, want, 1e-9) {
			t.Fatalf("Sample() = %v, want %v", got, want)
		}
	}

	step(ticks{80, 0, 0, 20}, ticks{80, 0, 0, 20})
	sample(0.8)
	// No tick passed: the previous figure again, baseline kept.
	sample(0.8)
	step(ticks{10, 0, 0, 90}, ticks{10, 0, 0, 90})
	sample(0.1) // only the interval since the last sample counts
	// Two intervals between samples are measured together.
	step(ticks{50, 0, 0, 50}, ticks{50, 0, 0, 50})
	step(ticks{100, 0, 0, 0}, ticks{100, 0, 0, 0})
	sample(0.75)
}

func TestCPUSamplerBackwards(t *testing.T) {
	dir := copyFixture(t)
	host, err := NewCPUSampler(dir)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := NewCPUSampler(dir, 1)
	if err != nil {
		t.Fatal(err)
	}

	// cpu1 goes offline: its line disappears and the aggregate drops.
	offline := map[int]ticks{0: add(fixture[0], ticks{10, 0, 0, 10})}
	writeStat(t, dir, offline)
	u, err := host.Sample()
	if !errors.Is(err, ErrCounterBackwards) || u != 0 {
		t.Errorf("host Sample() after hotplug = %v, %v; want 0, ErrCounterBackwards", u, err)
	}
	if u, err := c1.Sample(); !errors.Is(err, ErrCPUNotFound) || u != 0 {
		t.Errorf("cpu1 Sample() while offline = %v, %v; want 0, ErrCPUNotFound", u, err)
	}

	// The host sampler restarted from the post-hotplug reading.
	writeStat(t, dir, map[int]ticks{0: add(offline[0], ticks{30, 0, 0, 70})})
	if u, err := host.Sample(); err != nil || !closeTo(u, 0.3, 1e-9) {
		t.Errorf("host Sample() after restart = %v, %v; want 0.3", u, err)
	}

	// A per-CPU counter that goes backwards (a CPU that came back with
	// fresh counters) is caught too.
	writeStat(t, dir, map[int]ticks{0: add(offline[0], ticks{30, 0, 0, 70}), 1: {5, 0, 0, 5}})
	if u, err := c1.Sample(); !errors.Is(err, ErrCounterBackwards) || u != 0 {
		t.Errorf("cpu1 Sample() with reset counters = %v, %v; want 0, ErrCounterBackwards", u, err)
	}
	if u, err := c1.Sample(); err != nil || u < 0 {
		t.Errorf("cpu1 Sample() after restart = %v, %v; want ≥ 0, nil", u, err)
	}
}

func TestNewCPUSamplerErrors(t *testing.T) {
	if _, err := NewCPUSampler(filepath.Join("testdata", "proc"), 7); !errors.Is(err, ErrCPUNotFound) {
		t.Errorf("NewCPUSampler(cpu 7) error = %v, want ErrCPUNotFound", err)
	}
	if _, err := NewCPUSampler(filepath.Join("testdata", "proc"), -1); !errors.Is(err, ErrBadParam) {
		t.Errorf("NewCPUSampler(cpu -1) error = %v, want ErrBadParam", err)
	}
	if _, err := NewCPUSampler(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("NewCPUSampler(missing dir) succeeded")
	}
	if _, err := NewCPUSampler(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NewCPUSampler(dir without stat) error = %v, want ErrNotExist", err)
	}
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, "stat"), []byte("cpu  x y z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCPUSampler(garbage); err == nil {
		t.Error("NewCPUSampler(garbage stat) succeeded")
	}
}

// TestCPUSamplerLive reads this host's real procfs.
func TestCPUSamplerLive(t *testing.T) {
	s, err := NewCPUSampler("/proc")
	if err != nil {
		t.Fatalf("NewCPUSampler(/proc): %v", err)
	}
	n, err := s.NumCPU()
	if err != nil || n < 1 {
		t.Fatalf("NumCPU() = %d, %v", n, err)
	}
	// Burn a little CPU so that at least one tick passes.
	x := 0.0
	for i := 0; i < 20_000_000; i++ {
		x += math.Sqrt(float64(i))
	}
	_ = x
	u, err := s.Sample()
	if err != nil || u < 0 || u > 1 || math.IsNaN(u) {
		t.Errorf("Sample() = %v, %v; want in [0, 1]", u, err)
	}
}

func BenchmarkCPUSamplerSample(b *testing.B) {
	s, err := NewCPUSampler(filepath.Join("testdata", "proc"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Sample(); err != nil {
			b.Fatal(err)
		}
	}
}
