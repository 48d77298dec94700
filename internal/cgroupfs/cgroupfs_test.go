package cgroupfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestReaders(t *testing.T) {
	dir := t.TempDir()
	put := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if v, err := ReadUint(put("memory.current", "4096\n")); err != nil || v != 4096 {
		t.Errorf("ReadUint = %d, %v", v, err)
	}
	if _, err := ReadUint(put("bad", "lots\n")); !errors.Is(err, ErrGarbage) {
		t.Errorf("ReadUint of garbage: %v", err)
	}
	stat := put("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
	if v, err := ReadKeyed(stat, "system_usec"); err != nil || v != 500 {
		t.Errorf("ReadKeyed = %d, %v", v, err)
	}
	if _, err := ReadKeyed(stat, "nr_periods"); !errors.Is(err, ErrGarbage) {
		t.Errorf("ReadKeyed of a missing key: %v", err)
	}
	if _, err := ReadKeyed(put("events", "frozen x\n"), "frozen"); !errors.Is(err, ErrGarbage) {
		t.Errorf("ReadKeyed of a bad value: %v", err)
	}
	if pids, err := ReadPIDs(put("cgroup.procs", "12\n345\n")); err != nil || !slices.Equal(pids, []int{12, 345}) {
		t.Errorf("ReadPIDs = %v, %v", pids, err)
	}
	if !HasProcess(dir, 345) || HasProcess(dir, 346) || HasProcess("", 345) || HasProcess(dir, 0) {
		t.Error("HasProcess")
	}
	if _, err := ReadPIDs(put("tasks", "12\nx\n")); !errors.Is(err, ErrGarbage) {
		t.Errorf("ReadPIDs of garbage: %v", err)
	}
	if !Exists(stat) || Exists(filepath.Join(dir, "nope")) {
		t.Error("Exists")
	}
	// Write never creates a file: cgroup control files exist or not.
	if err := Write(filepath.Join(dir, "cgroup.freeze"), "1"); err == nil {
		t.Error("Write created a control file")
	}
	f := put("cgroup.freeze", "0\n")
	if err := Write(f, "1"); err != nil {
		t.Fatal(err)
	}
	if s, _ := ReadString(f); s != "1" {
		t.Errorf("after Write: %q", s)
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if err := Poll(context.Background(), func() (bool, error) { n++; return n == 300, nil }); err != nil || n != 300 {
		t.Errorf("Poll = %v after %d calls", err, n)
	}
	boom := errors.New("boom")
	if err := Poll(context.Background(), func() (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("Poll error = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := Poll(ctx, func() (bool, error) { return false, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Poll past its deadline = %v", err)
	}
}

func TestReadUsage(t *testing.T) {
	tree := func(files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			p := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	// Hybrid: v1 accounting wins where it exists.
	h := tree(map[string]string{
		"cpuacct/c/cpuacct.usage":        "2500000000\n",
		"memory/c/memory.usage_in_bytes": "1048576\n",
		"pids/c/pids.current":            "3\n",
		"unified/c/cpu.stat":             "usage_usec 1\n",
		"unified/c/cgroup.threads":       "1\n",
	})
	u, err := ReadUsage(Dirs{CPUAcct: h + "/cpuacct/c", Memory: h + "/memory/c", PIDs: h + "/pids/c", V2: h + "/unified/c"})
	if err != nil || u != (Usage{CPUTime: 2500 * time.Millisecond, MemoryBytes: 1 << 20, Tasks: 3}) {
		t.Errorf("hybrid usage %+v, %v", u, err)
	}
	// A controller-less cgroup2 directory: CPU from cpu.stat, tasks from
	// cgroup.threads, no memory figure.
	v := tree(map[string]string{"c/cpu.stat": "usage_usec 1500\n", "c/cgroup.threads": "10\n11\n"})
	u, err = ReadUsage(Dirs{V2: v + "/c"})
	if err != nil || u != (Usage{CPUTime: 1500 * time.Microsecond, Tasks: 2}) {
		t.Errorf("bare v2 usage %+v, %v", u, err)
	}
	// Garbage is an error naming the figure.
	g := tree(map[string]string{"c/cpu.stat": "usage_usec many\n"})
	if _, err := ReadUsage(Dirs{V2: g + "/c"}); !errors.Is(err, ErrGarbage) {
		t.Errorf("garbage cpu.stat: %v", err)
	}
}
