package cell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"

	"github.com/maxwellhq/maxwell/internal/cpuset"
)

// Spec describes the command a cell runs.
type Spec struct {
	// Name names the cell, and its cgroup: see ErrInvalidName.
	Name string
	// Path is the command, looked up in the host's PATH if it holds no
	// slash; a relative path with a slash is taken from Dir.
	Path string
	// Args are the command's arguments, not counting the command itself
	// (as in exec.Command(Path, Args...)); argv[0] is Path.
	Args []string
	// Env is the command's environment; nil means the host's.
	Env []string
	// Dir is the command's working directory; "" means the host's. The
	// shim enters it after taking on Credential, so a cell cannot start
	// in a directory its user could not enter.
	Dir string
	// Credential, if set, is the user and groups the command runs as:
	// the shim drops to them (setgroups, setgid, setuid) just before it
	// execs the command, once it is in the cell's cgroups, so the command
	// never runs with the manager's privileges. nil keeps the manager's.
	// Groups nil means none: a user's supplementary groups must be given.
	Credential *syscall.Credential
	// CPUs pins the cell to these CPUs (cpuset where the layout has one,
	// and sched_setaffinity of the first task in every case); empty
	// means no pinning.
	CPUs []int
	// Stdout and Stderr receive the command's output; nil discards it.
	Stdout, Stderr io.Writer
	// Freezer overrides the manager's freezer for this cell.
	// FreezerSignal makes a signal cell, in no cgroup at all.
	Freezer FreezerKind
}

// Stats are a cell's resource figures at one instant.
type Stats struct {
	// CPUTime is the cumulative CPU time of all tasks of the cell,
	// including those that have exited (for signal cells: those reaped
	// by a live member, at 10 ms resolution).
	CPUTime time.Duration
	// MemoryBytes is the current memory usage in bytes: the memory
	// cgroup's usage (page cache included), or the summed resident set
	// of a signal cell; 0 where the layout accounts no memory.
	MemoryBytes uint64
	// PIDs is the number of tasks (threads) in the cell.
	PIDs int
	// Frozen reports whether the cell's freezer says it is stopped.
	Frozen bool
}

// Cell is a command running in its own cgroup(s) (or, for the signal
// backend, its own process group) that can be pinned, paused, resumed,
// measured and killed as a whole.
type Cell interface {
	// Name returns the cell's name.
	Name() string
	// PID returns the process id of the cell's main process.
	PID() int
	// Backend returns "cgroup-v2", "cgroup-hybrid", "cgroup-v1" or
	// "signal".
	Backend() string
	// Freezer returns the freezer Pause uses.
	Freezer() FreezerKind
	// CgroupID returns the id of the cell's cgroup2 directory (its
	// inode number, what bpf_get_current_cgroup_id returns for its
	// tasks), or 0 if the cell has none.
	CgroupID() uint64
	// Pause stops every task of the cell and returns once the kernel
	// reports them all stopped (freezer.state FROZEN, cgroup.events
	// "frozen 1", or state T in /proc). On failure the cell is thawed
	// again.
	Pause(ctx context.Context) error
	// Resume undoes Pause and returns once the kernel reports the cell
	// running again.
	Resume(ctx context.Context) error
	// Kill SIGKILLs every task of the cell, thawing it where needed,
	// and returns once the cell is empty and its main process reaped.
	Kill(ctx context.Context) error
	// Wait waits for the main process to exit and returns its exit
	// error, as exec.Cmd.Wait does.
	Wait(ctx context.Context) error
	// Done is closed once the main process has exited.
	Done() <-chan struct{}
	// Stats reads the cell's resource figures.
	Stats() (Stats, error)
	// Contains reports whether pid is a task of the cell.
	Contains(pid int) bool
	// Close kills the cell, thaws it, and removes its cgroups. It is
	// idempotent and waits at most about 10 s.
	Close() error
}

// UsageReader is implemented by cells that read the two figures a daemon
// takes of every cell every tick — CPU time and memory — more cheaply than
// Stats, which also reads the freezer and counts the tasks.
type UsageReader interface {
	// Usage returns Stats with CPUTime and MemoryBytes set.
	Usage() (Stats, error)
}

// ReadUsage returns c's CPU time and memory: by c.Usage where c is a
// UsageReader, else by c.Stats.
func ReadUsage(c Cell) (Stats, error) {
	if u, ok := c.(UsageReader); ok {
		return u.Usage()
	}
	return c.Stats()
}

// cell implements Cell for both backends: cg is set for cgroup cells, pg
// for signal cells.
type cell struct {
	m       *Manager
	name    string
	backend string
	freezer FreezerKind
	cmd     *exec.Cmd
	pid     int
	cg      *cgroupSet
	pg      *procGroup
	cgID    uint64

	done    chan struct{}
	waitErr error

	copies  sync.WaitGroup
	readers []*os.File

	mu        sync.Mutex // serialises Pause, Resume, Kill
	closeOnce sync.Once
	closeErr  error
}

// Start starts spec's command as a new cell. The command does not run a
// single instruction outside the cell's cgroups: the shim is moved into
// them before it execs the command. On error nothing is left behind.
func (m *Manager) Start(ctx context.Context, spec Spec) (Cell, error) {
	if err := validName(spec.Name); err != nil {
		return nil, err
	}
	fail := func(err error) (Cell, error) { return nil, fmt.Errorf("starting cell %q: %w", spec.Name, err) }
	freezer := spec.Freezer
	if freezer == "" || freezer == FreezerAuto {
		freezer = m.layout.Freezer
	}
	if !slices.Contains(m.layout.Freezers, freezer) {
		return fail(fmt.Errorf("freezer %q (this host offers %v): %w", freezer, m.layout.Freezers, ErrFreezerUnavailable))
	}
	signalCell := freezer == FreezerSignal
	// A relative path with a slash is the user's, from their directory.
	path := spec.Path
	if strings.ContainsRune(path, '/') && !filepath.IsAbs(path) && spec.Dir != "" {
		path = filepath.Join(spec.Dir, path)
	}
	path, err := exec.LookPath(path)
	if err != nil {
		return fail(err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return fail(err)
	}
	if spec.Dir != "" {
		if fi, err := os.Stat(spec.Dir); err != nil {
			return fail(fmt.Errorf("working directory: %w", err))
		} else if !fi.IsDir() {
			return fail(fmt.Errorf("working directory %s: not a directory", spec.Dir))
		}
	}
	cpus := ""
	if len(spec.CPUs) > 0 {
		allowed, err := m.allowedCPUs(signalCell)
		if err != nil {
			return fail(err)
		}
		for _, c := range spec.CPUs {
			if !slices.Contains(allowed, c) {
				return fail(fmt.Errorf("%w: %d (allowed: %s)", ErrInvalidCPU, c, cpuset.Format(allowed)))
			}
		}
		cpus = cpuset.Format(spec.CPUs)
	}
	if err := m.reserve(spec.Name); err != nil {
		return fail(err)
	}

	c := &cell{m: m, name: spec.Name, freezer: freezer, done: make(chan struct{})}
	if signalCell {
		c.backend = "signal"
	} else {
		c.backend = m.layout.Backend()
		c.cg = m.cellSet(spec.Name)
		if err := m.makeCell(spec.Name, c.cg, cpus); err != nil {
			m.release(spec.Name)
			return fail(err)
		}
		c.cg.files = cgroupfs.NewFiles()
		if c.cg.V2 != "" {
			if c.cgID, err = cgroupID(c.cg.V2); err != nil {
				c.abort()
				return fail(err)
			}
		}
	}
	if err := c.start(ctx, spec, path, cpus); err != nil {
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
		// Close ran while we were starting and did not see this cell.
		c.abort()
		return fail(fmt.Errorf("cell manager: %w", ErrClosed))
	}
	m.log.Debug("cell started", "cell", c.name, "pid", c.pid, "backend", c.backend, "freezer", c.freezer, "cgroup_id", c.cgID)
	return c, nil
}

// makeCell registers s with the guard, then creates its directories and
// sets the cpuset. A directory that already exists is ErrExists.
func (m *Manager) makeCell(name string, s *cgroupSet, cpus string) error {
	if err := m.guard.send(guardMsg{Op: "add", Name: name, Cgroups: s}); err != nil {
		return err
	}
	var made []string
	undo := func() {
		for _, d := range slices.Backward(made) {
			os.Remove(d)
		}
		_ = m.guard.send(guardMsg{Op: "del", Name: name})
	}
	for _, d := range s.dirs() {
		err := os.Mkdir(d, 0o755)
		if errors.Is(err, fs.ErrNotExist) {
			// Another manager with the same Parent removed it when its
			// last cell went (an empty cgroup is removable by anyone):
			// make it again, once.
			if perr := m.createParent(m.layout); perr != nil {
				undo()
				return fmt.Errorf("recreating the parent cgroup: %w", perr)
			}
			err = os.Mkdir(d, 0o755)
		}
		if err != nil {
			undo()
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: cgroup %s is left over from an earlier run (Sweep removes it)", ErrExists, d)
			}
			return fmt.Errorf("creating cgroup: %w", err)
		}
		made = append(made, d)
	}
	if cs := s.V1["cpuset"]; cs != "" {
		// Both must be set before a task may join.
		err := inheritCpuset(filepath.Dir(cs), cs, "cpuset.mems")
		if err == nil && cpus != "" {
			err = cgroupfs.Write(filepath.Join(cs, "cpuset.cpus"), cpus)
		}
		if err == nil {
			err = inheritCpuset(filepath.Dir(cs), cs, "cpuset.cpus")
		}
		if err != nil {
			undo()
			return fmt.Errorf("setting cpuset: %w", err)
		}
	} else if cpus != "" && s.V2 != "" && cgroupfs.Exists(filepath.Join(s.V2, "cpuset.cpus")) {
		if err := cgroupfs.Write(filepath.Join(s.V2, "cpuset.cpus"), cpus); err != nil {
			undo()
			return fmt.Errorf("setting cpuset: %w", err)
		}
	}
	return nil
}

// abort undoes a failed Start.
func (c *cell) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if c.pg != nil {
		if err := c.pg.kill(ctx); err != nil {
			c.m.log.Warn("killing after failed start", "cell", c.name, "err", err)
		}
	}
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	if c.cg != nil {
		if err := c.cg.cleanup(ctx); err != nil {
			c.m.log.Warn("cleaning up after failed start", "cell", c.name, "err", err)
		}
	}
	c.closeIO()
	_ = c.m.guard.send(guardMsg{Op: "del", Name: c.name})
	c.m.release(c.name)
}

// output returns the file to hand the child for w: w itself if it is a
// file, else the write end of a pipe copied into w, which it also adds to
// *childEnds for the caller to close once the child has its copy.
func (c *cell) output(w io.Writer, childEnds *[]*os.File) (*os.File, error) {
	if w == nil {
		return nil, nil
	}
	if f, ok := w.(*os.File); ok {
		return f, nil
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	*childEnds = append(*childEnds, pw)
	c.readers = append(c.readers, r)
	c.copies.Add(1)
	go func() {
		defer c.copies.Done()
		_, _ = io.Copy(w, r)
	}()
	return pw, nil
}

// closeIO waits for the output copies to drain (they end once every task
// holding the pipes is dead), at most closeTimeout, then closes the read
// ends.
func (c *cell) closeIO() {
	drained := make(chan struct{})
	go func() { c.copies.Wait(); close(drained) }()
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
	}
	for _, r := range c.readers {
		r.Close()
	}
}

// start runs the shim, moves it into the cell, and releases it to exec
// the command.
func (c *cell) start(ctx context.Context, spec Spec, path, cpus string) error {
	// The child's ends of every pipe: the parent must close its copies
	// once the child has started (or failed to), so that EOF can come.
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	stdout, err := c.output(spec.Stdout, &childEnds)
	if err != nil {
		return err
	}
	stderr, err := c.output(spec.Stderr, &childEnds)
	if err != nil {
		return err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyW.Close()
	childEnds = append(childEnds, readyR)
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer statusR.Close()
	childEnds = append(childEnds, statusW)

	argv := append([]string{c.m.shim, shimArg, cpus, formatCredential(spec.Credential), spec.Dir, path, path}, spec.Args...)
	c.cmd = &exec.Cmd{
		Path:        c.m.shim,
		Args:        argv,
		Env:         spec.Env,
		Stdout:      stdout,
		Stderr:      stderr,
		ExtraFiles:  []*os.File{readyR, statusW},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	err = c.cmd.Start()
	for _, f := range childEnds {
		f.Close()
	}
	childEnds = nil
	if err != nil {
		c.cmd = nil
		return fmt.Errorf("starting shim %s: %w", c.m.shim, err)
	}
	c.pid = c.cmd.Process.Pid
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()

	if c.cg != nil {
		if err := c.cg.join(c.pid); err != nil {
			return err
		}
	} else {
		c.pg = newProcGroup(c.m.opts.ProcRoot, c.m.pfs, c.pid)
		if err := c.m.guard.send(guardMsg{Op: "add", Name: c.name, PGID: c.pid}); err != nil {
			return err
		}
	}
	if _, err := readyW.Write([]byte{'g'}); err != nil {
		return fmt.Errorf("releasing shim: %w", err)
	}
	readyW.Close()

	// The status pipe is close-on-exec in the shim: EOF with nothing
	// read means the exec succeeded.
	msg := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(statusR)
		msg <- b
	}()
	select {
	case b := <-msg:
		if len(b) > 0 {
			return fmt.Errorf("cell shim: %s", b)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the command to start: %w", ctx.Err())
	}
}

func (c *cell) Name() string         { return c.name }
func (c *cell) PID() int             { return c.pid }
func (c *cell) Backend() string      { return c.backend }
func (c *cell) Freezer() FreezerKind { return c.freezer }
func (c *cell) CgroupID() uint64     { return c.cgID }
func (c *cell) Done() <-chan struct{} {
	return c.done
}

// Pause implements Cell.
func (c *cell) Pause(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	switch c.freezer {
	case FreezerV1:
		err = c.cg.freezeV1(ctx)
	case FreezerV2:
		err = c.cg.freezeV2(ctx)
	default:
		err = c.pg.stop(ctx)
	}
	if err != nil {
		// Never leave a cell half-frozen.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		if terr := c.resume(tctx); terr != nil && !errors.Is(terr, ErrExited) {
			c.m.log.Warn("thawing after failed pause", "cell", c.name, "err", terr)
		}
		return fmt.Errorf("pausing cell %q: %w", c.name, err)
	}
	return nil
}

// Resume implements Cell.
func (c *cell) Resume(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.resume(ctx); err != nil {
		return fmt.Errorf("resuming cell %q: %w", c.name, err)
	}
	return nil
}

func (c *cell) resume(ctx context.Context) error {
	switch c.freezer {
	case FreezerV1:
		return c.cg.thawV1(ctx)
	case FreezerV2:
		return c.cg.thawV2(ctx)
	}
	return c.pg.cont(ctx)
}

// Kill implements Cell.
func (c *cell) Kill(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if c.cg != nil {
		err = c.cg.kill(ctx)
	} else {
		err = c.pg.kill(ctx)
	}
	if err != nil {
		return fmt.Errorf("killing cell %q: %w", c.name, err)
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("killing cell %q: waiting for pid %d: %w", c.name, c.pid, ctx.Err())
	}
}

// Wait implements Cell.
func (c *cell) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.waitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats implements Cell.
func (c *cell) Stats() (Stats, error) {
	if c.pg != nil {
		st, err := c.pg.stats()
		if err != nil {
			return st, fmt.Errorf("stats of cell %q: %w", c.name, err)
		}
		return st, nil
	}
	st, err := c.cg.stats()
	if err == nil {
		switch c.freezer {
		case FreezerV1:
			st.Frozen, err = c.cg.frozenV1()
		case FreezerV2:
			st.Frozen, err = c.cg.frozenV2()
		}
	}
	if err != nil {
		return st, fmt.Errorf("stats of cell %q: %w", c.name, err)
	}
	return st, nil
}

// Usage implements UsageReader: one read each of the CPU time and the
// memory of a cgroup cell, through descriptors kept open.
func (c *cell) Usage() (Stats, error) {
	if c.pg != nil {
		return c.Stats()
	}
	u, err := c.cg.files.ReadCPUMemory(c.cg.usageDirs())
	if err != nil {
		return Stats{}, fmt.Errorf("usage of cell %q: %w", c.name, err)
	}
	return Stats{CPUTime: u.CPUTime, MemoryBytes: u.MemoryBytes}, nil
}

// Contains implements Cell.
func (c *cell) Contains(pid int) bool {
	if c.pg != nil {
		return c.pg.contains(pid)
	}
	return c.cg.contains(pid)
}

// Close implements Cell.
func (c *cell) Close() error {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		var errs []error
		if err := c.Kill(ctx); err != nil {
			errs = append(errs, err)
		}
		if c.cg != nil {
			if err := c.cg.remove(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		c.closeIO()
		// A cell that could not be cleaned up stays with the guard,
		// which tries again when the host exits.
		if len(errs) == 0 {
			if err := c.m.guard.send(guardMsg{Op: "del", Name: c.name}); err != nil && !errors.Is(err, ErrClosed) {
				errs = append(errs, err)
			}
		}
		c.m.release(c.name)
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// String returns the cell's name and main PID.
func (c *cell) String() string { return c.name + "[" + strconv.Itoa(c.pid) + "]" }
