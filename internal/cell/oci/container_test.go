package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/hub"
)

var parentSeq atomic.Int32

// newTestManager returns a Manager with a private state directory and a
// cgroup parent no other test binary uses; at the end of the test it is
// closed and checked to have left nothing behind.
func newTestManager(t *testing.T, mounts ...Mount) *Manager {
	t.Helper()
	if testRootFS == "" {
		t.Skip(skipReason)
	}
	opts := DefaultOptions()
	opts.RootFS = testRootFS
	opts.StateDir = t.TempDir()
	opts.Parent = fmt.Sprintf("mxoci-test-%d-%d", os.Getpid(), parentSeq.Add(1))
	opts.Mounts = mounts
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := NewManager(ctx, opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Manager.Close: %v", err)
		}
		assertNothingLeft(t, m)
	})
	return m
}

// assertNothingLeft checks that no container, bundle or cgroup of m
// remains, nor m's parent cgroups once m is closed.
func assertNothingLeft(t *testing.T, m *Manager) {
	t.Helper()
	for _, d := range []string{m.root, m.bundles} {
		if ents, _ := os.ReadDir(d); len(ents) > 0 {
			t.Errorf("%s still holds %v", d, ents)
		}
	}
	out, err := exec.Command(m.runtime, "--root", m.root, "list", "-q").CombinedOutput()
	if err != nil {
		t.Errorf("runc list: %v: %s", err, out)
	} else if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("runc list still shows %q", s)
	}
	parents := []string{filepath.Join(m.opts.CgroupRoot, m.opts.Parent)}
	ents, _ := os.ReadDir(m.opts.CgroupRoot)
	for _, e := range ents {
		parents = append(parents, filepath.Join(m.opts.CgroupRoot, e.Name(), m.opts.Parent))
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	for _, p := range parents {
		if closed {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("cgroup %s left behind", p)
				os.Remove(p)
			}
			continue
		}
		if ents, _ := os.ReadDir(p); len(ents) > 0 {
			for _, e := range ents {
				if e.IsDir() {
					t.Errorf("cgroup %s/%s left behind", p, e.Name())
				}
			}
		}
	}
}

func startHelper(t *testing.T, m *Manager, name, mode string, env ...string) cell.Cell {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := m.Start(ctx, cell.Spec{
		Name: name,
		Path: "/bin/helper",
		Env:  append([]string{"PATH=/bin", helperEnv + "=" + mode}, env...),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func cpuTime(t *testing.T, c cell.Cell) time.Duration {
	t.Helper()
	st, err := c.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st.CPUTime
}

// waitCPU waits until c has used more than d of CPU time.
func waitCPU(t *testing.T, c cell.Cell, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for cpuTime(t, c) <= d {
		if time.Now().After(deadline) {
			t.Fatalf("cell used no more than %v of CPU in 10 s", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestContainerPauseResumeKill(t *testing.T) {
	m := newTestManager(t)
	c := startHelper(t, m, "spin", "spin")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if c.Backend() != Backend || c.Freezer() != m.Freezer() {
		t.Errorf("Backend, Freezer = %q, %q; want %q, %q", c.Backend(), c.Freezer(), Backend, m.Freezer())
	}
	if !c.Contains(c.PID()) {
		t.Errorf("Contains(PID %d) = false", c.PID())
	}
	if c.Contains(os.Getpid()) {
		t.Errorf("Contains(test process) = true")
	}
	// The container's init runs the helper, in the host's view (once
	// runc's init has exec'd it: on a loaded host Start may return first).
	for deadline := time.Now().Add(10 * time.Second); ; {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.PID()))
		if err == nil && strings.HasSuffix(exe, "/bin/helper") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/proc/%d/exe = %q, %v; want .../bin/helper", c.PID(), exe, err)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if l := m.Layout(); l.Unified != "" {
		id, err := cgroupID(filepath.Join(l.Unified, m.opts.Parent, "spin"))
		if err != nil || c.CgroupID() != id || id == 0 {
			t.Errorf("CgroupID = %d; want inode %d (%v)", c.CgroupID(), id, err)
		}
	}
	waitCPU(t, c, 20*time.Millisecond)
	st, err := c.Stats()
	if err != nil || st.PIDs < 1 || st.MemoryBytes == 0 || st.Frozen {
		t.Errorf("Stats = %+v, %v; want tasks, memory, not frozen", st, err)
	}

	if err := c.Pause(ctx); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	st, err = c.Stats()
	if err != nil || !st.Frozen {
		t.Errorf("after Pause: Stats = %+v, %v; want frozen", st, err)
	}
	if out, err := exec.Command(m.runtime, "--root", m.root, "state", "spin").Output(); err != nil || !bytes.Contains(out, []byte(`"paused"`)) {
		t.Errorf("runc state after Pause: %s, %v; want paused", out, err)
	}
	// Pausing a paused container is nothing to do (runc itself would
	// refuse: "container not running").
	if err := c.Pause(ctx); err != nil {
		t.Errorf("a second Pause: %v", err)
	}
	before := cpuTime(t, c)
	time.Sleep(100 * time.Millisecond)
	if after := cpuTime(t, c); after != before {
		t.Errorf("paused container used CPU: %v -> %v", before, after)
	}

	if err := c.Resume(ctx); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	waitCPU(t, c, before)

	// Kill a paused container: nothing may stay frozen.
	if err := c.Pause(ctx); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if err := c.Kill(ctx); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Kill")
	}
	var ee *exec.ExitError
	if err := c.Wait(ctx); !errors.As(err, &ee) {
		t.Errorf("Wait = %v; want an exit error", err)
	}
	if err := c.Pause(ctx); !errors.Is(err, cell.ErrExited) {
		t.Errorf("Pause after Kill = %v; want ErrExited", err)
	}
	if _, err := c.Stats(); !errors.Is(err, cell.ErrExited) {
		t.Errorf("Stats after Kill = %v; want ErrExited", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestContainerExitStatus(t *testing.T) {
	m := newTestManager(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := m.Start(ctx, cell.Spec{
		Name:   "say",
		Path:   "/bin/sh",
		Args:   []string{"-c", "echo hello from $(hostname); exit 7"},
		Stdout: &out,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	var ee *exec.ExitError
	if err := c.Wait(ctx); !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("Wait = %v; want exit status 7", err)
	}
	if got := out.String(); got != "hello from say\n" {
		t.Errorf("stdout = %q; want the container's own hostname", got)
	}
}

func TestContainerStartFailures(t *testing.T) {
	m := newTestManager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tests := []struct {
		name string
		spec cell.Spec
		want error
		msg  string
	}{
		{"missing command", cell.Spec{Name: "nope", Path: "/bin/does-not-exist"}, ErrRuntime, "no such file"},
		{"not executable", cell.Spec{Name: "noexec", Path: "/etc/passwd"}, ErrRuntime, "permission denied"},
		{"bad name", cell.Spec{Name: "a/b", Path: "/bin/sh"}, cell.ErrInvalidName, ""},
		{"signal freezer", cell.Spec{Name: "sig", Path: "/bin/sh", Freezer: cell.FreezerSignal}, cell.ErrFreezerUnavailable, ""},
		{"relative dir", cell.Spec{Name: "dir", Path: "/bin/sh", Dir: "tmp"}, nil, "must be absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := m.Start(ctx, tt.spec)
			if err == nil {
				c.Close()
				t.Fatal("Start succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Start = %v; want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Start = %v; want it to say %q", err, tt.msg)
			}
			assertNothingLeft(t, m)
		})
	}
	// The name of a failed start can be used again.
	c := startHelper(t, m, "nope", "exit")
	if err := c.Wait(ctx); err != nil {
		t.Errorf("Wait = %v; want success", err)
	}
}

func TestContainerDuplicateName(t *testing.T) {
	m := newTestManager(t)
	startHelper(t, m, "dup", "spin")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if c, err := m.Start(ctx, cell.Spec{Name: "dup", Path: "/bin/sh"}); !errors.Is(err, cell.ErrExists) {
		if c != nil {
			c.Close()
		}
		t.Errorf("second Start = %v; want ErrExists", err)
	}
}

// TestRuntimeDies kills the foreground runtime: the container it leaves
// behind must still be killed and removed by Close.
func TestRuntimeDies(t *testing.T) {
	m := newTestManager(t)
	c := startHelper(t, m, "orphan", "spin")
	pid := c.PID()
	if err := c.(*container).cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if err := c.Wait(context.Background()); err == nil {
		t.Error("Wait = nil after the runtime was killed")
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("container init %d gone with the runtime (%v): test premise broken", pid, err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// The orphan's new parent reaps it soon after it dies.
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if f := strings.Fields(string(b)); len(f) > 2 && f[2] != "Z" {
		t.Errorf("container init %d still alive after Close: %s", pid, b)
	}
}

// TestSweep plays a host that died: a second Manager on the same state
// directory removes the first one's container.
func TestSweep(t *testing.T) {
	m := newTestManager(t)
	c := startHelper(t, m, "left", "spin")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	m2, err := NewManager(ctx, m.opts)
	if err != nil {
		t.Fatalf("second NewManager: %v", err)
	}
	defer m2.Close()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("swept container still running")
	}
	if d := m.leftoverCgroup("left"); d != "" {
		t.Errorf("cgroup %s left after sweep", d)
	}
}

// resolver records the PIDs the hub asks about and answers with the
// Manager's CellForPID.
type resolver struct {
	m     *Manager
	mu    sync.Mutex
	asked []int
}

func (r *resolver) CellForPID(pid int) (string, bool) {
	r.mu.Lock()
	r.asked = append(r.asked, pid)
	r.mu.Unlock()
	return r.m.CellForPID(pid)
}

// TestScientistInContainer runs the Scientist agent inside a container;
// it reaches the hub through a bind-mounted socket directory, and the hub
// names its cell from the kernel's view of the peer (SO_PEERCRED gives
// the host PID of a process in the container's PID namespace).
func TestScientistInContainer(t *testing.T) {
	sockDir, err := os.MkdirTemp("", "oci-hub")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	m := newTestManager(t, Mount{Source: sockDir, Destination: "/run/maxwell"})
	res := &resolver{m: m}
	h, err := hub.Listen(filepath.Join(sockDir, "agent.sock"), res, hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- h.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	var stderr bytes.Buffer
	c, err := m.Start(ctx, cell.Spec{
		Name:   "scientist",
		Path:   "/bin/helper",
		Env:    []string{"PATH=/bin", helperEnv + "=scientist", "MAXWELL_AGENT_SOCKET=/run/maxwell/agent.sock"},
		Stderr: &stderr,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()

	for {
		counters, _, ok := h.Counters("scientist")
		if ok && counters["primes"] > 1000 {
			// primes = π(range_end) exactly: check it.
			if want := primePi(counters["range_end"]); counters["primes"] != want {
				t.Errorf("primes = %d for range_end %d; want %d", counters["primes"], counters["range_end"], want)
			}
			break
		}
		select {
		case <-c.Done():
			t.Fatalf("agent exited: %v; stderr: %s", c.Wait(ctx), stderr.String())
		case <-ctx.Done():
			t.Fatalf("no reports from the containerised agent; stderr: %s", stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	res.mu.Lock()
	asked := append([]int(nil), res.asked...)
	res.mu.Unlock()
	if len(asked) == 0 || asked[0] != c.PID() {
		t.Errorf("hub asked about PIDs %v; want the container init's host PID %d", asked, c.PID())
	}
	if err := c.Kill(ctx); err != nil {
		t.Fatalf("Kill: %v", err)
	}
}

// primePi counts the primes ≤ n with a plain sieve.
func primePi(n uint64) uint64 {
	if n < 2 {
		return 0
	}
	composite := make([]bool, n+1)
	var count uint64
	for i := uint64(2); i <= n; i++ {
		if composite[i] {
			continue
		}
		count++
		for j := i * i; j <= n; j += i {
			composite[j] = true
		}
	}
	return count
}

// TestContainerCredential: a container cell with a Credential runs as that
// user and groups, with no capability left.
func TestContainerCredential(t *testing.T) {
	m := newTestManager(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := m.Start(ctx, cell.Spec{
		Name:       "as-user",
		Path:       "/bin/sh",
		Args:       []string{"-c", "echo $(id -u) $(id -g) $(id -G); grep CapEff /proc/self/status"},
		Credential: &syscall.Credential{Uid: 1234, Gid: 2345, Groups: []uint32{3456}},
		Stdout:     &out,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	c.Close()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[0] != "1234 2345 2345 3456" || strings.Fields(lines[1])[len(strings.Fields(lines[1]))-1] != "0000000000000000" {
		t.Errorf("the container saw %q, want uid 1234, gid 2345, groups 2345 3456 and no capability", out.String())
	}
}
