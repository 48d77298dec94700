package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/vm/qmp"
	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// Machine is a QEMU microVM cell, as Manager.Start returns it (as a
// cell.Cell; assert to *Machine for what only VMs have).
type Machine struct {
	inner cell.Cell // runs QEMU
	m     *Manager
	name  string
	accel Accel
	dir   string
	qmp   *qmp.Client
	con   *console
	errs  *tail

	agentMu    sync.Mutex
	agentConn  net.Conn
	agentTaken bool

	done  chan struct{}
	cause error

	causeMu   sync.Mutex
	killCause error // why Maxwell ended the VM, set before it kills

	mu     sync.Mutex // serialises Pause, Resume
	stMu   sync.Mutex
	paused bool

	closeOnce sync.Once
	closeErr  error
}

var (
	_ cell.Cell       = (*Machine)(nil)
	_ cell.CPULimiter = (*Machine)(nil)
)

// qemuValue escapes a value inside a QEMU option list: a comma is
// written twice.
func qemuValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// rootDevice is the guest's name of Options.RootFS: the first virtio-blk
// device.
const rootDevice = "/dev/vda"

// GuestEnv returns the environment of a guest command whose Spec.Env is
// nil, PATH and HOME: the host's is never passed into a VM. A caller
// adding variables of its own starts from it.
func GuestEnv() []string { return []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/"} }

// startQEMU is StartGuest for QEMU, g complete. spec.Path and spec.Args
// are the guest command (a path in the guest, or a name in its PATH),
// spec.Env its whole environment (nil: GuestEnv) to which
// MAXWELL_AGENT_SERIAL=GuestAgentDevice is added, spec.Dir its working
// directory in the guest; spec.CPUs, spec.Freezer, spec.Credential and
// spec.Stderr apply to the QEMU process, spec.Stdout receives the
// guest's console.
func (m *Manager) startQEMU(ctx context.Context, spec cell.Spec, g Guest) (cell.Cell, error) {
	fail := func(err error) (cell.Cell, error) {
		return nil, fmt.Errorf("starting microVM cell %q: %w", spec.Name, err)
	}
	if spec.Name == "" || spec.Name == "." || spec.Name == ".." || filepath.Base(spec.Name) != spec.Name {
		return fail(fmt.Errorf("%w: %q", cell.ErrInvalidName, spec.Name))
	}
	env := spec.Env
	if env == nil {
		env = GuestEnv()
	}
	env = slices.Clone(env)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, agent.EnvSerial+"=") }) {
		env = append(env, agent.EnvSerial+"="+GuestAgentDevice)
	}
	command := vmimage.Command{Path: spec.Path, Args: spec.Args, Env: env, Dir: spec.Dir, WaitFor: GuestAgentDevice}
	if g.Kernel == "" || g.Initrd == "" {
		return fail(fmt.Errorf("%w: a kernel and an initramfs are needed", ErrConfig))
	}
	if g.RootFS != "" {
		command.RootDevice = rootDevice
	}
	kargs, err := vmimage.CommandLine(m.opts.KernelArgs, command)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrConfig, err))
	}
	if err := m.reserve(spec.Name); err != nil {
		return fail(err)
	}
	dir := filepath.Join(m.opts.StateDir, spec.Name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		m.release(spec.Name)
		return fail(err)
	}
	if cr := spec.Credential; cr != nil {
		// QEMU, running as the user, creates its sockets here.
		if err := reachable(m.opts.StateDir, cr); err != nil {
			os.RemoveAll(dir)
			m.release(spec.Name)
			return fail(err)
		}
		if err := os.Chown(dir, int(cr.Uid), int(cr.Gid)); err != nil {
			os.RemoveAll(dir)
			m.release(spec.Name)
			return fail(err)
		}
	}
	v := &Machine{
		m: m, name: spec.Name, accel: m.accel.Accel, dir: dir,
		con:  newConsole(spec.Stdout),
		errs: &tail{out: spec.Stderr, max: 4096},
		done: make(chan struct{}),
	}
	qmpSock, agentSock := filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "agent.sock")
	args := append(machineArgs(v.accel, g.MemMiB, g.VCPUs),
		"-kernel", g.Kernel, "-initrd", g.Initrd, "-append", kargs,
		"-qmp", "unix:"+qemuValue(qmpSock)+",server=on,wait=off",
		"-chardev", "socket,id=agent,path="+qemuValue(agentSock)+",server=on,wait=off",
		"-device", "virtio-serial-device",
		"-device", "virtserialport,chardev=agent,name="+AgentPort,
	)
	if !m.opts.NoBalloon {
		args = append(args, "-device", "virtio-balloon-device,free-page-reporting=on")
	}
	if g.RootFS != "" {
		args = append(args,
			"-drive", "id=root,file="+qemuValue(g.RootFS)+",format=raw,if=none,readonly=on",
			"-device", "virtio-blk-device,drive=root")
	}
	inner, err := m.cells.Start(ctx, cell.Spec{
		Name: spec.Name, Path: m.qemu, Args: args, Env: []string{},
		CPUs: spec.CPUs, Stdout: v.con, Stderr: v.errs, Freezer: spec.Freezer, Credential: spec.Credential,
	})
	if err != nil {
		os.RemoveAll(dir)
		m.release(spec.Name)
		return fail(err)
	}
	v.inner = inner
	if err := v.connect(ctx, qmpSock, agentSock); err != nil {
		v.abort()
		return fail(err)
	}
	// Both sockets are connected: their files have done their job.
	if err := os.RemoveAll(dir); err != nil {
		m.log.Warn("removing microVM sockets", "cell", v.name, "err", err)
	}
	m.mu.Lock()
	closed := m.closed
	if !closed {
		m.machines[v.name] = v
	}
	m.mu.Unlock()
	if closed {
		v.abort()
		return fail(fmt.Errorf("vm manager: %w", cell.ErrClosed))
	}
	go v.supervise(m.opts.BootTimeout)
	go v.watchEvents()
	m.log.Debug("microVM started", "cell", v.name, "pid", inner.PID(), "accel", v.accel, "cgroup_id", inner.CgroupID())
	return v, nil
}

// connect waits for QEMU's sockets and connects to both, within ctx and
// StartTimeout, failing early if QEMU exits.
func (v *Machine) connect(ctx context.Context, qmpSock, agentSock string) error {
	ctx, cancel := context.WithTimeout(ctx, v.m.opts.StartTimeout)
	defer cancel()
	go func() {
		select {
		case <-v.inner.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	dial := func(path string) (net.Conn, error) {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var d net.Dialer
		for {
			if _, err := os.Stat(path); err == nil {
				c, err := d.DialContext(ctx, "unix", path)
				if err == nil {
					return c, nil
				}
			}
			select {
			case <-ctx.Done():
				return nil, v.startErr(ctx, path)
			case <-t.C:
			}
		}
	}
	qc, err := dial(qmpSock)
	if err != nil {
		return err
	}
	if v.qmp, err = qmp.NewClient(ctx, qc); err != nil {
		qc.Close()
		return v.startErr(ctx, qmpSock, err)
	}
	if v.agentConn, err = dial(agentSock); err != nil {
		return err
	}
	return nil
}

// startErr explains why the VMM's sockets did not come up.
func (v *Machine) startErr(ctx context.Context, what string, errs ...error) error {
	select {
	case <-v.inner.Done():
		return &VMMError{Err: v.inner.Wait(context.WithoutCancel(ctx)), Stderr: v.errs.String()}
	default:
	}
	err := errors.Join(append(errs, ctx.Err())...)
	return fmt.Errorf("waiting for %s: %w", what, err)
}

// abort undoes a failed start.
func (v *Machine) abort() {
	v.setKillCause(ErrKilled)
	if err := v.inner.Close(); err != nil {
		v.m.log.Warn("cleaning up after failed start", "cell", v.name, "err", err)
	}
	if v.qmp != nil {
		v.qmp.Close()
	}
	if v.agentConn != nil {
		v.agentConn.Close()
	}
	os.RemoveAll(v.dir)
	v.m.release(v.name)
}

// powerOffGrace is how long a guest may take to power off after its
// command ended.
const powerOffGrace = 5 * time.Second

// supervise enforces the boot deadline and records why the VM ended.
func (v *Machine) supervise(bootTimeout time.Duration) {
	t := time.NewTimer(bootTimeout)
	select {
	case <-v.con.ready:
	case <-v.inner.Done():
	case <-t.C:
		v.fail(fmt.Errorf("%w: no %q on the console within %v", ErrBootTimeout, vmimage.MarkerReady, bootTimeout))
	}
	t.Stop()
	// Once init has said the command ended, the guest powers off at once;
	// one that lingers is ended from here.
	select {
	case <-v.inner.Done():
	case <-v.con.ended:
		t := time.NewTimer(powerOffGrace)
		select {
		case <-v.inner.Done():
		case <-t.C:
			v.m.log.Warn("guest did not power off after its command ended; killing it", "cell", v.name)
			v.fail(ErrKilled)
		}
		t.Stop()
	}
	<-v.inner.Done()
	v.cause = v.outcome()
	v.qmp.Close()
	v.agentMu.Lock()
	if !v.agentTaken && v.agentConn != nil {
		v.agentConn.Close()
	}
	v.agentMu.Unlock()
	close(v.done)
}

// outcome says why the VM ended, once QEMU has exited.
func (v *Machine) outcome() error {
	exited, status, initErr, panicMsg := v.con.outcome()
	v.causeMu.Lock()
	kc := v.killCause
	v.causeMu.Unlock()
	switch {
	case exited && status == 0:
		return nil
	case exited:
		return &ExitError{Status: status}
	case kc != nil:
		return kc
	case panicMsg != "":
		return &PanicError{Message: panicMsg}
	case initErr != "":
		return fmt.Errorf("%w: %s", ErrGuestInit, initErr)
	}
	err := v.inner.Wait(context.Background())
	if err == nil {
		err = errors.New("QEMU exited without the guest's command ending")
	}
	return &VMMError{Err: err, Stderr: v.errs.String()}
}

func (v *Machine) setKillCause(err error) {
	v.causeMu.Lock()
	defer v.causeMu.Unlock()
	if v.killCause == nil {
		v.killCause = err
	}
}

// fail ends the VM with cause, without waiting.
func (v *Machine) fail(cause error) {
	v.setKillCause(cause)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := v.inner.Kill(ctx); err != nil {
			v.m.log.Warn("killing microVM", "cell", v.name, "cause", cause, "err", err)
		}
	}()
}

// watchEvents follows QEMU's STOP and RESUME events, so Stats knows
// whether the vCPUs run without asking.
func (v *Machine) watchEvents() {
	for ev := range v.qmp.Events() {
		switch ev.Name {
		case "STOP":
			v.setPaused(true)
		case "RESUME":
			v.setPaused(false)
		}
	}
}

func (v *Machine) isPaused() bool {
	v.stMu.Lock()
	defer v.stMu.Unlock()
	return v.paused
}

func (v *Machine) setPaused(p bool) {
	v.stMu.Lock()
	v.paused = p
	v.stMu.Unlock()
}

// Name implements cell.Cell.
func (v *Machine) Name() string { return v.name }

// PID returns QEMU's process id.
func (v *Machine) PID() int { return v.inner.PID() }

// Backend returns "qemu-microvm/kvm" or "qemu-microvm/tcg".
func (v *Machine) Backend() string { return BackendQEMU + "/" + string(v.accel) }

// Accel returns the accelerator the guest runs under.
func (v *Machine) Accel() Accel { return v.accel }

// Freezer returns the freezer of the cell QEMU runs in; Pause does not
// use it (QMP stop does), Kill thaws with it.
func (v *Machine) Freezer() cell.FreezerKind { return v.inner.Freezer() }

// CgroupID returns the id of QEMU's cell's cgroup2 directory.
func (v *Machine) CgroupID() uint64 { return v.inner.CgroupID() }

// Contains reports whether pid is a task of QEMU's cell.
func (v *Machine) Contains(pid int) bool { return v.inner.Contains(pid) }

// Done is closed once QEMU has exited and Wait knows why.
func (v *Machine) Done() <-chan struct{} { return v.done }

// Booted is closed once the guest's init has said it runs the command.
func (v *Machine) Booted() <-chan struct{} { return v.con.ready }

// WaitBooted waits until the guest has booted, the VM ends, or ctx ends.
func (v *Machine) WaitBooted(ctx context.Context) error {
	select {
	case <-v.con.ready:
		return nil
	case <-v.done:
		return fmt.Errorf("microVM cell %q ended before it booted: %w", v.name, v.cause)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait waits for the VM to end and returns why (see the package doc).
func (v *Machine) Wait(ctx context.Context) error {
	select {
	case <-v.done:
		return v.cause
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pause stops the guest's vCPUs (QMP stop) and returns once query-status
// reports the VM paused. On failure the VM is resumed again.
func (v *Machine) Pause(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if isClosed(v.inner.Done()) {
		return fmt.Errorf("pausing microVM cell %q: %w", v.name, cell.ErrExited)
	}
	err := v.qmp.Execute(ctx, "stop", nil, nil)
	if err == nil {
		err = v.waitStatus(ctx, false)
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := v.qmp.Execute(rctx, "cont", nil, nil); rerr != nil && !isClosed(v.inner.Done()) {
			v.m.log.Warn("resuming after failed pause", "cell", v.name, "err", rerr)
		}
		if isClosed(v.inner.Done()) {
			err = errors.Join(err, cell.ErrExited)
		}
		return fmt.Errorf("pausing microVM cell %q: %w", v.name, err)
	}
	v.setPaused(true)
	return nil
}

// Resume restarts the vCPUs (QMP cont) and returns once query-status
// reports the VM running.
func (v *Machine) Resume(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	err := v.qmp.Execute(ctx, "cont", nil, nil)
	if err == nil {
		err = v.waitStatus(ctx, true)
	}
	if err != nil {
		if isClosed(v.inner.Done()) {
			err = errors.Join(err, cell.ErrExited)
		}
		return fmt.Errorf("resuming microVM cell %q: %w", v.name, err)
	}
	v.setPaused(false)
	return nil
}

// waitStatus polls query-status until the VM runs (running) or is
// paused (!running).
func (v *Machine) waitStatus(ctx context.Context, running bool) error {
	want := "paused"
	if running {
		want = "running"
	}
	for {
		st, err := v.qmp.QueryStatus(ctx)
		if err != nil {
			return err
		}
		if st.Running == running && st.Status == want {
			return nil
		}
		switch st.Status {
		case "shutdown", "guest-panicked", "internal-error", "io-error":
			return fmt.Errorf("%w: %s, want %s", ErrVMState, st.Status, want)
		}
		t := time.NewTimer(200 * time.Microsecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %s, want %s: %w", ErrVMState, st.Status, want, ctx.Err())
		case <-t.C:
		}
	}
}

// Status returns QEMU's own view of the VM (query-status).
func (v *Machine) Status(ctx context.Context) (qmp.Status, error) {
	return v.qmp.QueryStatus(ctx)
}

// Quit asks QEMU to exit (QMP quit) and waits until it has; if it does
// not within ctx, the VM is killed. Wait then returns ErrKilled.
func (v *Machine) Quit(ctx context.Context) error {
	v.setKillCause(ErrKilled)
	err := v.qmp.Execute(ctx, "quit", nil, nil)
	if err == nil {
		select {
		case <-v.done:
			return nil
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	return errors.Join(fmt.Errorf("quitting microVM cell %q: %w", v.name, err), v.Kill(kctx))
}

// Kill SIGKILLs QEMU (and everything in its cell) and returns once the VM
// has ended; Wait then returns ErrKilled unless the guest had ended
// first.
func (v *Machine) Kill(ctx context.Context) error {
	v.setKillCause(ErrKilled)
	if err := v.inner.Kill(ctx); err != nil {
		return fmt.Errorf("killing microVM cell %q: %w", v.name, err)
	}
	select {
	case <-v.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("killing microVM cell %q: %w", v.name, ctx.Err())
	}
}

// Stats are QEMU's cell's figures; Frozen is true while the vCPUs are
// stopped (Pause, or a QMP stop by anyone) or the cell is frozen.
func (v *Machine) Stats() (cell.Stats, error) {
	st, err := v.inner.Stats()
	if err != nil {
		return st, err
	}
	v.stMu.Lock()
	st.Frozen = st.Frozen || v.paused
	v.stMu.Unlock()
	return st, nil
}

// LimitCPU caps QEMU's cell (all vCPUs and QEMU's own threads).
func (v *Machine) LimitCPU(cores float64) error {
	l, ok := v.inner.(cell.CPULimiter)
	if !ok {
		return fmt.Errorf("microVM cell %q: %w", v.name, cell.ErrNoCPUController)
	}
	return l.LimitCPU(cores)
}

// AgentConn returns the host's end of the guest agent's virtio-serial
// port, once: the caller (the hub, through ServeAgent) owns it then.
// Bytes the guest wrote before are waiting in it.
func (v *Machine) AgentConn() (net.Conn, error) {
	v.agentMu.Lock()
	defer v.agentMu.Unlock()
	if v.agentTaken {
		return nil, fmt.Errorf("microVM cell %q: %w", v.name, ErrAgentTaken)
	}
	if isClosed(v.done) {
		return nil, fmt.Errorf("microVM cell %q: %w", v.name, cell.ErrExited)
	}
	v.agentTaken = true
	return v.agentConn, nil
}

// Close kills the VM, removes QEMU's cell and whatever the VM had on
// disk. It is idempotent and waits at most about 10 s.
func (v *Machine) Close() error {
	v.closeOnce.Do(func() {
		v.setKillCause(ErrKilled)
		var errs []error
		if err := v.inner.Close(); err != nil {
			errs = append(errs, err)
		}
		t := time.NewTimer(closeTimeout)
		select {
		case <-v.done:
		case <-t.C:
			errs = append(errs, fmt.Errorf("microVM cell %q: supervisor did not finish", v.name))
		}
		t.Stop()
		if err := os.RemoveAll(v.dir); err != nil {
			errs = append(errs, err)
		}
		v.m.release(v.name)
		v.closeErr = errors.Join(errs...)
	})
	return v.closeErr
}

// reachable checks that the user of cr may pass through every directory
// down to dir (search permission), where QEMU, running as them, makes its
// sockets.
func reachable(dir string, cr *syscall.Credential) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no owner to check", p)
		}
		var bit os.FileMode = 0o001
		switch {
		case st.Uid == cr.Uid:
			bit = 0o100
		case st.Gid == cr.Gid || slices.Contains(cr.Groups, st.Gid):
			bit = 0o010
		}
		if fi.Mode().Perm()&bit == 0 {
			return fmt.Errorf("%w: QEMU runs as uid %d, who cannot pass through %s (mode %v, owner %d:%d) to the state directory %s", ErrConfig, cr.Uid, p, fi.Mode().Perm(), st.Uid, st.Gid, abs)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// String returns the cell's name and QEMU's PID.
func (v *Machine) String() string { return v.name + "[" + strconv.Itoa(v.PID()) + "]" }
