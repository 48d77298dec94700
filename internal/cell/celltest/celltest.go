// Package celltest plays the owner of cgroups that Maxwell adopts (a
// kubelet, systemd, a person): it creates cgroups under a unique parent in
// every hierarchy of a layout, the way such an owner does, starts real
// processes in them, and removes everything at the end of the test.
package celltest

import (
	"context"
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

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cgroupfs"
)

var seq atomic.Int32

// UniqueName returns a cgroup name no other test or test binary uses,
// built from prefix, the PID and a counter.
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
}

// HostLayout returns the host's cgroup layout as package cell detects it,
// skipping the test (with the reason) where it is not root or has no
// writable cgroups.
func HostLayout(t testing.TB) cell.Layout {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test creates cgroups")
	}
	opts := cell.DefaultOptions()
	f, err := os.Open(filepath.Join(opts.ProcRoot, "self", "mountinfo"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := cell.DetectLayout(f, opts.CgroupRoot)
	if err != nil {
		t.Fatal(err)
	}
	if l.Kind == cell.LayoutNone {
		t.Skipf("no cgroups to test on: %s", l)
	}
	return l
}

// V2Layout returns the layout of a pure cgroup v2 host rooted at the
// host's cgroup2 mount (on a hybrid host: its controller-less cgroup2
// hierarchy, whose cgroup.freeze is real), and the proc root of a fixture
// whose mountinfo lists only that mount, for cell.Options.ProcRoot. It
// skips where the host has no cgroup2.
func V2Layout(t testing.TB) (cell.Layout, string) {
	t.Helper()
	host := HostLayout(t)
	if host.Unified == "" {
		t.Skipf("no cgroup2 mounted: %s", host)
	}
	proc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	mi := fmt.Sprintf("41 31 0:38 / %s rw,relatime - cgroup2 cgroup2 rw\n", host.Unified)
	if err := os.WriteFile(filepath.Join(proc, "self", "mountinfo"), []byte(mi), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := cell.DetectLayout(strings.NewReader(mi), host.Unified)
	if err != nil {
		t.Fatal(err)
	}
	return l, proc
}

// Tree is a cgroup path created in every hierarchy of a layout, as its
// owner would create it.
type Tree struct {
	t      testing.TB
	layout cell.Layout
	rel    string // below each hierarchy's root, no leading '/'
	mu     sync.Mutex
	made   []string // directories created, parents first
	cmds   []*exec.Cmd
}

// NewTree creates the cgroup rel (a path below the hierarchies' roots,
// such as "mxtest-1-2/kubepods/burstable/pod<uid>/<id>") in every v1
// hierarchy of l and in its cgroup2 hierarchy, parents included, with
// cpuset.cpus and cpuset.mems inherited in a v1 cpuset hierarchy. At the
// end of the test it kills whatever runs in what it created and removes
// it, deepest first. It fails the test on error.
func NewTree(t testing.TB, l cell.Layout, rel string) *Tree {
	t.Helper()
	tr, err := MakeTree(t, l, rel)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// MakeTree is NewTree returning its error, for goroutines other than the
// test's (which must not call t.Fatal).
func MakeTree(t testing.TB, l cell.Layout, rel string) (*Tree, error) {
	rel = strings.Trim(filepath.Clean("/"+rel), "/")
	tr := &Tree{t: t, layout: l, rel: rel}
	t.Cleanup(tr.cleanup)
	for _, root := range tr.roots() {
		d := root
		for _, seg := range strings.Split(rel, "/") {
			parent := d
			d = filepath.Join(d, seg)
			err := os.Mkdir(d, 0o755)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if err != nil {
				return tr, fmt.Errorf("creating cgroup %s: %w", d, err)
			}
			tr.made = append(tr.made, d)
			if root == l.V1["cpuset"] {
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					v, err := cgroupfs.ReadString(filepath.Join(parent, f))
					if err == nil {
						err = cgroupfs.Write(filepath.Join(d, f), v)
					}
					if err != nil {
						return tr, fmt.Errorf("setting %s of %s: %w", f, d, err)
					}
				}
			}
		}
	}
	return tr, nil
}

// roots returns every distinct hierarchy root of the layout.
func (tr *Tree) roots() []string {
	var out []string
	for _, m := range tr.layout.V1 {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	if tr.layout.Unified != "" {
		out = append(out, tr.layout.Unified)
	}
	return out
}

// Path returns the tree's cgroup path as /proc/<pid>/cgroup lists it.
func (tr *Tree) Path() string { return "/" + tr.rel }

// Dirs returns the tree's directory in every hierarchy.
func (tr *Tree) Dirs() []string {
	var out []string
	for _, r := range tr.roots() {
		out = append(out, filepath.Join(r, tr.rel))
	}
	return out
}

// Dir returns the tree's directory in the hierarchy of controller ("" for
// the cgroup2 one), or "".
func (tr *Tree) Dir(controller string) string {
	if controller == "" {
		if tr.layout.Unified == "" {
			return ""
		}
		return filepath.Join(tr.layout.Unified, tr.rel)
	}
	if m := tr.layout.V1[controller]; m != "" {
		return filepath.Join(m, tr.rel)
	}
	return ""
}

// Start starts argv as a real process and moves it into the tree's cgroup
// in every hierarchy (as a container runtime does before the process
// runs its own code; here it may run a moment outside). It is killed at
// the end of the test unless it died before. It fails the test on error.
func (tr *Tree) Start(argv ...string) *exec.Cmd {
	tr.t.Helper()
	cmd, err := tr.Run(argv...)
	if err != nil {
		tr.t.Fatal(err)
	}
	return cmd
}

// Run is Start returning its error, for goroutines other than the test's.
func (tr *Tree) Run(argv ...string) (*exec.Cmd, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %v: %w", argv, err)
	}
	tr.mu.Lock()
	tr.cmds = append(tr.cmds, cmd)
	tr.mu.Unlock()
	go func() { _ = cmd.Wait() }()
	for _, d := range tr.Dirs() {
		if err := cgroupfs.Write(filepath.Join(d, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid)); err != nil {
			_ = cmd.Process.Kill()
			return nil, fmt.Errorf("moving pid %d into %s: %w", cmd.Process.Pid, d, err)
		}
	}
	return cmd, nil
}

// Stop kills the processes Start started and waits (bounded by ctx) until
// the tree's cgroups are empty, thawing them first (a v1-frozen task
// cannot die), as an owner stopping its work does. The cgroups stay.
func (tr *Tree) Stop(ctx context.Context) error {
	tr.thaw()
	tr.mu.Lock()
	for _, c := range tr.cmds {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	tr.mu.Unlock()
	return cgroupfs.Poll(ctx, func() (bool, error) {
		for _, d := range tr.Dirs() {
			pids, err := cgroupfs.ReadPIDs(filepath.Join(d, "cgroup.procs"))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, err
			}
			if len(pids) > 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

// Remove stops the tree's processes and removes every directory it made,
// deepest first, as an owner removing its cgroup does.
func (tr *Tree) Remove(ctx context.Context) error {
	if err := tr.Stop(ctx); err != nil {
		return err
	}
	var errs []error
	tr.mu.Lock()
	made := tr.made
	tr.made = nil
	tr.mu.Unlock()
	for _, d := range slices.Backward(made) {
		err := cgroupfs.Poll(ctx, func() (bool, error) {
			err := os.Remove(d)
			switch {
			case err == nil, errors.Is(err, fs.ErrNotExist):
				return true, nil
			case errors.Is(err, syscall.EBUSY):
				if hasChildren(d) {
					return false, fmt.Errorf("%w: it holds cgroups of other trees", err)
				}
				return false, nil // a task not yet fully gone
			}
			return false, err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// thaw thaws the tree and every cgroup above it up to the first element of
// its path (the test's own parent), parents first, in the v1 freezer and in
// cgroup2.
func (tr *Tree) thaw() {
	segs := strings.Split(tr.rel, "/")
	for i := range segs {
		rel := filepath.Join(segs[:i+1]...)
		if m := tr.layout.V1["freezer"]; m != "" {
			_ = cgroupfs.Write(filepath.Join(m, rel, "freezer.state"), "THAWED")
		}
		if tr.layout.Unified != "" {
			_ = cgroupfs.Write(filepath.Join(tr.layout.Unified, rel, "cgroup.freeze"), "0")
		}
	}
}

func (tr *Tree) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := tr.Remove(ctx); err != nil {
		tr.t.Errorf("celltest: removing cgroup tree %s: %v", tr.rel, err)
	}
}

// HasProcess reports whether pid is in the tree's cgroup in every
// hierarchy.
func (tr *Tree) HasProcess(pid int) bool {
	for _, d := range tr.Dirs() {
		if !cgroupfs.HasProcess(d, pid) {
			return false
		}
	}
	return true
}

// Frozen reports whether any freezer of the tree says frozen: the v1
// freezer's freezer.state (not THAWED), or cgroup2's cgroup.events.
func (tr *Tree) Frozen() bool {
	if d := tr.Dir("freezer"); d != "" {
		if st, _ := cgroupfs.ReadString(filepath.Join(d, "freezer.state")); st != "THAWED" {
			return true
		}
	}
	if d := tr.Dir(""); d != "" {
		if v, _ := cgroupfs.ReadKeyed(filepath.Join(d, "cgroup.events"), "frozen"); v != 0 {
			return true
		}
	}
	return false
}

// WaitFor calls cond every 50 ms until it holds, failing the test with
// what was awaited after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := cgroupfs.Poll(ctx, func() (bool, error) {
		if cond() {
			return true, nil
		}
		time.Sleep(50 * time.Millisecond)
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting %v for %s: %v", d, what, err)
	}
}

// Alive reports whether pid is a process of the host that has not
// ended (not a zombie).
func Alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join(cell.DefaultOptions().ProcRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command, which is in parentheses and may
	// hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && len(rest) > 0 && rest[0] != 'Z' && rest[0] != 'X'
}

// Owner is a cell.Owner that records whom it was asked to stop, and
// stops nothing.
type Owner struct {
	mu    sync.Mutex
	asked []string
}

// Stop implements cell.Owner.
func (o *Owner) Stop(_ context.Context, name string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, name)
	return nil
}

// Asked returns the names Stop was called with, in order.
func (o *Owner) Asked() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.asked)
}

// hasChildren reports whether the cgroup dir has cgroups below it.
func hasChildren(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			return true
		}
	}
	return false
}
