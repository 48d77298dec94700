package cell

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"

	"golang.org/x/sys/unix"
)

var parentSeq atomic.Int32

// testParent returns a Parent name no other test (or test binary) uses.
func testParent() string {
	return fmt.Sprintf("mxtest-%d-%d", os.Getpid(), parentSeq.Add(1))
}

// newManager returns a Manager on the real host under a fresh Parent,
// closed (and checked to have removed its Parent) at the end of the test.
func newManager(t *testing.T, freezer FreezerKind) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: cells create cgroups")
	}
	opts := DefaultOptions()
	opts.Parent = testParent()
	opts.Freezer = freezer
	m, err := NewManager(opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Manager.Close: %v", err)
		}
		for _, d := range m.parent.dirs() {
			if cgroupfs.Exists(d) {
				t.Errorf("Manager.Close left %s behind", d)
				os.Remove(d)
			}
		}
	})
	return m
}

// requireFreezer skips the test if the host offers no freezer fz.
func requireFreezer(t *testing.T, m *Manager, fz FreezerKind) {
	t.Helper()
	if !slices.Contains(m.Layout().Freezers, fz) {
		t.Skipf("host offers no %s freezer: %s", fz, m.Layout())
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// spinSpec is a cell running the test binary in spin mode.
func spinSpec(t *testing.T, name string, fz FreezerKind, cpus ...int) Spec {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		Name: name, Path: exe, Freezer: fz, CPUs: cpus,
		Env: append(os.Environ(), roleEnv+"="+roleSpin),
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(m *Manager, pid int) bool {
	p, err := m.pfs.Proc(pid)
	if err != nil {
		return false
	}
	st, err := p.Stat()
	return err == nil && st.State != "Z" && st.State != "X"
}

func TestHostLayout(t *testing.T) {
	m := newManager(t, FreezerAuto)
	f, err := os.Open(filepath.Join(m.opts.ProcRoot, "self", "mountinfo"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mounted, err := DetectLayout(f, m.opts.CgroupRoot)
	if err != nil {
		t.Fatal(err)
	}
	l := m.Layout()
	t.Logf("%s", l)
	if l.Kind != mounted.Kind {
		t.Errorf("as root, layout %s fell back from mounted %s: %s", l.Kind, mounted.Kind, l.Reason)
	}
	if l.Kind == LayoutHybrid && !slices.Equal(l.Freezers, []FreezerKind{FreezerV2, FreezerV1, FreezerSignal}) {
		t.Errorf("hybrid host freezers = %v; want v2, v1, signal", l.Freezers)
	}
	for _, d := range m.parent.dirs() {
		if !cgroupfs.Exists(d) {
			t.Errorf("parent cgroup %s not created", d)
		}
	}
}

func TestLayoutFallsBackWhenNotWritable(t *testing.T) {
	dir := t.TempDir()
	// A "cgroup2 mount" that is a plain file: nothing can be created in it.
	cg := filepath.Join(dir, "cgroup")
	if err := os.WriteFile(cg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	proc := filepath.Join(dir, "proc")
	if err := os.MkdirAll(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	mi := fmt.Sprintf("27 22 0:26 / %s rw,nosuid - cgroup2 cgroup2 rw\n", cg)
	if err := os.WriteFile(filepath.Join(proc, "self", "mountinfo"), []byte(mi), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(Options{CgroupRoot: cg, ProcRoot: proc, Parent: "maxwell"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l := m.Layout()
	if l.Kind != LayoutNone || l.Freezer != FreezerSignal || l.Backend() != "signal" {
		t.Errorf("layout = %+v; want the signal fallback", l)
	}
	if !strings.Contains(l.Reason, "not writable") || !strings.Contains(l.Reason, "falling back to process-group signals") {
		t.Errorf("Reason = %q; want it to say cgroups are not writable and what it falls back to", l.Reason)
	}
	if _, err := NewManager(Options{CgroupRoot: cg, ProcRoot: proc, Freezer: FreezerV1}); !errors.Is(err, ErrFreezerUnavailable) {
		t.Errorf("NewManager(freezer v1) err = %v; want ErrFreezerUnavailable", err)
	}
}

// TestPauseStopsCPU runs a busy two-thread cell pinned to CPU 0 under each
// freezer, and checks through Stats that its CPU time stands still while
// paused and moves again once resumed.
func TestPauseStopsCPU(t *testing.T) {
	m := newManager(t, FreezerAuto)
	for _, fz := range []FreezerKind{FreezerV1, FreezerV2, FreezerSignal} {
		t.Run(string(fz), func(t *testing.T) {
			requireFreezer(t, m, fz)
			ctx := testCtx(t)
			c, err := m.Start(ctx, spinSpec(t, "busy-"+string(fz), fz, 0))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			if c.Freezer() != fz {
				t.Errorf("Freezer() = %s; want %s", c.Freezer(), fz)
			}
			waitCPU(t, ctx, c, 50*time.Millisecond)
			checkPinned(t, m, c.PID(), 0)

			if err := c.Pause(ctx); err != nil {
				t.Fatalf("Pause: %v", err)
			}
			s1 := stats(t, c)
			time.Sleep(200 * time.Millisecond)
			s2 := stats(t, c)
			if !s1.Frozen || !s2.Frozen {
				t.Errorf("Frozen = %v, %v while paused; want true", s1.Frozen, s2.Frozen)
			}
			if s2.CPUTime != s1.CPUTime {
				t.Errorf("CPU time moved while paused: %v -> %v", s1.CPUTime, s2.CPUTime)
			}

			if err := c.Resume(ctx); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
			s3 := stats(t, c)
			if s3.Frozen {
				t.Error("Frozen = true after Resume")
			}
			if s3.CPUTime <= s2.CPUTime {
				t.Errorf("CPU time stood still after Resume: %v -> %v", s2.CPUTime, s3.CPUTime)
			}
			if s3.PIDs < 2 {
				t.Errorf("PIDs = %d; want at least 2 threads", s3.PIDs)
			}
		})
	}
}

func stats(t *testing.T, c Cell) Stats {
	t.Helper()
	s, err := c.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// waitCPU waits until the cell has used at least d of CPU time.
func waitCPU(t *testing.T, ctx context.Context, c Cell, d time.Duration) {
	t.Helper()
	err := cgroupfs.Poll(ctx, func() (bool, error) {
		s, err := c.Stats()
		return s.CPUTime >= d, err
	})
	if err != nil {
		t.Fatalf("cell never used %v of CPU: %v", d, err)
	}
}

// checkPinned checks every thread of pid may run on cpu only.
func checkPinned(t *testing.T, m *Manager, pid, cpu int) {
	t.Helper()
	threads, err := m.pfs.AllThreads(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range threads {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(th.PID, &set); err != nil {
			t.Fatal(err)
		}
		if set.Count() != 1 || !set.IsSet(cpu) {
			t.Errorf("thread %d of %d may run on %d CPUs; want only CPU %d", th.PID, pid, set.Count(), cpu)
		}
	}
}

// lineWriter sends every line written to it on a channel; it is not an
// *os.File, so it exercises the manager's output copying.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.lines <- strings.TrimSpace(line)
	}
}

func nextLine(t *testing.T, ctx context.Context, ch <-chan string) string {
	t.Helper()
	select {
	case l := <-ch:
		return l
	case <-ctx.Done():
		t.Fatalf("no output from cell: %v", ctx.Err())
	}
	return ""
}

func TestKillContainsClose(t *testing.T) {
	m := newManager(t, FreezerAuto)
	for _, fz := range []FreezerKind{m.Layout().Freezer, FreezerSignal} {
		t.Run(string(fz), func(t *testing.T) {
			ctx := testCtx(t)
			w := &lineWriter{lines: make(chan string, 16)}
			c, err := m.Start(ctx, Spec{Name: "k", Path: "sh", Args: []string{"-c", "sleep 1000 & echo $!; wait"}, Stdout: w, Freezer: fz})
			if err != nil {
				t.Fatal(err)
			}
			child, err := strconv.Atoi(nextLine(t, ctx, w.lines))
			if err != nil {
				t.Fatal(err)
			}
			if !c.Contains(child) || !c.Contains(c.PID()) {
				t.Errorf("Contains(child %d) = %v, Contains(main %d) = %v; want true", child, c.Contains(child), c.PID(), c.Contains(c.PID()))
			}
			if c.Contains(os.Getpid()) {
				t.Error("Contains(test process) = true")
			}
			if s := stats(t, c); s.PIDs < 2 || s.Frozen {
				t.Errorf("Stats = %+v; want 2 tasks or more, not frozen", s)
			}
			var dirs []string
			if fz == FreezerSignal {
				if c.Backend() != "signal" || c.CgroupID() != 0 {
					t.Errorf("Backend, CgroupID = %s, %d; want signal, 0", c.Backend(), c.CgroupID())
				}
			} else {
				cc := c.(*cell)
				dirs = cc.cg.dirs()
				if c.Backend() != m.Layout().Backend() {
					t.Errorf("Backend = %s; want %s", c.Backend(), m.Layout().Backend())
				}
				if cc.cg.V2 != "" {
					id, err := cgroupID(cc.cg.V2)
					if err != nil || id == 0 || c.CgroupID() != id {
						t.Errorf("CgroupID = %d; want inode %d of %s (%v)", c.CgroupID(), id, cc.cg.V2, err)
					}
				}
			}

			if err := c.Kill(ctx); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			select {
			case <-c.Done():
			default:
				t.Error("Done not closed after Kill")
			}
			var ee *exec.ExitError
			if err := c.Wait(ctx); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Errorf("Wait = %v; want killed by SIGKILL", err)
			}
			if err := cgroupfs.Poll(ctx, func() (bool, error) { return !alive(m, child), nil }); err != nil {
				t.Errorf("child %d still alive after Kill", child)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			for _, d := range dirs {
				if cgroupfs.Exists(d) {
					t.Errorf("Close left %s behind", d)
				}
			}
			// The name is free again.
			c2, err := m.Start(ctx, Spec{Name: "k", Path: "true", Freezer: fz})
			if err != nil {
				t.Fatalf("restarting a closed cell's name: %v", err)
			}
			if err := c2.Wait(ctx); err != nil {
				t.Errorf("true: %v", err)
			}
			if err := c2.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestJoinsBeforeExec checks that the command's very first instruction
// runs inside the cell: the command itself reads its own cgroups and CPU
// affinity.
func TestJoinsBeforeExec(t *testing.T) {
	m := newManager(t, FreezerAuto)
	if m.Layout().Kind == LayoutNone {
		t.Skipf("no cgroups: %s", m.Layout())
	}
	ctx := testCtx(t)
	allowed, err := m.allowedCPUs(false)
	if err != nil {
		t.Fatal(err)
	}
	cpu := allowed[len(allowed)-1]
	var out bytes.Buffer
	c, err := m.Start(ctx, Spec{
		Name: "self", Path: "cat", CPUs: []int{cpu}, Stdout: &out,
		Args: []string{filepath.Join(m.opts.ProcRoot, "self", "cgroup"), filepath.Join(m.opts.ProcRoot, "self", "status")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("cat: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	want := "/" + m.opts.Parent + "/self\n"
	var inV2 bool
	inV1 := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			if got := strings.TrimSpace(v); got != strconv.Itoa(cpu) {
				t.Errorf("Cpus_allowed_list = %q; want %d", got, cpu)
			}
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasSuffix(parts[2]+"\n", want) {
			continue
		}
		if parts[0] == "0" {
			inV2 = true
		}
		for _, c := range strings.Split(parts[1], ",") {
			inV1[c] = true
		}
	}
	if m.layout.Unified != "" && !inV2 {
		t.Errorf("command did not start in its v2 cgroup:\n%s", text)
	}
	for c := range m.layout.V1 {
		if !inV1[c] {
			t.Errorf("command did not start in its %s cgroup:\n%s", c, text)
		}
	}
	if !strings.Contains(text, "Cpus_allowed_list:") {
		t.Errorf("no Cpus_allowed_list in output:\n%s", text)
	}
}

func TestExitStatus(t *testing.T) {
	m := newManager(t, FreezerAuto)
	ctx := testCtx(t)
	c, err := m.Start(ctx, Spec{Name: "exit3", Path: "sh", Args: []string{"-c", "exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ee *exec.ExitError
	if err := c.Wait(ctx); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Wait = %v; want exit status 3", err)
	}
	// A signal cell whose processes are all gone has nothing to pause.
	s, err := m.Start(ctx, Spec{Name: "gone", Path: "true", Freezer: FreezerSignal})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(ctx); !errors.Is(err, ErrExited) {
		t.Errorf("Pause of an exited signal cell: %v; want ErrExited", err)
	}
}

func TestStartErrors(t *testing.T) {
	m := newManager(t, FreezerAuto)
	ctx := testCtx(t)
	dup, err := m.Start(ctx, Spec{Name: "dup", Path: "sleep", Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer dup.Close()

	notExec := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(notExec, []byte("\x00\x01 not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	leftover := ""
	if m.layout.Kind != LayoutNone {
		leftover = m.cellSet("leftover").dirs()[0]
		if err := os.Mkdir(leftover, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(leftover)
	}

	tests := []struct {
		name string
		spec Spec
		want error
		msg  string
	}{
		{"empty name", Spec{Path: "true"}, ErrInvalidName, ""},
		{"slash", Spec{Name: "a/b", Path: "true"}, ErrInvalidName, ""},
		{"dotdot", Spec{Name: "..", Path: "true"}, ErrInvalidName, ""},
		{"duplicate", Spec{Name: "dup", Path: "true"}, ErrExists, ""},
		{"no such file", Spec{Name: "x", Path: "/nonexistent/bin/prog"}, fs.ErrNotExist, ""},
		{"not in PATH", Spec{Name: "x", Path: "no-such-command-maxwell"}, exec.ErrNotFound, ""},
		{"exec fails in shim", Spec{Name: "x", Path: notExec}, nil, "exec format error"},
		{"cpu out of range", Spec{Name: "x", Path: "true", CPUs: []int{0, 4096}}, ErrInvalidCPU, "4096"},
		{"negative cpu", Spec{Name: "x", Path: "true", CPUs: []int{-1}}, ErrInvalidCPU, ""},
		{"signal cpu out of range", Spec{Name: "x", Path: "true", CPUs: []int{4096}, Freezer: FreezerSignal}, ErrInvalidCPU, ""},
		{"bogus freezer", Spec{Name: "x", Path: "true", Freezer: "bogus"}, ErrFreezerUnavailable, ""},
		{"no such dir", Spec{Name: "x", Path: "true", Dir: "/nonexistent/dir"}, fs.ErrNotExist, ""},
	}
	if leftover != "" {
		tests = append(tests, struct {
			name string
			spec Spec
			want error
			msg  string
		}{"leftover cgroup", Spec{Name: "leftover", Path: "true"}, ErrExists, "Sweep"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := m.Start(ctx, tt.spec)
			if err == nil {
				c.Close()
				t.Fatal("Start succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v; want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q; want it to mention %q", err, tt.msg)
			}
			// Nothing left behind: only the dup cell (and the leftover
			// directory we made) in the parent cgroups, and in the map.
			for _, d := range m.parent.dirs() {
				ents, err := os.ReadDir(d)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					if e.IsDir() && e.Name() != "dup" && filepath.Join(d, e.Name()) != leftover {
						t.Errorf("left behind: %s", filepath.Join(d, e.Name()))
					}
				}
			}
			m.mu.Lock()
			n := len(m.cells)
			m.mu.Unlock()
			if n != 1 {
				t.Errorf("manager tracks %d cells; want 1", n)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	m := newManager(t, FreezerAuto)
	if m.Layout().Kind == LayoutNone {
		t.Skipf("no cgroups: %s", m.Layout())
	}
	ctx := testCtx(t)
	live, err := m.Start(ctx, Spec{Name: "live", Path: "sleep", Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	// A stale cell, as a crashed host without its guard leaves it:
	// directories, a process inside, frozen.
	stale := m.cellSet("stale")
	if err := m.makeCell("stale", stale, ""); err != nil {
		t.Fatal(err)
	}
	if err := m.guard.send(guardMsg{Op: "del", Name: "stale"}); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "1000")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	if err := stale.join(sleeper.Process.Pid); err != nil {
		sleeper.Process.Kill()
		t.Fatal(err)
	}
	switch m.Layout().Freezer {
	case FreezerV1:
		err = stale.freezeV1(ctx)
	case FreezerV2:
		err = stale.freezeV2(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}

	names, err := m.Sweep(ctx)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if !slices.Equal(names, []string{"stale"}) {
		t.Errorf("Sweep = %v; want [stale]", names)
	}
	select {
	case err := <-waited:
		if ws := sleeper.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
			t.Errorf("stale process ended with %v; want SIGKILL", err)
		}
	case <-ctx.Done():
		sleeper.Process.Kill()
		t.Fatal("stale process still alive after Sweep")
	}
	for _, d := range stale.dirs() {
		if cgroupfs.Exists(d) {
			t.Errorf("Sweep left %s", d)
		}
	}
	select {
	case <-live.Done():
		t.Error("Sweep killed the manager's own cell")
	default:
	}
	if !live.Contains(live.PID()) {
		t.Error("live cell lost its process")
	}
}

func TestManagerClose(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: cells create cgroups")
	}
	opts := DefaultOptions()
	opts.Parent = testParent()
	m, err := NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	c, err := m.Start(ctx, Spec{Name: "a", Path: "sleep", Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	guard := m.guard.cmd.Process.Pid
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("cell still running after Manager.Close")
	}
	if alive(m, guard) {
		t.Errorf("guard %d still alive after Manager.Close", guard)
	}
	for _, d := range m.parent.dirs() {
		if cgroupfs.Exists(d) {
			t.Errorf("Close left %s", d)
		}
	}
	if _, err := m.Start(ctx, Spec{Name: "b", Path: "true"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v; want ErrClosed", err)
	}
	if _, err := m.Sweep(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Sweep after Close: %v; want ErrClosed", err)
	}
}

// TestGuardCleansUpAfterHostSIGKILL runs the test binary as a fake host
// that starts a busy cell and pauses it, SIGKILLs the host, and checks
// that the guard thaws and kills the cell and removes its cgroups.
func TestGuardCleansUpAfterHostSIGKILL(t *testing.T) {
	m := newManager(t, FreezerAuto) // only to learn the layout
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, fz := range m.Layout().Freezers {
		t.Run(string(fz), func(t *testing.T) {
			ctx := testCtx(t)
			parent := testParent()
			host := exec.Command(exe)
			host.Env = append(os.Environ(), roleEnv+"="+roleFakeHost, parentEnv+"="+parent, freezerEnv+"="+string(fz))
			var stderr bytes.Buffer
			host.Stderr = &stderr
			out, err := host.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := host.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				// Remove the fake host's parent cgroups.
				for _, d := range m.parent.dirs() {
					os.Remove(filepath.Join(filepath.Dir(d), parent))
				}
			}()
			lines := make(chan string, 1)
			go func() {
				l, _ := bufio.NewReader(out).ReadString('\n')
				lines <- l
			}()
			var r fakeHostReport
			select {
			case l := <-lines:
				if err := json.Unmarshal([]byte(l), &r); err != nil {
					host.Process.Kill()
					host.Wait()
					t.Fatalf("fake host said %q (%v); stderr:\n%s", l, err, stderr.String())
				}
			case <-ctx.Done():
				host.Process.Kill()
				host.Wait()
				t.Fatalf("fake host never reported; stderr:\n%s", stderr.String())
			}
			if r.Error != "" {
				host.Wait()
				t.Fatalf("fake host: %s", r.Error)
			}
			// The cell is paused right now.
			for _, pid := range r.PIDs {
				if fz == FreezerSignal {
					st := procState(m, pid)
					if st != "T" {
						t.Errorf("pid %d in state %q before the host died; want T", pid, st)
					}
				}
			}
			for _, d := range r.Dirs {
				if filepath.Base(filepath.Dir(filepath.Dir(d))) == "freezer" && fz == FreezerV1 {
					if st, _ := cgroupfs.ReadString(filepath.Join(d, "freezer.state")); st != v1Frozen {
						t.Errorf("freezer.state = %q before the host died; want FROZEN", st)
					}
				}
			}

			if err := host.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			host.Wait()

			err = cgroupfs.Poll(ctx, func() (bool, error) {
				for _, pid := range r.PIDs {
					if alive(m, pid) {
						return false, nil
					}
				}
				for _, d := range r.Dirs {
					if cgroupfs.Exists(d) {
						return false, nil
					}
				}
				return !alive(m, r.Guard), nil
			})
			if err != nil {
				for _, pid := range r.PIDs {
					t.Errorf("pid %d: state %q", pid, procState(m, pid))
				}
				for _, d := range r.Dirs {
					t.Errorf("dir %s exists: %v", d, cgroupfs.Exists(d))
				}
				t.Errorf("guard %d alive: %v", r.Guard, alive(m, r.Guard))
				t.Fatalf("cell not cleaned up after the host was SIGKILLed: %v; host stderr:\n%s", err, stderr.String())
			}
		})
	}
}

func procState(m *Manager, pid int) string {
	p, err := m.pfs.Proc(pid)
	if err != nil {
		return "gone"
	}
	st, err := p.Stat()
	if err != nil {
		return "gone"
	}
	return st.State
}

func BenchmarkPauseResume(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: cells create cgroups")
	}
	opts := DefaultOptions()
	opts.Parent = testParent()
	m, err := NewManager(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for _, fz := range m.Layout().Freezers {
		b.Run(string(fz), func(b *testing.B) {
			ctx := context.Background()
			c, err := m.Start(ctx, Spec{Name: "bench-" + string(fz), Path: exe, Freezer: fz, CPUs: []int{0}, Env: append(os.Environ(), roleEnv+"="+roleSpin)})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			for b.Loop() {
				if err := c.Pause(ctx); err != nil {
					b.Fatal(err)
				}
				if err := c.Resume(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPureV2 runs the pure cgroup v2 code paths on whatever cgroup2 mount
// the host has, by showing the manager a mountinfo in which that mount is
// the cgroup root. On a hybrid host this is the controller-less unified
// hierarchy: CPU time comes from cpu.stat, tasks from cgroup.threads,
// pausing from cgroup.freeze, killing from cgroup.kill.
func TestPureV2(t *testing.T) {
	host := newManager(t, FreezerAuto)
	unified := host.Layout().Unified
	if unified == "" {
		t.Skipf("no cgroup2 mounted: %s", host.Layout())
	}
	proc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	mi := fmt.Sprintf("41 31 0:38 / %s rw,relatime - cgroup2 cgroup2 rw\n", unified)
	if err := os.WriteFile(filepath.Join(proc, "self", "mountinfo"), []byte(mi), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(Options{CgroupRoot: unified, ProcRoot: proc, Parent: testParent()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if cgroupfs.Exists(m.parent.V2) {
			t.Errorf("Close left %s", m.parent.V2)
		}
	}()
	l := m.Layout()
	if l.Kind != LayoutV2 || l.Freezer != FreezerV2 {
		t.Fatalf("layout = %s; want pure v2 with the v2 freezer", l)
	}
	ctx := testCtx(t)
	c, err := m.Start(ctx, spinSpec(t, "v2", "", 0))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend() != "cgroup-v2" || c.CgroupID() == 0 {
		t.Errorf("Backend, CgroupID = %s, %d; want cgroup-v2 and an id", c.Backend(), c.CgroupID())
	}
	checkPinned(t, host, c.PID(), 0)
	waitCPU(t, ctx, c, 20*time.Millisecond)
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	s1 := stats(t, c)
	time.Sleep(200 * time.Millisecond)
	s2 := stats(t, c)
	if !s2.Frozen || s1.CPUTime != s2.CPUTime {
		t.Errorf("paused: %+v then %+v; want frozen, CPU time still", s1, s2)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if s3 := stats(t, c); s3.Frozen || s3.CPUTime <= s2.CPUTime || s3.PIDs < 2 {
		t.Errorf("resumed: %+v after %+v; want running, with the spinner's threads", s3, s2)
	}
	dir := c.(*cell).cg.V2
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if cgroupfs.Exists(dir) {
		t.Errorf("Close left %s", dir)
	}
}

// TestKillWithoutCgroupKill exercises the freeze, signal, thaw loop used
// where there is no cgroup.kill (v1-only hosts), on a frozen v1 cgroup
// holding a forking shell.
func TestKillWithoutCgroupKill(t *testing.T) {
	m := newManager(t, FreezerAuto)
	if m.parent.V1["freezer"] == "" {
		t.Skipf("no v1 freezer: %s", m.Layout())
	}
	ctx := testCtx(t)
	s := m.cellSet("nokill")
	s.V2 = ""
	if err := m.makeCell("nokill", s, ""); err != nil {
		t.Fatal(err)
	}
	defer m.guard.send(guardMsg{Op: "del", Name: "nokill"})
	sh := exec.Command("sh", "-c", "while :; do sleep 1 & sleep 0.01; done")
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { sh.Wait(); close(waited) }()
	if err := s.join(sh.Process.Pid); err != nil {
		sh.Process.Kill()
		t.Fatal(err)
	}
	if err := s.freezeV1(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.kill(ctx); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if pids, err := s.procs(); err != nil || len(pids) != 0 {
		t.Errorf("procs after kill = %v, %v; want none", pids, err)
	}
	select {
	case <-waited:
	case <-ctx.Done():
		t.Fatal("shell not dead")
	}
	if err := s.remove(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOneManagerPerParent: a second manager on a parent another holds is
// refused with ErrParentBusy, naming the holder; once the first closes, the
// parent is free again.
func TestOneManagerPerParent(t *testing.T) {
	m := newManager(t, FreezerAuto)
	opts := DefaultOptions()
	opts.Parent = m.opts.Parent
	_, err := NewManager(opts)
	if !errors.Is(err, ErrParentBusy) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("a second manager on %s: %v, want ErrParentBusy naming process %d", opts.Parent, err, os.Getpid())
	}
	other := DefaultOptions()
	other.Parent = testParent()
	m2, err := NewManager(other)
	if err != nil {
		t.Fatalf("a manager on another parent: %v", err)
	}
	m2.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m3, err := NewManager(opts)
	if err != nil {
		t.Fatalf("the parent is not free after Close: %v", err)
	}
	m3.Close()
}

// TestCredential: a cell with a Credential runs as that user and those
// groups only (not the manager's root), enters its directory as that user,
// and a relative command is taken from that directory; a directory the user
// may not enter fails the start and leaves no cell.
func TestCredential(t *testing.T) {
	m := newManager(t, FreezerAuto)
	ctx := testCtx(t)
	open, err := os.MkdirTemp("", "mxcred-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(open, "whoami.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$(id -u) $(id -g) $(id -G) $(pwd)\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var c Cell
	cred := &syscall.Credential{Uid: 65534, Gid: 65533, Groups: []uint32{65532}}
	c, err = m.Start(ctx, Spec{Name: "nobody", Path: "./whoami.sh", Dir: open, Credential: cred, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("wait: %v", err)
	}
	c.Close()
	if got, want := strings.TrimSpace(out.String()), "65534 65533 65533 65532 "+open; got != want {
		t.Errorf("the cell saw %q, want %q", got, want)
	}

	private := t.TempDir() // 0700: nobody may not enter it
	_, err = m.Start(ctx, Spec{Name: "locked-out", Path: "/bin/true", Dir: private, Credential: cred})
	if err == nil || !strings.Contains(err.Error(), "working directory") {
		t.Fatalf("start in a directory the user may not enter: %v, want a working directory error", err)
	}
	for _, d := range m.cellSet("locked-out").dirs() {
		if cgroupfs.Exists(d) {
			t.Errorf("the failed start left %s", d)
		}
	}
}

func TestCredentialFormat(t *testing.T) {
	for _, c := range []*syscall.Credential{nil, {Uid: 1, Gid: 2, Groups: []uint32{}}, {Uid: 1000, Gid: 1000, Groups: []uint32{4, 27, 1000}}} {
		got, err := parseCredential(formatCredential(c))
		if err != nil || (c == nil) != (got == nil) || c != nil && (got.Uid != c.Uid || got.Gid != c.Gid || !slices.Equal(got.Groups, c.Groups)) {
			t.Errorf("round trip of %+v: %+v, %v", c, got, err)
		}
	}
	for _, bad := range []string{"1", "1:2", "x:2:", "1:2:3,y", "-1:2:", "1:2:3:4"} {
		if _, err := parseCredential(bad); err == nil {
			t.Errorf("parseCredential(%q) accepted it", bad)
		}
	}
}

// TestUsage: a cell's Usage (what the daemon reads every tick, through
// descriptors it keeps open) agrees with its Stats, and keeps moving with
// the cell's CPU time read after read.
func TestUsage(t *testing.T) {
	m := newManager(t, FreezerAuto)
	ctx := testCtx(t)
	c, err := m.Start(ctx, spinSpec(t, "usage", FreezerAuto))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitCPU(t, ctx, c, 50*time.Millisecond)
	u1, err := ReadUsage(c)
	if err != nil {
		t.Fatal(err)
	}
	s := stats(t, c)
	waitCPU(t, ctx, c, s.CPUTime+50*time.Millisecond)
	u2, err := ReadUsage(c)
	if err != nil {
		t.Fatal(err)
	}
	if u1.CPUTime <= 0 || u1.CPUTime > s.CPUTime || u2.CPUTime <= s.CPUTime {
		t.Errorf("usage %v, stats %v, usage again %v: want them in order", u1.CPUTime, s.CPUTime, u2.CPUTime)
	}
	if s.MemoryBytes > 0 && u2.MemoryBytes == 0 {
		t.Errorf("Stats says %d bytes of memory, Usage none", s.MemoryBytes)
	}
}
