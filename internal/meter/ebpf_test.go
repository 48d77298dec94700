package meter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(workloadEnv); role != "" {
		os.Exit(workloadMain(role))
	}
	os.Exit(m.Run())
}

// needEBPF skips t where the host cannot run the meter at all: not root,
// or no kernel BTF. Everywhere else the meter must work.
func needEBPF(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the eBPF meter needs root (CAP_BPF and CAP_PERFMON)")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skipf("kernel has no BTF (CONFIG_DEBUG_INFO_BTF): %v", err)
	}
}

// openAttach opens the meter with attachment a. fentry may be missing
// from a kernel (no BPF trampolines, or refused): the test skips with the
// kernel's answer. The other two must work on any host with root and BTF.
func openMeter(t *testing.T, a Attach) *EBPF {
	t.Helper()
	m, err := OpenEBPF(EBPFOptions{Order: []Attach{a}})
	if err != nil {
		if a == AttachFentry {
			t.Skipf("fentry unavailable on this kernel: %v", err)
		}
		t.Fatalf("OpenEBPF(%s): %v", a, err)
	}
	t.Cleanup(func() { m.Close() })
	if got, want := m.Source().Kind, a.source(); got != want {
		t.Fatalf("Source().Kind = %q, want %q", got, want)
	}
	return m
}

// testCgroup makes a cgroup2 directory for the test and returns its path
// and id; it is removed at cleanup.
func testCgroup(t *testing.T, name string) (string, uint64) {
	t.Helper()
	v2 := V2Root("/sys/fs/cgroup")
	if v2 == "" {
		t.Skip("no cgroup2 hierarchy mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified: the meter keys on cgroup2 ids")
	}
	dir := filepath.Join(v2, fmt.Sprintf("maxwell-meter-test-%d-%s", os.Getpid(), name))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("could not remove %s", dir)
	})
	return dir, inode(dir)
}

// workload is a running workload process.
type workload struct {
	cmd      *exec.Cmd
	ctl      *os.File
	status   *os.File
	children bool
}

// startWorkload starts the workload in cgroup dir and waits until it is
// ready (its threads and its child are up, none has freed anything yet).
func startWorkload(t *testing.T, dir string, withChild bool) *workload {
	t.Helper()
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	role := "solo"
	if withChild {
		role = "main"
	}
	cmd := exec.Command(os.Args[0])
	// GOGC=off keeps the workload's Go runtime from returning memory
	// to the kernel by itself while it runs.
	cmd.Env = append(os.Environ(), workloadEnv+"="+role, "GOGC=off")
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{ctlR, stW}
	cmd.SysProcAttr = &syscallSysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting workload in %s: %v", dir, err)
	}
	ctlR.Close()
	stW.Close()
	w := &workload{cmd: cmd, ctl: ctlW, status: stR, children: withChild}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		ctlW.Close()
		stR.Close()
	})
	if b, err := readByte(stR); err != nil || b != 'R' {
		t.Fatalf("workload not ready: %q, %v", b, err)
	}
	return w
}

// run lets the workload free its memory and waits until it is done.
func (w *workload) run(t *testing.T) {
	t.Helper()
	if _, err := w.ctl.Write([]byte{'G'}); err != nil {
		t.Fatal(err)
	}
	if b, err := readByte(w.status); err != nil || b != 'D' {
		t.Fatalf("workload did not finish: %q, %v", b, err)
	}
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("workload: %v", err)
	}
}

func diffCounts(got, want Counts) string {
	var d []string
	for k := range NumKinds {
		if got.Calls[k] != want.Calls[k] || got.Bytes[k] != want.Bytes[k] {
			d = append(d, fmt.Sprintf("%s: got %d calls %d bytes, want %d calls %d bytes", k, got.Calls[k], got.Bytes[k], want.Calls[k], want.Bytes[k]))
		}
	}
	if got.Unattributed != want.Unattributed {
		d = append(d, fmt.Sprintf("unattributed: got %d, want %d", got.Unattributed, want.Unattributed))
	}
	return strings.Join(d, "\n")
}

// TestExactCounts runs a workload that frees a known number of bytes
// through each counted syscall, from several threads and a child process,
// next to a second workload in another cgroup, and checks each meter's
// totals exactly: one meter watches only the first cell, a second
// (standing for a second Maxwell on the host) watches both.
func TestExactCounts(t *testing.T) {
	needEBPF(t)
	if raceEnabled {
		t.Skip("under -race the workload (this test binary) runs the race detector's runtime, which itself munmaps and madvises shadow memory: exact counts are checked without -race")
	}
	page := uint64(os.Getpagesize())
	for _, a := range DefaultOrder {
		t.Run(string(a), func(t *testing.T) {
			first := openMeter(t, a)
			second := openMeter(t, a)
			cellDir, cellID := testCgroup(t, "cell")
			otherDir, otherID := testCgroup(t, "other")
			if err := first.Watch(cellID); err != nil {
				t.Fatal(err)
			}
			for _, id := range []uint64{cellID, otherID} {
				if err := second.Watch(id); err != nil {
					t.Fatal(err)
				}
			}
			cell := startWorkload(t, cellDir, true)
			other := startWorkload(t, otherDir, false)
			before1, err := first.Read()
			if err != nil {
				t.Fatal(err)
			}
			before2, err := second.Read()
			if err != nil {
				t.Fatal(err)
			}
			cell.run(t)
			other.run(t)
			// This test process, outside both cells, frees memory too.
			if err := threadPlan(uintptr(page)); err != nil {
				t.Fatal(err)
			}
			after1, err := first.Read()
			if err != nil {
				t.Fatal(err)
			}
			after2, err := second.Read()
			if err != nil {
				t.Fatal(err)
			}

			if _, ok := after1[otherID]; ok {
				t.Errorf("first meter reports cgroup %d, which it does not watch", otherID)
			}
			if len(after1) != 1 {
				t.Errorf("first meter reports %d cgroups, want 1", len(after1))
			}
			if d := diffCounts(after1[cellID].Sub(before1[cellID]), expected(page, true)); d != "" {
				t.Errorf("first meter, cell with threads and child:\n%s", d)
			}
			if d := diffCounts(after2[cellID].Sub(before2[cellID]), expected(page, true)); d != "" {
				t.Errorf("second meter, cell:\n%s", d)
			}
			if d := diffCounts(after2[otherID].Sub(before2[otherID]), expected(page, false)); d != "" {
				t.Errorf("second meter, other cell:\n%s", d)
			}
			if got, want := after1[cellID].Sub(before1[cellID]).FreedBytes(), expected(page, true).FreedBytes(); got != want {
				t.Errorf("FreedBytes = %d, want %d", got, want)
			}

			if err := second.Unwatch(otherID); err != nil {
				t.Fatal(err)
			}
			r, err := second.Read()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := r[otherID]; ok {
				t.Errorf("Read after Unwatch still reports cgroup %d", otherID)
			}
		})
	}
}

// TestCloseLeavesNothing checks that Close detaches and unloads every
// program: their kernel ids disappear.
func TestCloseLeavesNothing(t *testing.T) {
	needEBPF(t)
	for _, a := range DefaultOrder {
		t.Run(string(a), func(t *testing.T) {
			m := openMeter(t, a)
			ids := m.programIDs()
			if len(ids) != len(attachPoints[a]) {
				t.Fatalf("%d programs loaded, want %d", len(ids), len(attachPoints[a]))
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := m.Read(); !errors.Is(err, ErrClosed) {
				t.Errorf("Read after Close: %v, want ErrClosed", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, id := range ids {
				for {
					p, err := ebpf.NewProgramFromID(id)
					if err != nil {
						break // gone
					}
					p.Close()
					if ctx.Err() != nil {
						t.Fatalf("program %d still loaded 5 s after Close", id)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
}

// TestWatchFull checks that watching more cgroups than the meter holds
// fails with ErrFull, and that a freed slot can be used again.
func TestWatchFull(t *testing.T) {
	needEBPF(t)
	m, err := OpenEBPF(EBPFOptions{Order: []Attach{AttachTPBTF, AttachTracepoint}, Cells: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, id := range []uint64{101, 102} {
		if err := m.Watch(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Watch(101); err != nil {
		t.Errorf("watching a watched cgroup again: %v", err)
	}
	if err := m.Watch(103); !errors.Is(err, ErrFull) {
		t.Fatalf("third Watch: %v, want ErrFull", err)
	}
	if err := m.Unwatch(101); err != nil {
		t.Fatal(err)
	}
	if err := m.Unwatch(101); !errors.Is(err, ErrNotWatched) {
		t.Errorf("second Unwatch: %v, want ErrNotWatched", err)
	}
	if err := m.Watch(103); err != nil {
		t.Fatalf("Watch after Unwatch: %v", err)
	}
	if err := m.Watch(0); err == nil {
		t.Error("Watch(0) succeeded")
	}
}

// TestUnavailable checks the clear errors, and Open's fallback, where the
// eBPF meter cannot work: no kernel BTF, no tracefs and not allowed to
// mount it.
func TestUnavailable(t *testing.T) {
	noBTF := t.TempDir()
	tests := []struct {
		name string
		opts EBPFOptions
		want string
	}{
		{"no BTF", EBPFOptions{SysRoot: noBTF}, "kernel BTF (CONFIG_DEBUG_INFO_BTF) not found"},
		{"no attachment", EBPFOptions{Order: []Attach{}}, "no attachment to try"},
		{"bad cells", EBPFOptions{Cells: MaxCells + 1}, "out of range"},
	}
	if os.Geteuid() == 0 {
		if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
			// A sysfs root with the host's BTF but no tracefs.
			sys := t.TempDir()
			if err := os.MkdirAll(filepath.Join(sys, "kernel", "btf"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/sys/kernel/btf/vmlinux", filepath.Join(sys, "kernel", "btf", "vmlinux")); err != nil {
				t.Fatal(err)
			}
			tests = append(tests, struct {
				name string
				opts EBPFOptions
				want string
			}{"no tracefs", EBPFOptions{SysRoot: sys, Order: []Attach{AttachTracepoint}, NoMountTracefs: true}, "tracefs is not mounted at " + filepath.Join(sys, "kernel", "tracing")})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := OpenEBPF(tt.opts)
			if err == nil {
				m.Close()
				t.Fatal("OpenEBPF succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			fb := Open(Options{EBPF: tt.opts, Accounting: AccountingOptions{CgroupRoot: t.TempDir()}})
			defer fb.Close()
			src := fb.Source()
			if src.Kind != SourceAccounting || !src.Estimated {
				t.Fatalf("fallback Source = %+v", src)
			}
			if !strings.Contains(src.String(), ApproximateNote) || !strings.Contains(src.String(), tt.want) {
				t.Errorf("fallback Source %q does not say %q and why", src, ApproximateNote)
			}
		})
	}
}
