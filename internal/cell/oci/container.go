package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// Names of the files in a bundle besides config.json.
const (
	pidFile = "pid"         // the runtime writes the container's host PID here
	logFile = "runtime.log" // the runtime's own log, JSON lines
)

// container implements cell.Cell for one OCI container run in the
// foreground by "<runtime> run".
type container struct {
	m       *Manager
	name    string
	bundle  string
	cmd     *exec.Cmd // the foreground runtime process
	pid     int       // the container's init, host PID namespace
	cg      cgroups
	cgID    uint64
	freezer cell.FreezerKind

	done    chan struct{}
	waitErr error

	mu        sync.Mutex // serialises Pause, Resume, Kill
	closeOnce sync.Once
	closeErr  error
}

var _ cell.Cell = (*container)(nil)

// Start runs spec's command as a container cell: spec.Path and spec.Args
// are the container's process (a path inside the root file system, or a
// name the runtime looks up in the container's PATH), spec.Env its whole
// environment (nil: DefaultEnv), spec.Dir its working directory inside
// the container ("": /), spec.CPUs its cpuset. spec.Freezer may only be
// "", cell.FreezerAuto or the runtime's own freezer (Manager.Freezer).
//
// Start returns once the runtime has exec'd the command, or with the
// runtime's error (a missing command, a bad root file system) when it
// could not; then nothing is left behind: no container, no cgroup, no
// bundle.
func (m *Manager) Start(ctx context.Context, spec cell.Spec) (cell.Cell, error) {
	if err := validName(spec.Name); err != nil {
		return nil, err
	}
	fail := func(err error) (cell.Cell, error) {
		return nil, fmt.Errorf("starting container cell %q: %w", spec.Name, err)
	}
	switch spec.Freezer {
	case "", cell.FreezerAuto, m.freezer:
	default:
		return fail(fmt.Errorf("freezer %q (the runtime pauses with %q): %w", spec.Freezer, m.freezer, cell.ErrFreezerUnavailable))
	}
	s, err := runtimeSpec(spec, m.opts.RootFS, m.opts.Parent, m.opts.Mounts, m.opts.HostNetwork)
	if err != nil {
		return fail(err)
	}
	if err := m.reserve(spec.Name); err != nil {
		return fail(err)
	}
	if d := m.leftoverCgroup(spec.Name); d != "" {
		m.release(spec.Name)
		return fail(fmt.Errorf("%w: cgroup %s is left over from an earlier run (Sweep removes it)", cell.ErrExists, d))
	}
	bundle := filepath.Join(m.bundles, spec.Name)
	if err := os.Mkdir(bundle, 0o700); err != nil {
		m.release(spec.Name)
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%w: bundle %s is left over from an earlier run (Sweep removes it)", cell.ErrExists, bundle)
		}
		return fail(err)
	}
	c := &container{
		m:       m,
		name:    spec.Name,
		bundle:  bundle,
		cg:      cgroupsOf(m.layout, m.opts.Parent, spec.Name),
		freezer: m.freezer,
		done:    make(chan struct{}),
	}
	if err := writeBundle(bundle, s); err != nil {
		c.abort()
		return fail(err)
	}
	if err := c.start(ctx, spec); err != nil {
		c.abort()
		return fail(err)
	}
	m.mu.Lock()
	closed := m.closed
	if !closed {
		m.cells[c.name] = c
	}
	m.mu.Unlock()
	if closed {
		c.abort()
		return fail(fmt.Errorf("oci manager: %w", cell.ErrClosed))
	}
	m.log.Debug("container started", "cell", c.name, "pid", c.pid, "cgroup_id", c.cgID, "freezer", c.freezer)
	return c, nil
}

// start runs "<runtime> run" and waits until the runtime reports the
// container's PID (it writes the PID file only after the command was
// exec'd) or exits.
func (c *container) start(ctx context.Context, spec cell.Spec) error {
	m := c.m
	c.cmd = exec.Command(m.runtime,
		"--root", m.root,
		"--log", filepath.Join(c.bundle, logFile), "--log-format", "json",
		"run", "--bundle", c.bundle, "--pid-file", filepath.Join(c.bundle, pidFile), c.name)
	c.cmd.Stdout = spec.Stdout
	c.cmd.Stderr = spec.Stderr
	// Output copies end when every task holding the pipes is dead; bound
	// the wait for a task that escaped (it cannot: Kill empties the
	// cgroup).
	c.cmd.WaitDelay = closeTimeout
	// Its own process group: a ^C meant for the host must not reach the
	// runtime, which would forward it into the container.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		c.cmd = nil
		return fmt.Errorf("starting %s: %w", m.runtime, err)
	}
	go func() {
		err := c.cmd.Wait()
		if err != nil {
			if msg := c.runtimeLog(); msg != "" {
				err = fmt.Errorf("%w%s", err, msg)
			}
		}
		c.waitErr = err
		close(c.done)
	}()

	pidPath := filepath.Join(c.bundle, pidFile)
	err := cgroupfs.Poll(ctx, func() (bool, error) {
		b, err := os.ReadFile(pidPath)
		if err == nil && len(b) > 0 {
			pid, perr := strconv.Atoi(string(b))
			if perr != nil || pid <= 0 {
				return false, fmt.Errorf("%s: %w: %q", pidPath, ErrGarbage, b)
			}
			c.pid = pid
			return true, nil
		}
		select {
		case <-c.done:
			// The runtime may have written the file just before it
			// exited: look once more.
			if b, err := os.ReadFile(pidPath); err == nil && len(b) > 0 {
				return false, nil
			}
			return false, fmt.Errorf("%w: %s run: %w", ErrRuntime, filepath.Base(m.runtime), c.waitErr)
		default:
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	if c.cg.v2 == "" {
		return nil
	}
	if err := c.joinV2(); err != nil {
		if c.exited() || errors.Is(err, fs.ErrNotExist) {
			// The command has already run and the runtime removed the
			// cgroups: a cell that started and exited, not a failure.
			return nil
		}
		return err
	}
	id, err := cgroupID(c.cg.v2)
	if err != nil && !c.exited() && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	c.cgID = id
	return nil
}

// joinV2 makes sure the container has a cgroup2 directory: runc 1.1
// creates it even on hybrid hosts, but a runtime that does not leaves the
// eBPF meter blind, so create it and move the container's processes in.
func (c *container) joinV2() error {
	if _, err := os.Stat(filepath.Join(c.cg.v2, "cgroup.procs")); err == nil {
		return nil
	}
	if c.m.layout.Kind == cell.LayoutV2 {
		return fmt.Errorf("runtime did not create cgroup %s", c.cg.v2)
	}
	if err := os.MkdirAll(c.cg.v2, 0o755); err != nil {
		return fmt.Errorf("creating cgroup2 directory: %w", err)
	}
	pids, err := cgroupfs.ReadPIDs(filepath.Join(c.cg.procsDirV1(), "cgroup.procs"))
	if err != nil {
		return fmt.Errorf("listing container processes: %w", err)
	}
	for _, p := range pids {
		if err := cgroupfs.Write(filepath.Join(c.cg.v2, "cgroup.procs"), strconv.Itoa(p)); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("moving pid %d into %s: %w", p, c.cg.v2, err)
		}
	}
	return nil
}

// procsDirV1 is the first v1 directory of the container.
func (g cgroups) procsDirV1() string {
	for _, d := range []string{g.freezer, g.cpuacct, g.memory, g.pids} {
		if d != "" {
			return d
		}
	}
	return ""
}

// runtimeLog returns the errors the runtime logged, prefixed with ": ",
// or "".
func (c *container) runtimeLog() string {
	b, err := os.ReadFile(filepath.Join(c.bundle, logFile))
	if err != nil {
		return ""
	}
	return runtimeMessage(b)
}

// abort undoes a failed Start.
func (c *container) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if c.cmd != nil && c.cmd.Process != nil {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
		}
	}
	if err := c.m.destroy(ctx, c.name); err != nil {
		c.m.log.Warn("cleaning up after failed start", "cell", c.name, "err", err)
	}
	if c.cmd != nil {
		select {
		case <-c.done:
		case <-ctx.Done():
		}
	}
	c.m.release(c.name)
}

func (c *container) Name() string               { return c.name }
func (c *container) PID() int                   { return c.pid }
func (c *container) Backend() string            { return Backend }
func (c *container) Freezer() cell.FreezerKind  { return c.freezer }
func (c *container) CgroupID() uint64           { return c.cgID }
func (c *container) Done() <-chan struct{}      { return c.done }
func (c *container) Contains(pid int) bool      { return c.cg.contains(pid) }
func (c *container) Stats() (cell.Stats, error) { return c.stats() }
func (c *container) String() string             { return c.name + "[" + strconv.Itoa(c.pid) + "]" }
func (c *container) exited() bool               { return isClosed(c.done) }
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (c *container) stats() (cell.Stats, error) {
	st, err := c.cg.stats(c.freezer)
	if err != nil {
		if c.exited() {
			return st, fmt.Errorf("stats of container cell %q: %w", c.name, cell.ErrExited)
		}
		return st, fmt.Errorf("stats of container cell %q: %w", c.name, err)
	}
	return st, nil
}

// pauseTries bounds how often Pause asks the runtime to freeze.
const pauseTries = 5

// Pause runs the runtime's pause and returns once the kernel reports the
// container frozen. On failure (a runtime error, a container whose tasks
// do not freeze before ctx ends) the container is thawed again.
func (c *container) Pause(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exited() {
		return fmt.Errorf("pausing container cell %q: %w", c.name, cell.ErrExited)
	}
	if f, err := c.cg.frozen(c.freezer); err == nil && f {
		return nil // already paused: runc would say "not running"
	}
	err := c.m.command(ctx, "pause", c.name)
	// runc gives up on a v1 freeze that does not settle within its own
	// short patience ("unable to freeze"), as happens to busy tasks on a
	// loaded host; it has thawed the cgroup again, so asking again is safe.
	for try := 1; err != nil && try < pauseTries && strings.Contains(err.Error(), "unable to freeze") && ctx.Err() == nil; try++ {
		err = c.m.command(ctx, "pause", c.name)
	}
	if err == nil {
		err = cgroupfs.Poll(ctx, func() (bool, error) { return c.cg.frozen(c.freezer) })
	}
	if err != nil {
		return c.pauseFailed(ctx, err)
	}
	return nil
}

// pauseFailed thaws a container whose pause failed, and says why.
func (c *container) pauseFailed(ctx context.Context, err error) error {
	// Never leave a container half-frozen.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if rerr := c.m.command(tctx, "resume", c.name); rerr != nil {
		c.cg.thawNoWait()
	}
	if c.exited() {
		err = errors.Join(err, cell.ErrExited)
	}
	return fmt.Errorf("pausing container cell %q: %w", c.name, err)
}

// Resume runs the runtime's resume and returns once the kernel reports
// the container thawed.
func (c *container) Resume(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.m.command(ctx, "resume", c.name)
	if err == nil {
		err = cgroupfs.Poll(ctx, func() (bool, error) {
			f, err := c.cg.frozen(c.freezer)
			return !f, err
		})
	}
	if err != nil {
		if c.exited() {
			err = errors.Join(err, cell.ErrExited)
		}
		return fmt.Errorf("resuming container cell %q: %w", c.name, err)
	}
	return nil
}

// Kill runs "<runtime> kill --all <id> KILL" (the runtime thaws a paused
// container so its tasks can die), falls back to SIGKILL of every task
// in the cgroup, and returns once the runtime has exited.
func (c *container) Kill(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exited() {
		return nil
	}
	if err := c.m.command(ctx, "kill", "--all", c.name, "KILL"); err != nil && !c.exited() {
		c.m.log.Debug("runtime kill failed, killing the cgroup", "cell", c.name, "err", err)
		if d := c.cg.procsDir(); d != "" {
			if kerr := killDir(ctx, d); kerr != nil {
				return fmt.Errorf("killing container cell %q: %w", c.name, errors.Join(err, kerr))
			}
		}
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		// The runtime itself may hang on a misbehaving container: it
		// is our child, so end it too.
		_ = c.cmd.Process.Kill()
		return fmt.Errorf("killing container cell %q: waiting for %s: %w", c.name, filepath.Base(c.m.runtime), ctx.Err())
	}
}

// Wait waits for the container's process to exit and returns the
// runtime's exit error: the container's exit status, as exec.Cmd.Wait
// reports it, with the runtime's own error message where it logged one.
func (c *container) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.waitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close kills the container, deletes it from the runtime, and removes
// its cgroups and bundle. It is idempotent and waits at most about 10 s.
func (c *container) Close() error {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		var errs []error
		if err := c.Kill(ctx); err != nil {
			errs = append(errs, err)
		}
		select {
		case <-c.done:
		case <-ctx.Done():
		}
		if err := c.m.destroy(ctx, c.name); err != nil {
			errs = append(errs, err)
		}
		c.m.release(c.name)
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}
