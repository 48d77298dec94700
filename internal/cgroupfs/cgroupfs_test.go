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
