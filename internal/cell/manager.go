package cell

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"

	"github.com/maxwellhq/maxwell/internal/cpuset"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// closeTimeout bounds the waits of the methods that take no context:
// Cell.Close and Manager.Close.
const closeTimeout = 10 * time.Second

// Options configure a Manager.
type Options struct {
	// CgroupRoot is the directory the cgroup file systems are mounted at
	// or under, as named in mountinfo (usually /sys/fs/cgroup).
	CgroupRoot string
	// ProcRoot is the proc file system (usually /proc). The layout is
	// read from <ProcRoot>/self/mountinfo; signal cells are read from
	// <ProcRoot>/<pid>/stat.
	ProcRoot string
	// Parent is the cgroup, below each hierarchy's root, that holds the
	// cells: one path element ("maxwell" by default).
	Parent string
	// Freezer is the freezer cells get unless their Spec names one.
	// FreezerAuto (or "") picks the best the layout offers.
	Freezer FreezerKind
	// ShimPath is the binary re-executed as shim and guard; it must call
	// RunShimIfRequested first thing. "" means os.Executable().
	ShimPath string
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
}

// DefaultOptions returns the options for the real host: cgroups under
// /sys/fs/cgroup, proc at /proc, cells under "maxwell", automatic freezer.
func DefaultOptions() Options {
	return Options{
		CgroupRoot: "/sys/fs/cgroup",
		ProcRoot:   "/proc",
		Parent:     "maxwell",
		Freezer:    FreezerAuto,
	}
}

// Manager starts and tracks cells.
//
// # The guard
//
// A cell must never be left frozen, nor left running unsupervised, even
// if the host process is killed with SIGKILL and no deferred code runs.
// So NewManager starts one guard process: the host binary re-executed
// (see RunShimIfRequested) outside every cell, in its own process group,
// with its stdin the read end of a pipe whose only write end the Manager
// holds. Before a cell's first process exists the Manager writes the
// cell's cgroup directories to the pipe (for a signal cell, its process
// group, before the shim is released), and it writes the cell's removal
// once the cell is closed. When the pipe reaches EOF, which the kernel
// makes happen however the host dies, the guard thaws every cell still
// listed, kills all its tasks, removes its cgroups, and exits. (SIGINT,
// SIGTERM and SIGHUP to the guard do the same.) Manager.Close closes the
// pipe after closing every cell, so the guard then has nothing to do and
// exits; Close waits for it and kills it if it lingers.
//
// The guard has no Pdeathsig: it must outlive the host to clean up, and
// in Go Pdeathsig fires when the forking OS thread exits, not the process.
// A cell stays listed until it is closed, even after its command exits,
// so close every cell you start: for a signal cell the guard would
// otherwise signal a process group whose id may have been reused.
//
// Cells left behind anyway (the guard killed too, a power cut) are found
// and removed by Sweep. Signal cells cannot be found by Sweep.
//
// A Manager is safe for concurrent use, as are its cells.
type Manager struct {
	opts   Options
	log    *slog.Logger
	layout Layout
	shim   string
	pfs    procfs.FS
	parent cgroupSet // the Parent directories
	guard  *guardClient

	// lock holds an flock on the Parent cgroup's directory for the
	// manager's life: one manager per parent.
	lock *os.File

	mu      sync.Mutex
	cells   map[string]*cell // nil value: name reserved while starting, or adopted
	adopted map[string]*adopted
	closed  bool
}

// NewManager detects the cgroup layout, prepares the Parent cgroups, and
// starts the guard. Where cgroups are not mounted or cannot be written it
// falls back to the signal backend and says why in Layout().Reason.
func NewManager(opts Options) (*Manager, error) {
	def := DefaultOptions()
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = def.CgroupRoot
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = def.ProcRoot
	}
	if opts.Parent == "" {
		opts.Parent = def.Parent
	}
	if opts.Freezer == "" {
		opts.Freezer = FreezerAuto
	}
	if err := validName(opts.Parent); err != nil {
		return nil, fmt.Errorf("parent cgroup: %w", err)
	}
	m := &Manager{opts: opts, log: opts.Logger, shim: opts.ShimPath, cells: make(map[string]*cell), adopted: make(map[string]*adopted)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.shim == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding own binary for the cell shim: %w", err)
		}
		m.shim = exe
	}
	pfs, err := procfs.NewFS(opts.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("proc file system at %s: %w", opts.ProcRoot, err)
	}
	m.pfs = pfs

	m.layout = m.detect()
	if err := m.lockParent(); err != nil {
		return nil, err
	}
	switch opts.Freezer {
	case FreezerAuto:
	case FreezerV1, FreezerV2, FreezerSignal:
		if !slices.Contains(m.layout.Freezers, opts.Freezer) {
			m.removeParent()
			m.unlockParent()
			return nil, fmt.Errorf("freezer %s on %s: %w", opts.Freezer, m.layout, ErrFreezerUnavailable)
		}
		m.layout.Freezer = opts.Freezer
		m.layout.Reason += fmt.Sprintf("; freezer %s as configured", opts.Freezer)
	default:
		m.removeParent()
		m.unlockParent()
		return nil, fmt.Errorf("freezer %q: %w", opts.Freezer, ErrFreezerUnavailable)
	}

	g, err := startGuard(m.shim, opts.ProcRoot)
	if err != nil {
		m.removeParent()
		m.unlockParent()
		return nil, err
	}
	m.guard = g
	m.log.Debug("cell manager ready", "layout", m.layout.String(), "guard_pid", g.cmd.Process.Pid)
	return m, nil
}

// detect reads mountinfo, then makes sure the Parent cgroups exist and
// can be written, falling back to signals if they cannot.
func (m *Manager) detect() Layout {
	mi := filepath.Join(m.opts.ProcRoot, "self", "mountinfo")
	f, err := os.Open(mi)
	if err != nil {
		return signalOnly(fmt.Sprintf("cannot read %s (%v); falling back to process-group signals", mi, err))
	}
	defer f.Close()
	l, err := DetectLayout(f, m.opts.CgroupRoot)
	if err != nil {
		return signalOnly(fmt.Sprintf("%v; falling back to process-group signals", err))
	}
	if l.Kind == LayoutNone {
		return l
	}
	if err := m.makeParent(l); err != nil {
		m.removeParent()
		return signalOnly(fmt.Sprintf("%s, but cgroups are not writable (%v); falling back to process-group signals", l.Reason, err))
	}
	// Keep only the freezers whose files really exist.
	var fz []FreezerKind
	for _, k := range l.Freezers {
		switch {
		case k == FreezerV1 && !cgroupfs.Exists(filepath.Join(m.parent.V1["freezer"], "freezer.state")):
			l.Reason += "; v1 freezer has no freezer.state"
		case k == FreezerV2 && !cgroupfs.Exists(filepath.Join(m.parent.V2, "cgroup.freeze")):
			l.Reason += "; cgroup2 has no cgroup.freeze (kernel older than 5.2)"
		default:
			fz = append(fz, k)
		}
	}
	l.Freezers = fz
	l.Freezer = fz[0]
	if l.Freezer == FreezerSignal {
		l.Reason += "; no cgroup freezer, pausing with signals"
	}
	return l
}

func signalOnly(reason string) Layout {
	return Layout{Kind: LayoutNone, Freezer: FreezerSignal, Freezers: []FreezerKind{FreezerSignal}, Reason: reason}
}

// makeParent creates the Parent cgroup in every hierarchy of l and
// prepares it: cpuset.cpus and cpuset.mems copied from the root in v1, the
// cpu, cpuset, memory and pids controllers enabled for children on pure v2.
func (m *Manager) makeParent(l Layout) error {
	m.parent = cgroupSet{}
	if len(l.V1) > 0 {
		m.parent.V1 = make(map[string]string)
	}
	for c, mount := range l.V1 {
		m.parent.V1[c] = filepath.Join(mount, m.opts.Parent)
	}
	if l.Unified != "" {
		m.parent.V2 = filepath.Join(l.Unified, m.opts.Parent)
	}
	if l.Kind == LayoutV2 {
		// Enable what we can in the root, then in the parent; a
		// controller the kernel lacks is simply not offered.
		enableControllers(l.Unified, m.log)
	}
	return m.createParent(l)
}

// createParent creates the Parent directories m.parent names, if they do
// not exist, and prepares them. It does not change m.parent, so it may run
// beside readers of it.
func (m *Manager) createParent(l Layout) error {
	for _, d := range m.parent.dirs() {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if cs := m.parent.V1["cpuset"]; cs != "" {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if err := inheritCpuset(filepath.Dir(cs), cs, f); err != nil {
				return err
			}
		}
	}
	if l.Kind == LayoutV2 {
		enableControllers(m.parent.V2, m.log)
	}
	return nil
}

// enableControllers writes "+cpu +cpuset +memory +pids" (those offered in
// cgroup.controllers) to dir's cgroup.subtree_control. Failures are logged:
// a missing controller costs a statistic, not the cell.
func enableControllers(dir string, log *slog.Logger) {
	avail, err := cgroupfs.ReadString(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		log.Warn("reading cgroup controllers", "dir", dir, "err", err)
		return
	}
	have := strings.Fields(avail)
	for _, c := range []string{"cpu", "cpuset", "memory", "pids"} {
		if !slices.Contains(have, c) {
			continue
		}
		if err := cgroupfs.Write(filepath.Join(dir, "cgroup.subtree_control"), "+"+c); err != nil {
			log.Warn("enabling cgroup controller", "dir", dir, "controller", c, "err", err)
		}
	}
}

// inheritCpuset copies a v1 cpuset file from parent to child if the
// child's is empty: a v1 cpuset takes no task until both cpuset.cpus and
// cpuset.mems are set.
func inheritCpuset(parent, child, file string) error {
	cur, err := cgroupfs.ReadString(filepath.Join(child, file))
	if err != nil || cur != "" {
		return err
	}
	v, err := cgroupfs.ReadString(filepath.Join(parent, file))
	if err != nil {
		return err
	}
	return cgroupfs.Write(filepath.Join(child, file), v)
}

// removeParent removes the Parent cgroups if they are empty.
func (m *Manager) removeParent() {
	for _, d := range m.parent.dirs() {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.log.Debug("parent cgroup kept", "dir", d, "err", err)
		}
	}
}

// Layout returns what NewManager detected and chose.
func (m *Manager) Layout() Layout {
	l := m.layout
	l.V1 = maps.Clone(l.V1)
	l.Freezers = slices.Clone(l.Freezers)
	return l
}

// validName checks a cell or parent name: 1 to 64 bytes of ASCII letters,
// digits, '.', '_' and '-', not "." or "..".
func validName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 64 {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("%w: %q holds %q", ErrInvalidName, name, r)
		}
	}
	return nil
}

// allowedCPUs returns the CPUs a cell of the given freezer may be pinned
// to: the parent cpuset's effective CPUs where there is one, else the
// host process's own affinity.
func (m *Manager) allowedCPUs(signalCell bool) ([]int, error) {
	if !signalCell {
		var files []string
		if cs := m.parent.V1["cpuset"]; cs != "" {
			files = append(files, filepath.Join(cs, "cpuset.effective_cpus"), filepath.Join(cs, "cpuset.cpus"))
		}
		if m.layout.Kind == LayoutV2 && m.parent.V2 != "" {
			files = append(files, filepath.Join(m.parent.V2, "cpuset.cpus.effective"))
		}
		for _, f := range files {
			if s, err := cgroupfs.ReadString(f); err == nil && s != "" {
				cpus, err := cpuset.Parse(s)
				if err != nil {
					return nil, fmt.Errorf("%s: %w: %v", f, ErrGarbage, err)
				}
				return cpus, nil
			}
		}
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// reserve claims name in m.cells for a cell being started.
func (m *Manager) reserve(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("cell manager: %w", ErrClosed)
	}
	if _, dup := m.cells[name]; dup {
		return fmt.Errorf("cell %q: %w", name, ErrExists)
	}
	m.cells[name] = nil
	return nil
}

func (m *Manager) release(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cells, name)
}

// cellSet returns the cgroup directories a cell named name has (or would
// have) under m.
func (m *Manager) cellSet(name string) *cgroupSet {
	s := &cgroupSet{}
	if len(m.parent.V1) > 0 {
		s.V1 = make(map[string]string)
	}
	for c, d := range m.parent.V1 {
		s.V1[c] = filepath.Join(d, name)
	}
	if m.parent.V2 != "" {
		s.V2 = filepath.Join(m.parent.V2, name)
	}
	return s
}

// Sweep finds cells left under Parent by a host that died without its
// guard cleaning up (or by another manager using the same Parent: only
// one live manager may use a Parent), thaws and kills them, removes their
// cgroups, and returns their names, sorted. Cells of m itself are left
// alone.
func (m *Manager) Sweep(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("cell manager: %w", ErrClosed)
	}
	own := make(map[string]bool, len(m.cells))
	for n := range m.cells {
		own[n] = true
	}
	m.mu.Unlock()

	found := make(map[string]bool)
	for _, d := range m.parent.dirs() {
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("sweeping %s: %w", d, err)
		}
		for _, e := range ents {
			if e.IsDir() && !own[e.Name()] {
				found[e.Name()] = true
			}
		}
	}
	var names []string
	var errs []error
	for n := range found {
		names = append(names, n)
		s := m.cellSet(n)
		if err := s.cleanup(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sweeping cell %q: %w", n, err))
		}
		m.log.Info("swept leftover cell", "cell", n)
	}
	sort.Strings(names)
	return names, errors.Join(errs...)
}

// Close closes every cell, lets go of every adopted one, stops the guard, and removes the Parent cgroups
// if nothing else uses them. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var cells []*cell
	for _, c := range m.cells {
		if c != nil {
			cells = append(cells, c)
		}
	}
	var adopted []*adopted
	for _, a := range m.adopted {
		adopted = append(adopted, a)
	}
	m.mu.Unlock()

	var errs []error
	for _, c := range cells {
		errs = append(errs, c.Close())
	}
	for _, a := range adopted {
		errs = append(errs, a.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := m.guard.close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping cell guard: %w", err))
	}
	m.removeParent()
	m.unlockParent()
	return errors.Join(errs...)
}

// lockParent takes an exclusive flock on the Parent cgroup's first
// directory, held until Close (or the process's end: the kernel drops it),
// so that a second manager on the same parent — another Maxwell, whose
// sweep would kill this one's cells — fails at once with ErrParentBusy.
// The signal backend has no cgroups, and nothing to lock.
func (m *Manager) lockParent() error {
	dirs := m.parent.dirs()
	if m.layout.Kind == LayoutNone || len(dirs) == 0 {
		return nil
	}
	f, err := os.Open(dirs[0])
	if err != nil {
		m.removeParent()
		return fmt.Errorf("parent cgroup %s: %w", dirs[0], err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := "another process"
			if pid := flockHolder(m.opts.ProcRoot, f); pid > 0 {
				who = fmt.Sprintf("process %d", pid)
			}
			return fmt.Errorf("%w: %s holds cgroup parent %q (%s); give each economy a parent of its own", ErrParentBusy, who, m.opts.Parent, dirs[0])
		}
		return fmt.Errorf("locking parent cgroup %s: %w", dirs[0], err)
	}
	m.lock = f
	return nil
}

func (m *Manager) unlockParent() {
	if m.lock != nil {
		m.lock.Close() // closing the last descriptor drops the flock
		m.lock = nil
	}
}

// flockHolder finds, in <proc>/locks, the process that holds an flock on
// f's inode; 0 if it cannot tell.
func flockHolder(procRoot string, f *os.File) int {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(procRoot, "locks"))
	if err != nil {
		return 0
	}
	// "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"
	suffix := ":" + strconv.FormatUint(st.Ino, 10)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && strings.HasSuffix(f[5], suffix) {
			if pid, err := strconv.Atoi(f[4]); err == nil {
				return pid
			}
		}
	}
	return 0
}

// cgroupID returns the id of the cgroup2 directory dir: its inode number,
// which is what bpf_get_current_cgroup_id() returns for its tasks.
func cgroupID(dir string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", dir, err)
	}
	return st.Ino, nil
}
