package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// Errors returned by this package, besides those of package cell
// (cell.ErrInvalidName, cell.ErrExists, cell.ErrClosed,
// cell.ErrFreezerUnavailable, cell.ErrExited), which it returns where
// they mean the same.
var (
	// ErrRuntime means the OCI runtime failed; the error carries the
	// runtime's own message.
	ErrRuntime = errors.New("oci runtime failed")
	// ErrNoCgroups means the host has no writable cgroup hierarchy to put
	// containers in.
	ErrNoCgroups = errors.New("no cgroup hierarchy for containers")
)

// Backend is what Cell.Backend returns for a container cell.
const Backend = "oci"

// defaultCommandTimeout bounds one runtime invocation (pause, resume,
// kill, delete) when the caller's context has no earlier deadline.
const defaultCommandTimeout = 10 * time.Second

// closeTimeout bounds Cell.Close and Manager.Close.
const closeTimeout = 10 * time.Second

// DefaultEnv is the environment of a container whose Spec.Env is nil: the
// host's environment is never passed into a container.
var defaultEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// DefaultEnv returns the environment a container gets when its Spec.Env
// is nil: only PATH. The host's environment never leaks into a container.
func DefaultEnv() []string { return append([]string(nil), defaultEnv...) }

// Mount is a bind mount of a host path into every container.
type Mount struct {
	// Source is the host path (a file or directory).
	Source string
	// Destination is the absolute path inside the container.
	Destination string
	// ReadOnly mounts it read-only.
	ReadOnly bool
}

// Options configure a Manager.
type Options struct {
	// Runtime is the OCI runtime binary: "runc" (the default) or "crun",
	// or a path to one. Any runtime with runc's command line works.
	Runtime string
	// RootFS is the container root file system directory (see
	// BuildRootFS). It is mounted read-only in every container.
	RootFS string
	// StateDir holds the runtime's state (its --root) and the bundles.
	// It must be private to this Manager: NewManager deletes every
	// container it finds there. Default /run/maxwell/oci.
	StateDir string
	// Parent is the cgroup, below each hierarchy's root, that holds the
	// containers' cgroups. Default "maxwell-oci"; it must differ from
	// the cell.Manager's Parent, whose Sweep would take containers for
	// leftovers.
	Parent string
	// CgroupRoot is where the cgroup file systems are mounted (usually
	// /sys/fs/cgroup).
	CgroupRoot string
	// ProcRoot is the proc file system (usually /proc); the layout is
	// read from <ProcRoot>/self/mountinfo.
	ProcRoot string
	// Mounts are bind-mounted into every container, e.g. the directory
	// holding the hub's agent socket.
	Mounts []Mount
	// HostNetwork shares the host's network namespace; by default each
	// container gets its own, with only a loopback device. Unix sockets
	// reached through Mounts work either way.
	HostNetwork bool
	// CommandTimeout bounds each runtime invocation besides the
	// context's own deadline. Default 10 s.
	CommandTimeout time.Duration
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
}

// DefaultOptions returns the options for the real host: runc, state under
// /run/maxwell/oci, cgroups under /sys/fs/cgroup in "maxwell-oci", proc at
// /proc. RootFS must still be set.
func DefaultOptions() Options {
	return Options{
		Runtime:        "runc",
		StateDir:       "/run/maxwell/oci",
		Parent:         "maxwell-oci",
		CgroupRoot:     "/sys/fs/cgroup",
		ProcRoot:       "/proc",
		CommandTimeout: defaultCommandTimeout,
	}
}

// Manager starts containers as cells. It is safe for concurrent use, as
// are its cells.
type Manager struct {
	opts    Options
	log     *slog.Logger
	runtime string // absolute path of the runtime binary
	root    string // runtime --root
	bundles string // parent of the bundles
	layout  cell.Layout
	freezer cell.FreezerKind

	mu     sync.Mutex
	cells  map[string]*container // nil value: reserved while starting
	closed bool
}

// NewManager checks the runtime, the root file system and the cgroup
// layout, creates the state directory, and removes whatever containers
// an earlier Manager left in it (see Sweep).
func NewManager(ctx context.Context, opts Options) (*Manager, error) {
	def := DefaultOptions()
	if opts.Runtime == "" {
		opts.Runtime = def.Runtime
	}
	if opts.StateDir == "" {
		opts.StateDir = def.StateDir
	}
	if opts.Parent == "" {
		opts.Parent = def.Parent
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = def.CgroupRoot
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = def.ProcRoot
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = def.CommandTimeout
	}
	if err := validName(opts.Parent); err != nil {
		return nil, fmt.Errorf("oci: parent cgroup: %w", err)
	}
	m := &Manager{opts: opts, log: opts.Logger, cells: make(map[string]*container)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	rt, err := exec.LookPath(opts.Runtime)
	if err != nil {
		return nil, fmt.Errorf("oci: runtime %q: %w", opts.Runtime, err)
	}
	if m.runtime, err = filepath.Abs(rt); err != nil {
		return nil, fmt.Errorf("oci: runtime: %w", err)
	}
	if !filepath.IsAbs(opts.RootFS) {
		return nil, fmt.Errorf("oci: root file system %q: not an absolute path", opts.RootFS)
	}
	if fi, err := os.Stat(opts.RootFS); err != nil {
		return nil, fmt.Errorf("oci: root file system: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("oci: root file system %s: not a directory", opts.RootFS)
	}
	for _, mt := range opts.Mounts {
		if !filepath.IsAbs(mt.Source) || !filepath.IsAbs(mt.Destination) {
			return nil, fmt.Errorf("oci: mount %s -> %s: paths must be absolute", mt.Source, mt.Destination)
		}
	}

	mi := filepath.Join(opts.ProcRoot, "self", "mountinfo")
	f, err := os.Open(mi)
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	m.layout, err = cell.DetectLayout(f, opts.CgroupRoot)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	switch {
	case m.layout.Kind == cell.LayoutNone:
		return nil, fmt.Errorf("oci: %w: %s", ErrNoCgroups, m.layout.Reason)
	case m.layout.V1["freezer"] != "":
		// runc's v1 manager (hybrid and v1 hosts) pauses with the v1
		// freezer.
		m.freezer = cell.FreezerV1
	case m.layout.Unified != "":
		m.freezer = cell.FreezerV2
	default:
		return nil, fmt.Errorf("oci: %w: no freezer hierarchy (%s)", ErrNoCgroups, m.layout.Reason)
	}

	m.root = filepath.Join(opts.StateDir, "runtime")
	m.bundles = filepath.Join(opts.StateDir, "bundles")
	for _, d := range []string{opts.StateDir, m.root, m.bundles} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("oci: state directory: %w", err)
		}
	}
	if names, err := m.Sweep(ctx); err != nil {
		return nil, fmt.Errorf("oci: removing leftover containers: %w", err)
	} else if len(names) > 0 {
		m.log.Info("removed leftover containers", "names", names)
	}
	m.log.Debug("oci manager ready", "runtime", m.runtime, "root", m.root, "layout", m.layout.String(), "freezer", m.freezer)
	return m, nil
}

// Layout returns the cgroup layout the Manager found.
func (m *Manager) Layout() cell.Layout { return m.layout }

// Freezer returns the freezer the runtime pauses containers with on this
// host.
func (m *Manager) Freezer() cell.FreezerKind { return m.freezer }

// validName checks a cell or parent name with the rules of package cell:
// 1 to 64 bytes of ASCII letters, digits, '.', '_' and '-', not "." or
// "..". Every such name is also a valid container id.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 64 {
		return fmt.Errorf("%w: %q", cell.ErrInvalidName, name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("%w: %q holds %q", cell.ErrInvalidName, name, r)
		}
	}
	return nil
}

// reserve claims name for a container being started.
func (m *Manager) reserve(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("oci manager: %w", cell.ErrClosed)
	}
	if _, dup := m.cells[name]; dup {
		return fmt.Errorf("cell %q: %w", name, cell.ErrExists)
	}
	m.cells[name] = nil
	return nil
}

func (m *Manager) release(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cells, name)
}

// command runs one runtime subcommand (with --root) and returns its
// error, carrying the runtime's message. It is bounded by ctx and by
// Options.CommandTimeout.
func (m *Manager) command(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.runtime, append([]string{"--root", m.root}, args...)...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("%w: %s %s: %w%s", ErrRuntime, filepath.Base(m.runtime), args[0], err, runtimeMessage(out))
	}
	return nil
}

// runtimeMessage extracts the error text from a runtime's output: plain
// text, or runc's logrus lines (msg="..." or JSON with "msg").
func runtimeMessage(out []byte) string {
	var msgs []string
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var j struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &j) == nil && j.Msg != "" {
			if j.Level == "error" || j.Level == "fatal" || j.Level == "warning" {
				msgs = append(msgs, j.Msg)
			}
			continue
		}
		s := string(line)
		if i := strings.Index(s, `msg="`); i >= 0 {
			s = strings.TrimSuffix(s[i+5:], `"`)
			s = strings.ReplaceAll(s, `\"`, `"`)
		}
		msgs = append(msgs, s)
	}
	if len(msgs) == 0 {
		return ""
	}
	msg := strings.Join(msgs, "; ")
	if len(msg) > 1024 {
		msg = msg[:1024] + "…"
	}
	return ": " + msg
}

// cgroupCandidates returns every directory where a runtime may have
// created the cgroup of container name: <root>/<Parent>/<name> (pure v2)
// and <root>/<hierarchy>/<Parent>/<name> for every directory under the
// cgroup root (v1 hierarchies, including those Maxwell does not read,
// such as blkio, devices and name=systemd, and the unified mount).
func (m *Manager) cgroupCandidates(name string) []string {
	out := []string{filepath.Join(m.opts.CgroupRoot, m.opts.Parent, name)}
	ents, err := os.ReadDir(m.opts.CgroupRoot)
	if err != nil {
		return out
	}
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join(m.opts.CgroupRoot, e.Name(), m.opts.Parent, name))
		}
	}
	return out
}

// leftoverCgroup returns a cgroup directory of name that exists, or "".
func (m *Manager) leftoverCgroup(name string) string {
	for _, d := range m.cgroupCandidates(name) {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			return d
		}
	}
	return ""
}

// removeCgroups kills every task left in name's cgroups and removes them.
func (m *Manager) removeCgroups(ctx context.Context, name string) error {
	var errs []error
	for _, d := range m.cgroupCandidates(name) {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
			continue
		}
		if err := killDir(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range m.cgroupCandidates(name) {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
			continue
		}
		if err := rmdirCgroup(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Sweep force-deletes every container and bundle in the Manager's state
// directory, and every cgroup under Parent, that is not one of m's own
// cells, and returns their names, sorted. NewManager calls it; only one
// live Manager may use a StateDir and a Parent.
func (m *Manager) Sweep(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("oci manager: %w", cell.ErrClosed)
	}
	own := make(map[string]bool, len(m.cells))
	for n := range m.cells {
		own[n] = true
	}
	m.mu.Unlock()

	found := make(map[string]bool)
	for _, d := range []string{m.root, m.bundles} {
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("sweeping %s: %w", d, err)
		}
		for _, e := range ents {
			if e.IsDir() && validName(e.Name()) == nil && !own[e.Name()] {
				found[e.Name()] = true
			}
		}
	}
	parents := []string{filepath.Join(m.opts.CgroupRoot, m.opts.Parent)}
	if ents, err := os.ReadDir(m.opts.CgroupRoot); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				parents = append(parents, filepath.Join(m.opts.CgroupRoot, e.Name(), m.opts.Parent))
			}
		}
	}
	for _, p := range parents {
		ents, err := os.ReadDir(p)
		if err != nil {
			continue // no parent in this hierarchy
		}
		for _, e := range ents {
			if e.IsDir() && validName(e.Name()) == nil && !own[e.Name()] {
				found[e.Name()] = true
			}
		}
	}
	var names []string
	var errs []error
	for n := range found {
		names = append(names, n)
		if err := m.destroy(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("sweeping container %q: %w", n, err))
		}
	}
	sort.Strings(names)
	return names, errors.Join(errs...)
}

// destroy removes every trace of container name: the runtime's state
// (killing what runs), its cgroups, and its bundle.
func (m *Manager) destroy(ctx context.Context, name string) error {
	var errs []error
	if _, err := os.Stat(filepath.Join(m.root, name)); err == nil {
		if err := m.command(ctx, "delete", "--force", name); err != nil {
			// The runtime may have removed it meanwhile.
			if _, serr := os.Stat(filepath.Join(m.root, name)); serr == nil {
				errs = append(errs, err)
			}
		}
	}
	if err := m.removeCgroups(ctx, name); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(filepath.Join(m.bundles, name)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Close closes every cell and removes the Parent cgroups if they are
// empty. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var cs []*container
	for _, c := range m.cells {
		if c != nil {
			cs = append(cs, c)
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	m.removeParents()
	return errors.Join(errs...)
}

// removeParents removes the Parent cgroups that are empty.
func (m *Manager) removeParents() {
	ds := []string{filepath.Join(m.opts.CgroupRoot, m.opts.Parent)}
	if ents, err := os.ReadDir(m.opts.CgroupRoot); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				ds = append(ds, filepath.Join(m.opts.CgroupRoot, e.Name(), m.opts.Parent))
			}
		}
	}
	for _, d := range ds {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.log.Debug("parent cgroup kept", "dir", d, "err", err)
		}
	}
}

// CellForPID returns the name of the container cell whose cgroup holds
// pid (a host PID, as SO_PEERCRED reports it), including cells still
// starting: an agent may connect before Start returns. It implements
// hub.Resolver.
func (m *Manager) CellForPID(pid int) (string, bool) {
	if pid <= 0 {
		return "", false
	}
	m.mu.Lock()
	names := make([]string, 0, len(m.cells))
	for n := range m.cells {
		names = append(names, n)
	}
	m.mu.Unlock()
	for _, n := range names {
		if cgroupsOf(m.layout, m.opts.Parent, n).contains(pid) {
			return n, true
		}
	}
	return "", false
}
