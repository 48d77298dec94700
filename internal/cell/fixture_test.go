package cell

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

func TestDetectLayout(t *testing.T) {
	tests := []struct {
		file     string
		root     string
		kind     LayoutKind
		unified  string
		v1       map[string]string
		freezers []FreezerKind
		reason   string // substring of Reason
	}{
		{
			file: "hybrid", root: "/sys/fs/cgroup", kind: LayoutHybrid,
			unified: "/sys/fs/cgroup/unified",
			v1: map[string]string{
				"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
				"cpuset": "/sys/fs/cgroup/cpuset", "memory": "/sys/fs/cgroup/memory",
				"freezer": "/sys/fs/cgroup/freezer", "pids": "/sys/fs/cgroup/pids",
			},
			freezers: []FreezerKind{FreezerV2, FreezerV1, FreezerSignal},
			reason:   "with cgroup2 at /sys/fs/cgroup/unified",
		},
		{
			file: "v2", root: "/sys/fs/cgroup", kind: LayoutV2,
			unified:  "/sys/fs/cgroup",
			freezers: []FreezerKind{FreezerV2, FreezerSignal},
			reason:   "cgroup2 mounted at /sys/fs/cgroup",
		},
		{
			file: "v2", root: "/sys/fs/cgroup/", kind: LayoutV2,
			unified:  "/sys/fs/cgroup",
			freezers: []FreezerKind{FreezerV2, FreezerSignal},
		},
		{
			file: "v1", root: "/sys/fs/cgroup", kind: LayoutV1,
			v1: map[string]string{
				"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
				"cpuset": "/sys/fs/cgroup/cpuset", "memory": "/sys/fs/cgroup/memory",
				"freezer": "/sys/fs/cgroup/freezer", "pids": "/sys/fs/cgroup/pids",
			},
			freezers: []FreezerKind{FreezerV1, FreezerSignal},
			reason:   "no cgroup2",
		},
		{
			file: "none", root: "/sys/fs/cgroup", kind: LayoutNone,
			freezers: []FreezerKind{FreezerSignal},
			reason:   "no cgroup file system mounted under /sys/fs/cgroup; falling back",
		},
		{
			file: "readonly", root: "/sys/fs/cgroup", kind: LayoutNone,
			freezers: []FreezerKind{FreezerSignal},
			reason:   "read-only (/sys/fs/cgroup)",
		},
		{
			// Mounted, but not under the root we were given.
			file: "hybrid", root: "/mnt/cgroup", kind: LayoutNone,
			freezers: []FreezerKind{FreezerSignal},
			reason:   "no cgroup file system mounted under /mnt/cgroup",
		},
		{
			file: "escaped", root: "/run/my cgroups", kind: LayoutV2,
			unified:  "/run/my cgroups",
			freezers: []FreezerKind{FreezerV2, FreezerSignal},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file+tt.root, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "mountinfo", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			l, err := DetectLayout(f, tt.root)
			if err != nil {
				t.Fatalf("DetectLayout: %v", err)
			}
			if l.Kind != tt.kind || l.Unified != tt.unified {
				t.Errorf("kind, unified = %s, %q; want %s, %q", l.Kind, l.Unified, tt.kind, tt.unified)
			}
			if !mapsEqual(l.V1, tt.v1) {
				t.Errorf("V1 = %v; want %v", l.V1, tt.v1)
			}
			if !slices.Equal(l.Freezers, tt.freezers) || l.Freezer != tt.freezers[0] {
				t.Errorf("freezers = %v (default %s); want %v", l.Freezers, l.Freezer, tt.freezers)
			}
			if !strings.Contains(l.Reason, tt.reason) {
				t.Errorf("Reason = %q; want it to contain %q", l.Reason, tt.reason)
			}
		})
	}
}

func TestDetectLayoutGarbage(t *testing.T) {
	_, err := DetectLayout(strings.NewReader("1 2 3 / /sys rw\n"), "/sys/fs/cgroup")
	if !errors.Is(err, ErrMountinfo) {
		t.Fatalf("err = %v; want ErrMountinfo", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"scientist", true},
		{"miner-1.a_b", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"/", false},
		{"a b", false},
		{"über", false},
		{"a\x00b", false},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
	}
	for _, tt := range tests {
		err := validName(tt.name)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidName)) {
			t.Errorf("validName(%q) = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestCgroupStats(t *testing.T) {
	td := filepath.Join("testdata", "cgroup")
	hybrid := &cgroupSet{
		V1: map[string]string{
			"cpuacct": filepath.Join(td, "hybrid", "cpuacct", "cell"),
			"memory":  filepath.Join(td, "hybrid", "memory", "cell"),
			"pids":    filepath.Join(td, "hybrid", "pids", "cell"),
			"freezer": filepath.Join(td, "hybrid", "freezer", "cell"),
		},
		V2: filepath.Join(td, "hybrid", "unified", "cell"),
	}
	tests := []struct {
		name     string
		set      *cgroupSet
		want     Stats
		frozenV1 bool
		frozenV2 bool
		procs    []int
	}{
		{
			name: "hybrid", set: hybrid,
			want:     Stats{CPUTime: 1234567890 * time.Nanosecond, MemoryBytes: 52428800, PIDs: 7},
			frozenV1: true, frozenV2: false, procs: []int{101, 102},
		},
		{
			name:     "v2",
			set:      &cgroupSet{V2: filepath.Join(td, "v2", "cell")},
			want:     Stats{CPUTime: 2500 * time.Millisecond, MemoryBytes: 1 << 20, PIDs: 3},
			frozenV2: true, procs: []int{300},
		},
		{
			name:  "v2 without controllers",
			set:   &cgroupSet{V2: filepath.Join(td, "v2bare", "cell")},
			want:  Stats{CPUTime: 42 * time.Microsecond, PIDs: 3},
			procs: []int{400},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.set.stats()
			if err != nil || got != tt.want {
				t.Errorf("stats() = %+v, %v; want %+v", got, err, tt.want)
			}
			if tt.set.V1["freezer"] != "" {
				if f, err := tt.set.frozenV1(); err != nil || f != tt.frozenV1 {
					t.Errorf("frozenV1() = %v, %v; want %v", f, err, tt.frozenV1)
				}
			}
			if f, err := tt.set.frozenV2(); err != nil || f != tt.frozenV2 {
				t.Errorf("frozenV2() = %v, %v; want %v", f, err, tt.frozenV2)
			}
			procs, err := tt.set.procs()
			slices.Sort(procs)
			if err != nil || !slices.Equal(procs, tt.procs) {
				t.Errorf("procs() = %v, %v; want %v", procs, err, tt.procs)
			}
			for _, p := range tt.procs {
				if !tt.set.contains(p) {
					t.Errorf("contains(%d) = false", p)
				}
			}
			if tt.set.contains(1) {
				t.Error("contains(1) = true")
			}
		})
	}
}

func TestCgroupStatsGarbage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cpu.stat"), []byte("usage_usec lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&cgroupSet{V2: dir}).stats(); !errors.Is(err, ErrGarbage) {
		t.Errorf("stats() err = %v; want ErrGarbage", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu.stat"), []byte("user_usec 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&cgroupSet{V2: dir}).stats(); !errors.Is(err, ErrGarbage) {
		t.Errorf("stats() without usage_usec: err = %v; want ErrGarbage", err)
	}
}

func TestProcGroupFixture(t *testing.T) {
	pfs, err := procfs.NewFS(filepath.Join("testdata", "proc"))
	if err != nil {
		t.Fatal(err)
	}
	g := newProcGroup(filepath.Join("testdata", "proc"), pfs, 100)
	pids, err := g.members()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(pids)
	if !slices.Equal(pids, []int{100, 101}) {
		t.Errorf("members = %v; want [100 101] (103 is a zombie, 200 another group)", pids)
	}
	for pid, want := range map[int]bool{100: true, 101: true, 103: false, 200: false, 999: false} {
		if got := g.contains(pid); got != want {
			t.Errorf("contains(%d) = %v; want %v", pid, got, want)
		}
	}
	st, err := g.stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{
		CPUTime:     (300 + 100 + 50 + 50 + 200) * 10 * time.Millisecond,
		MemoryBytes: uint64(1500 * os.Getpagesize()),
		PIDs:        3,
		Frozen:      false, // 100 is sleeping
	}
	if st != want {
		t.Errorf("stats = %+v; want %+v", st, want)
	}
	if ok, err := g.allThreads([]int{101, 103}, isStopped); err != nil || !ok {
		t.Errorf("allThreads(101, 103 stopped) = %v, %v; want true", ok, err)
	}
	if ok, err := g.allThreads([]int{100, 101}, isStopped); err != nil || ok {
		t.Errorf("allThreads(100, 101 stopped) = %v, %v; want false", ok, err)
	}
}

func TestReadTaskStat(t *testing.T) {
	tests := []struct {
		path string
		want taskStat
	}{
		{"proc/100/stat", taskStat{state: 'S', pgrp: 100}},
		{"proc/101/stat", taskStat{state: 'T', pgrp: 100}}, // comm "my prog) x"
		{"proc/101/task/102/stat", taskStat{state: 'T', pgrp: 100}},
		{"proc/103/stat", taskStat{state: 'Z', pgrp: 100}},
		{"proc/200/stat", taskStat{state: 'R', pgrp: 200}},
	}
	for _, tt := range tests {
		got, err := readTaskStat(filepath.Join("testdata", tt.path))
		if err != nil || got != tt.want {
			t.Errorf("readTaskStat(%s) = %+v, %v; want %+v", tt.path, got, err, tt.want)
		}
	}
	dir := t.TempDir()
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 abc", "1 (x) S"} {
		p := filepath.Join(dir, "stat")
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readTaskStat(p); !errors.Is(err, ErrGarbage) {
			t.Errorf("readTaskStat(%q) err = %v; want ErrGarbage", bad, err)
		}
	}
	if _, err := readTaskStat(filepath.Join(dir, "nope")); !gone(err) {
		t.Errorf("missing file: err = %v; want it to count as gone", err)
	}
}

func TestReadGuardMsgs(t *testing.T) {
	in := `{"op":"add","name":"a","cgroups":{"v1":{"freezer":"/c/freezer/m/a"},"v2":"/c/unified/m/a"}}
not json
{"op":"add","name":"b","pgid":42}
{"op":"add"}
{"op":"del","name":"a"}
`
	var got []guardMsg
	readGuardMsgs(strings.NewReader(in), func(m guardMsg) { got = append(got, m) })
	if len(got) != 3 {
		t.Fatalf("got %d messages; want 3: %+v", len(got), got)
	}
	if got[0].Cgroups == nil || got[0].Cgroups.V1["freezer"] != "/c/freezer/m/a" || got[0].Cgroups.V2 != "/c/unified/m/a" {
		t.Errorf("first message = %+v", got[0])
	}
	if got[1].PGID != 42 || got[2].Op != "del" {
		t.Errorf("messages = %+v", got)
	}
}
