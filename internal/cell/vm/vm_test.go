package vm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/cell/vm"
	"github.com/maxwellhq/maxwell/internal/cell/vm/vmtest"
	"github.com/maxwellhq/maxwell/internal/cgroupfs"
	"github.com/maxwellhq/maxwell/internal/hub"
	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// env is a cell manager and a microVM manager of the test's own.
type env struct {
	cells  *cell.Manager
	vms    *vm.Manager
	parent string
	state  string
	img    vmimage.Image
}

// newEnv boots nothing yet: it builds (or finds) the guest image and
// makes the managers, closed at cleanup. Guests run under TCG unless
// mod says otherwise: the KVM probe has a test of its own.
func newEnv(t testing.TB, mod func(*vm.Options)) *env {
	t.Helper()
	vmtest.NeedRoot(t)
	img := vmtest.Image(t)
	e := &env{parent: testParent(), img: img}
	co := cell.DefaultOptions()
	co.Parent = e.parent
	cm, err := cell.NewManager(co)
	if err != nil {
		t.Fatalf("cell.NewManager: %v", err)
	}
	e.cells = cm
	// Socket paths are limited to 108 bytes: a short state directory.
	if e.state, err = os.MkdirTemp("", "vm"); err != nil {
		t.Fatal(err)
	}
	opts := vm.Options{Kernel: img.Kernel, Initrd: img.Initrd, Accel: vm.AccelTCG, StateDir: e.state}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if e.vms, err = vm.NewManager(ctx, cm, opts); err != nil {
		cm.Close()
		t.Fatalf("vm.NewManager: %v", err)
	}
	t.Cleanup(func() {
		if err := e.vms.Close(); err != nil {
			t.Errorf("vm Manager.Close: %v", err)
		}
		if err := e.cells.Close(); err != nil {
			t.Errorf("cell Manager.Close: %v", err)
		}
		if ents, _ := os.ReadDir(e.state); len(ents) > 0 {
			t.Errorf("state directory %s not empty after Close: %v", e.state, ents)
		}
		os.RemoveAll(e.state)
	})
	return e
}

// start boots a VM running cmd in the guest.
func (e *env) start(t *testing.T, name string, out *syncBuffer, cmd ...string) *vm.Machine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spec := cell.Spec{Name: name, Path: cmd[0], Args: cmd[1:]}
	if out != nil {
		spec.Stdout, spec.Stderr = out, out
	}
	c, err := e.vms.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*vm.Machine)
}

// checkGone asserts that a closed VM left nothing: no QEMU process, no
// cgroup directory, no socket.
func (e *env) checkGone(t *testing.T, name string, qemuPID int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cgroupfs.Poll(ctx, func() (bool, error) {
		return syscall.Kill(qemuPID, 0) == syscall.ESRCH && len(cgroupDirs("/sys/fs/cgroup", e.parent, name)) == 0, nil
	})
	if err != nil {
		t.Errorf("after Close: QEMU pid %d alive: %v; cgroups left: %v", qemuPID, syscall.Kill(qemuPID, 0) == nil, cgroupDirs("/sys/fs/cgroup", e.parent, name))
	}
	if _, err := os.Stat(filepath.Join(e.state, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory of %s left behind: %v", name, err)
	}
}

// syncBuffer is a bytes.Buffer safe for the console's writer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestGuestCommandEnds boots guests whose command ends by itself and
// checks what Wait says, the console, and that nothing is left.
func TestGuestCommandEnds(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		cmd    []string
		want   func(error) bool
		output string
	}{
		{"exit-0", []string{"/bin/sh", "-c", "echo hello from the guest; uname -r"}, func(err error) bool { return err == nil }, "hello from the guest"},
		{"exit-3", []string{"sh", "-c", "echo \"it's 3\"; exit 3"}, func(err error) bool {
			var ee *vm.ExitError
			return errors.As(err, &ee) && ee.Status == 3
		}, "it's 3"},
		{"no-such-command", []string{"/bin/nonexistent"}, func(err error) bool {
			var ee *vm.ExitError
			return errors.As(err, &ee) && ee.Status == 127
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			t0 := time.Now()
			c := e.start(t, tc.name, &out, tc.cmd...)
			if got, want := c.Backend(), "qemu-microvm/tcg"; got != want {
				t.Errorf("Backend() = %q, want %q", got, want)
			}
			if err := c.WaitBooted(waitCtx(t, time.Minute)); err != nil {
				t.Fatalf("WaitBooted: %v; console:\n%s", err, out.String())
			}
			t.Logf("booted in %v (TCG, from Start to init's ready)", time.Since(t0).Round(time.Millisecond))
			err := c.Wait(waitCtx(t, time.Minute))
			if !tc.want(err) {
				t.Errorf("Wait = %v; console:\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), tc.output) {
				t.Errorf("console lacks %q:\n%s", tc.output, out.String())
			}
			pid := c.PID()
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			e.checkGone(t, tc.name, pid)
		})
	}
}

// cpuTime returns the VM cell's CPU time.
func cpuTime(t *testing.T, c cell.Cell) time.Duration {
	t.Helper()
	st, err := c.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st.CPUTime
}

// TestScientistPauseResumeKill runs the Scientist in a VM: its reports
// reach the hub over virtio-serial, under the VM's cell's name; Pause
// stops the VMM's CPU time and the reports, Resume starts both again;
// Kill ends the VM and leaves nothing.
func TestScientistPauseResumeKill(t *testing.T) {
	e := newEnv(t, nil)
	if e.img.Maxwell == "" {
		t.Fatal("the test image has no maxwell binary")
	}
	h := newHub(t, hub.Options{})
	var out syncBuffer
	c := e.start(t, "sci", &out, e.img.Maxwell, "agent", "scientist", "--report-interval", "200ms", "--threads", "1")
	served := make(chan error, 1)
	go func() { served <- vm.ServeAgent(context.Background(), c, h) }()

	primes := func() uint64 {
		got, _, _ := h.Counters("sci")
		return got["primes"]
	}
	ctx := waitCtx(t, 2*time.Minute)
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return primes() > 0, nil }); err != nil {
		t.Fatalf("no report from the Scientist in the VM: %v; console:\n%s", err, out.String())
	}
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return primes() > 1000, nil }); err != nil {
		t.Fatalf("the Scientist's counters do not grow: %v", err)
	}

	// Paused: the VMM's CPU time stands (QEMU's main loop may still tick)
	// and no report comes.
	if err := c.Pause(ctx); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if st, _ := c.Stats(); !st.Frozen {
		t.Error("Stats().Frozen = false after Pause")
	}
	if s, err := c.Status(ctx); err != nil || s.Status != "paused" {
		t.Errorf("Status = %+v, %v; want paused", s, err)
	}
	time.Sleep(300 * time.Millisecond) // a report in flight lands
	cpu0, p0 := cpuTime(t, c), primes()
	const window = time.Second
	time.Sleep(window)
	cpuPaused, p1 := cpuTime(t, c)-cpu0, primes()
	if cpuPaused > window/10 {
		t.Errorf("paused VM used %v of CPU in %v; want under %v", cpuPaused, window, window/10)
	}
	if p1 != p0 {
		t.Errorf("primes went from %d to %d while paused", p0, p1)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	cpu1 := cpuTime(t, c)
	time.Sleep(window)
	cpuRunning := cpuTime(t, c) - cpu1
	if cpuRunning < window/2 {
		t.Errorf("resumed VM used only %v of CPU in %v; want at least %v", cpuRunning, window, window/2)
	}
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return primes() > p1, nil }); err != nil {
		t.Errorf("no new report after Resume: %v", err)
	}
	t.Logf("CPU time in %v: %v paused, %v running", window, cpuPaused, cpuRunning)

	pid := c.PID()
	if err := c.Kill(ctx); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if err := c.Wait(ctx); !errors.Is(err, vm.ErrKilled) {
		t.Errorf("Wait after Kill = %v, want ErrKilled", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeAgent = %v, want nil once the VM ended", err)
		}
	case <-ctx.Done():
		t.Error("ServeAgent did not return after the VM ended")
	}
	c.Close()
	e.checkGone(t, "sci", pid)
}

// newHub returns a hub that serves only attached links.
func newHub(t *testing.T, opts hub.Options) *hub.Hub {
	t.Helper()
	dir, err := os.MkdirTemp("", "vmhub")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h, err := hub.Listen(filepath.Join(dir, "agent.sock"), noCell{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

type noCell struct{}

func (noCell) CellForPID(int) (string, bool) { return "", false }

// TestFaults: a guest that does not boot in time, panics, never speaks
// the protocol, floods its port or sends garbage, and a VMM that dies:
// each time the cell ends (Done closed), Wait says why, and nothing is
// left behind.
func TestFaults(t *testing.T) {
	port := vm.GuestAgentDevice
	tests := []struct {
		name  string
		opts  func(*vm.Options)
		cmd   []string
		serve bool              // hand the agent link to a hub
		act   func(*vm.Machine) // done to the running VM
		want  func(err error) bool
	}{
		{
			name: "boot-timeout",
			opts: func(o *vm.Options) { o.BootTimeout = 300 * time.Millisecond },
			cmd:  []string{"/bin/true"},
			want: func(err error) bool { return errors.Is(err, vm.ErrBootTimeout) },
		},
		{
			name: "panic",
			cmd:  []string{"/bin/sh", "-c", "echo c > /proc/sysrq-trigger; sleep 100"},
			want: func(err error) bool {
				var pe *vm.PanicError
				return errors.As(err, &pe) && strings.Contains(pe.Message, "sysrq")
			},
		},
		{
			name:  "never-speaks",
			cmd:   []string{"/bin/sleep", "1000"},
			serve: true,
			want:  agentFault(proto.CodeTimeout),
		},
		{
			name:  "flood",
			cmd:   []string{"/bin/sh", "-c", "tr '\\0' x < /dev/zero > " + port},
			serve: true,
			want:  agentFault(proto.CodeOversized),
		},
		{
			name: "garbage",
			// Garbage where the hello should be: refused at once (after
			// a hello, MaxErrors bounds it: see the hub's tests).
			cmd:   []string{"/bin/sh", "-c", "while :; do echo 'not json'; done > " + port},
			serve: true,
			want:  agentFault(proto.CodeMalformed),
		},
		{
			name: "vmm-dies",
			cmd:  []string{"/bin/sleep", "1000"},
			act: func(c *vm.Machine) {
				syscall.Kill(c.PID(), syscall.SIGKILL)
			},
			want: func(err error) bool {
				var ve *vm.VMMError
				return errors.As(err, &ve) && strings.Contains(ve.Error(), "killed")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			var out syncBuffer
			c := e.start(t, tc.name, &out, tc.cmd...)
			ctx := waitCtx(t, 2*time.Minute)
			if tc.serve {
				h := newHub(t, hub.Options{HandshakeTimeout: 2 * time.Second})
				go vm.ServeAgent(ctx, c, h)
			}
			if tc.act != nil {
				if err := c.WaitBooted(ctx); err != nil {
					t.Fatalf("WaitBooted: %v", err)
				}
				tc.act(c)
			}
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatalf("the VM did not end; console:\n%s", out.String())
			}
			if err := c.Wait(ctx); !tc.want(err) {
				t.Errorf("Wait = %v; console:\n%s", err, out.String())
			} else {
				t.Logf("Wait = %v", err)
			}
			pid := c.PID()
			c.Close()
			e.checkGone(t, tc.name, pid)
		})
	}
}

func agentFault(code proto.Code) func(error) bool {
	return func(err error) bool {
		var ae *vm.AgentError
		var pe *proto.Error
		return errors.As(err, &ae) && errors.As(err, &pe) && pe.Code == code
	}
}

// TestOwnRootFS runs the guest command in a root file system image of
// the user's (ext4, made with mkfs.ext4 -d): init mounts it read-only
// and chroots there; the agent's port is there too.
func TestOwnRootFS(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("no mkfs.ext4 (Debian: apt-get install e2fsprogs) to make a root file system image")
	}
	vmtest.NeedRoot(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{"bin", "etc", "dev", "proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(oci.DefaultBusybox)
	if err != nil {
		t.Skipf("no %s to put in the image: %v", oci.DefaultBusybox, err)
	}
	if err := os.WriteFile(filepath.Join(tree, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "cat", "ls"} {
		if err := os.Symlink("busybox", filepath.Join(tree, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "etc", "hello"), []byte("from the user's root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "root.ext4")
	if out, err := exec.Command(mkfs, "-q", "-d", tree, img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	e := newEnv(t, func(o *vm.Options) { o.RootFS = img })
	var out syncBuffer
	c := e.start(t, "ownroot", &out, "/bin/sh", "-c", "cat /etc/hello; ls /dev/virtio-ports; ls /lib/modules 2>&1; true")
	if err := c.Wait(waitCtx(t, time.Minute)); err != nil {
		t.Fatalf("Wait = %v; console:\n%s", err, out.String())
	}
	for _, want := range []string{"from the user's root", vm.AgentPort, "No such file"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q (the command must run in the image, with the agent's port):\n%s", want, out.String())
		}
	}
}

// TestCPULimitAndQuit: a CPU limit on the VM's cell caps QEMU (vCPU and
// all), as for any cell; Quit ends the VM through QMP.
func TestCPULimitAndQuit(t *testing.T) {
	e := newEnv(t, nil)
	c := e.start(t, "limit", nil, "/bin/sh", "-c", "while :; do :; done")
	ctx := waitCtx(t, time.Minute)
	if err := c.WaitBooted(ctx); err != nil {
		t.Fatal(err)
	}
	var lim cell.CPULimiter = c
	if err := lim.LimitCPU(0.25); err != nil {
		t.Fatalf("LimitCPU: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	cpu0 := cpuTime(t, c)
	const window = 2 * time.Second
	time.Sleep(window)
	used := cpuTime(t, c) - cpu0
	if used > window*2/5 {
		t.Errorf("capped at 0.25 CPU, the VM used %v in %v", used, window)
	}
	if err := lim.LimitCPU(0); err != nil {
		t.Fatalf("lifting the limit: %v", err)
	}
	cpu1 := cpuTime(t, c)
	time.Sleep(window)
	if free := cpuTime(t, c) - cpu1; free < window/2 {
		t.Errorf("uncapped, the VM used only %v in %v", free, window)
	}
	t.Logf("busy guest, %v: %v under a 0.25-CPU cap", window, used)
	pid := c.PID()
	if err := c.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	if err := c.Wait(ctx); !errors.Is(err, vm.ErrKilled) {
		t.Errorf("Wait after Quit = %v, want ErrKilled", err)
	}
	c.Close()
	e.checkGone(t, "limit", pid)
}

// TestRunsAsRequester: with a credential, QEMU runs as that user (its
// /proc status says so), reads the guest's files as them, makes its
// sockets in a directory given to them; per-VM guest settings (memory,
// another copy of the image) override the Manager's.
func TestRunsAsRequester(t *testing.T) {
	e := newEnv(t, nil)
	// The cached image lies under root's home: a copy nobody may read.
	dir, err := os.MkdirTemp("", "vmimage")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var g vm.Guest
	for _, f := range []struct {
		src string
		dst *string
	}{{e.img.Kernel, &g.Kernel}, {e.img.Initrd, &g.Initrd}} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			t.Fatal(err)
		}
		*f.dst = filepath.Join(dir, filepath.Base(f.src))
		if err := os.WriteFile(*f.dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g.MemMiB = 384
	const nobody = 65534
	ctx := waitCtx(t, time.Minute)
	var out syncBuffer
	c, err := e.vms.StartGuest(ctx, cell.Spec{Name: "asuser", Path: "/bin/sh", Args: []string{"-c", "grep MemTotal /proc/meminfo; sleep 100"},
		Stdout: &out, Stderr: &out, Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}, g)
	if err != nil {
		t.Fatalf("StartGuest: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	v := c.(*vm.Machine)
	if err := v.WaitBooted(ctx); err != nil {
		t.Fatalf("WaitBooted: %v; console:\n%s", err, out.String())
	}
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(v.PID()), "status"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d", nobody, nobody, nobody, nobody); !strings.Contains(string(status), want) {
		t.Errorf("QEMU's status lacks %q:\n%s", want, status)
	}
	cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(v.PID()), "cmdline"))
	if args := strings.Split(string(cmdline), "\x00"); !slices.Contains(args, g.Kernel) || !slices.Contains(args, "384") {
		t.Errorf("QEMU's arguments lack the guest's kernel %s and -m 384: %q", g.Kernel, args)
	}
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return strings.Contains(out.String(), "MemTotal:"), nil }); err != nil {
		t.Errorf("guest said nothing of its memory: %v; console:\n%s", err, out.String())
	}
	pid := v.PID()
	if err := v.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	e.checkGone(t, "asuser", pid)

	// A state directory the user cannot reach (under the test's 0700
	// temporary directory) is a clear error before QEMU starts.
	hidden := filepath.Join(t.TempDir(), "vm")
	m, err := vm.NewManager(ctx, e.cells, vm.Options{Kernel: g.Kernel, Initrd: g.Initrd, Accel: vm.AccelTCG, StateDir: hidden})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, err = m.StartGuest(ctx, cell.Spec{Name: "hidden", Path: "/bin/true", Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}, vm.Guest{})
	if !errors.Is(err, vm.ErrConfig) || !strings.Contains(err.Error(), "cannot pass through "+filepath.Dir(filepath.Dir(hidden))) {
		t.Errorf("StartGuest as nobody under a 0700 directory: %v, want ErrConfig naming it", err)
	}
	if ents, _ := os.ReadDir(hidden); len(ents) != 0 {
		t.Errorf("the refused start left %v", ents)
	}
}

// TestHelloDeadlineCountsRunningTime: an economy freezes a new cell
// until it wins a slot; a VM held paused past the hello deadline is not
// cut off for the silence of an agent that could not run, and its agent
// is served once it speaks.
func TestHelloDeadlineCountsRunningTime(t *testing.T) {
	const hello = 4 * time.Second
	e := newEnv(t, func(o *vm.Options) { o.HelloTimeout = hello })
	h := newHub(t, hub.Options{})
	var out syncBuffer
	c := e.start(t, "held", &out, "/bin/sh", "-c", "sleep 1; exec "+e.img.Maxwell+" agent scientist --report-interval 200ms --threads 1")
	ctx := waitCtx(t, 2*time.Minute)
	if err := c.WaitBooted(ctx); err != nil {
		t.Fatalf("WaitBooted: %v", err)
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- vm.ServeAgent(ctx, c, h) }()
	time.Sleep(hello + time.Second) // past the deadline, had it run on the wall clock
	select {
	case err := <-served:
		t.Fatalf("ServeAgent returned while the VM was paused: %v", err)
	default:
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if err := cgroupfs.Poll(ctx, func() (bool, error) {
		got, _, _ := h.Counters("held")
		return got["primes"] > 0, nil
	}); err != nil {
		t.Fatalf("no report after Resume: %v; console:\n%s", err, out.String())
	}
	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("ServeAgent = %v after Kill, want nil", err)
	}
}

// TestServeAgentOnceSpoken: a guest whose command need not speak (a
// budgeted program) stays silent past the hello deadline and is not cut
// off; when it does speak, the hub serves it.
func TestServeAgentOnceSpoken(t *testing.T) {
	e := newEnv(t, func(o *vm.Options) { o.HelloTimeout = time.Second })
	h := newHub(t, hub.Options{})
	var out syncBuffer
	c := e.start(t, "quiet", &out, "/bin/sh", "-c", "sleep 3; exec "+e.img.Maxwell+" agent scientist --report-interval 200ms --threads 1")
	ctx := waitCtx(t, 2*time.Minute)
	served := make(chan error, 1)
	go func() { served <- vm.ServeAgentOnceSpoken(ctx, c, h) }()
	if err := cgroupfs.Poll(ctx, func() (bool, error) {
		got, _, _ := h.Counters("quiet")
		return got["primes"] > 0, nil
	}); err != nil {
		t.Fatalf("no report from a guest that spoke after 3 s of silence: %v; console:\n%s", err, out.String())
	}
	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("ServeAgentOnceSpoken = %v after Kill, want nil", err)
	}
}
