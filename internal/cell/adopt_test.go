package cell_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/celltest"
	"github.com/maxwellhq/maxwell/internal/cgroupfs"
)

func adoptCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// adoptManager returns a Manager under a parent of its own, closed at the
// end of the test.
func adoptManager(t *testing.T, opts cell.Options) *cell.Manager {
	t.Helper()
	if opts.Parent == "" {
		opts.Parent = celltest.UniqueName("mxadopt")
	}
	m, err := cell.NewManager(opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Manager.Close: %v", err)
		}
	})
	return m
}

// busy is a shell that burns CPU until killed.
var busy = []string{"sh", "-c", "while :; do :; done"}

func cpuTime(t *testing.T, c cell.Cell) time.Duration {
	t.Helper()
	st, err := c.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st.CPUTime
}

// waitCPU waits until the cell has used d more CPU time than it had.
func waitCPU(t *testing.T, ctx context.Context, c cell.Cell, d time.Duration) {
	t.Helper()
	start := cpuTime(t, c)
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return cpuTime(t, c) >= start+d, nil }); err != nil {
		t.Fatalf("cell never used %v of CPU: %v", d, err)
	}
}

// TestAdoptRealCgroups adopts a cgroup that someone else made, on the
// host's own hierarchies (hybrid here: v1 controllers plus cgroup2), with
// each freezer the host offers, and checks pause, resume, CPU limit,
// stats, identity, the cgroup id, Kill's refusal, and that Close lets go.
func TestAdoptRealCgroups(t *testing.T) {
	layout := celltest.HostLayout(t)
	for _, fz := range layout.Freezers {
		if fz == cell.FreezerSignal {
			continue
		}
		t.Run(string(fz), func(t *testing.T) {
			ctx := adoptCtx(t)
			m := adoptManager(t, cell.Options{})
			tr := celltest.NewTree(t, layout, celltest.UniqueName("mxowner")+"/work")
			proc := tr.Start(busy...)
			pid := proc.Process.Pid
			c, err := m.Adopt(ctx, cell.AdoptSpec{Name: "ns/pod", Cgroup: tr.Path(), Freezer: fz})
			if err != nil {
				t.Fatal(err)
			}
			if c.Freezer() != fz || c.Backend() != "adopted-"+layout.Backend() || c.PID() != pid {
				t.Errorf("Freezer, Backend, PID = %s, %s, %d; want %s, adopted-%s, %d", c.Freezer(), c.Backend(), c.PID(), fz, layout.Backend(), pid)
			}
			if layout.Unified != "" {
				var st syscall.Stat_t
				if err := syscall.Stat(tr.Dir(""), &st); err != nil {
					t.Fatal(err)
				}
				if c.CgroupID() != st.Ino {
					t.Errorf("CgroupID = %d; want the inode %d of %s", c.CgroupID(), st.Ino, tr.Dir(""))
				}
			}
			if !c.Contains(pid) || c.Contains(os.Getpid()) {
				t.Errorf("Contains(%d), Contains(self) = %t, %t; want true, false", pid, c.Contains(pid), c.Contains(os.Getpid()))
			}
			waitCPU(t, ctx, c, 20*time.Millisecond)

			if err := c.Pause(ctx); err != nil {
				t.Fatal(err)
			}
			s1, _ := c.Stats()
			time.Sleep(200 * time.Millisecond)
			s2, _ := c.Stats()
			if !s2.Frozen || s2.CPUTime != s1.CPUTime {
				t.Errorf("paused: %+v then %+v; want frozen, CPU time still", s1, s2)
			}
			if err := c.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			waitCPU(t, ctx, c, 20*time.Millisecond)

			lim, ok := c.(cell.CPULimiter)
			if !ok {
				t.Fatal("adopted cell is no CPULimiter")
			}
			quotaFile, before := cpuQuota(t, tr)
			if err := lim.LimitCPU(0.25); err != nil {
				if quotaFile == "" && errors.Is(err, cell.ErrNoCPUController) {
					t.Logf("no CPU bandwidth controller: %v", err)
				} else {
					t.Fatal(err)
				}
			} else if _, got := cpuQuota(t, tr); !strings.HasPrefix(got, "25000") {
				t.Errorf("%s = %q after LimitCPU(0.25); want 25000", quotaFile, got)
			}

			// Kill: Maxwell kills nothing it did not start.
			if err := c.Kill(ctx); !errors.Is(err, cell.ErrNotOwned) {
				t.Errorf("Kill without an owner = %v; want ErrNotOwned", err)
			}
			if !celltest.Alive(pid) {
				t.Fatal("Kill killed the adopted process")
			}

			// Close while paused and limited: thawed, limit written back,
			// processes and cgroups left alone.
			if err := c.Pause(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if _, after := cpuQuota(t, tr); after != before {
				t.Errorf("%s = %q after Close; want the owner's %q back", quotaFile, after, before)
			}
			if !celltest.Alive(pid) || !tr.HasProcess(pid) {
				t.Fatalf("Close killed or moved the adopted process")
			}
			for _, d := range tr.Dirs() {
				if !cgroupfs.Exists(d) {
					t.Errorf("Close removed %s", d)
				}
			}
			if tr.Frozen() {
				t.Error("Close left the cgroup frozen")
			}
			// Running again: its CPU time grows.
			if err := waitGrowth(ctx, tr); err != nil {
				t.Errorf("not running after Close: %v", err)
			}
			// The name is free again.
			c2, err := m.Adopt(ctx, cell.AdoptSpec{Name: "ns/pod", Cgroup: tr.Path(), Freezer: fz})
			if err != nil {
				t.Fatalf("adopting again after Close: %v", err)
			}
			c2.Close()
		})
	}
}

// cpuQuota returns the tree's CPU bandwidth file (the v1 cpu hierarchy's
// cpu.cfs_quota_us, else cgroup2's cpu.max) and its content; "" where it
// has neither.
func cpuQuota(t *testing.T, tr *celltest.Tree) (string, string) {
	t.Helper()
	f := ""
	if d := tr.Dir("cpu"); d != "" {
		f = filepath.Join(d, "cpu.cfs_quota_us")
	} else if d := tr.Dir(""); d != "" && cgroupfs.Exists(filepath.Join(d, "cpu.max")) {
		f = filepath.Join(d, "cpu.max")
	}
	if f == "" {
		return "", ""
	}
	v, err := cgroupfs.ReadString(f)
	if err != nil {
		t.Fatal(err)
	}
	return f, v
}

// waitGrowth waits until the tree's CPU time (cgroup2 cpu.stat, else
// cpuacct) grows.
func waitGrowth(ctx context.Context, tr *celltest.Tree) error {
	read := func() time.Duration {
		u, _ := cgroupfs.ReadUsage(cgroupfs.Dirs{CPUAcct: tr.Dir("cpuacct"), V2: tr.Dir("")})
		return u.CPUTime
	}
	start := read()
	return cgroupfs.Poll(ctx, func() (bool, error) { return read() > start+10*time.Millisecond, nil })
}

// TestAdoptPodLevel adopts a cgroup whose processes live in cgroups below
// it (a pod's, with its containers'): they are its own, and pausing it
// stops them all.
func TestAdoptPodLevel(t *testing.T) {
	layout := celltest.HostLayout(t)
	ctx := adoptCtx(t)
	m := adoptManager(t, cell.Options{})
	pod := celltest.UniqueName("mxowner") + "/pod"
	a := celltest.NewTree(t, layout, pod+"/a")
	b := celltest.NewTree(t, layout, pod+"/b")
	pa := a.Start(busy...).Process.Pid
	pb := b.Start("sleep", "1000").Process.Pid
	c, err := m.Adopt(ctx, cell.AdoptSpec{Name: "ns/pod", Cgroup: "/" + pod})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Contains(pa) || !c.Contains(pb) || c.Contains(os.Getpid()) {
		t.Errorf("Contains(a, b, self) = %t, %t, %t; want true, true, false", c.Contains(pa), c.Contains(pb), c.Contains(os.Getpid()))
	}
	if st, err := c.Stats(); err != nil || st.PIDs < 2 {
		t.Errorf("Stats = %+v, %v; want both containers' tasks", st, err)
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if !a.Frozen() {
		t.Error("pausing the pod left a container running")
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waitGrowth(ctx, a); err != nil {
		t.Errorf("container not running after Resume: %v", err)
	}
	select {
	case <-c.Done():
		t.Fatal("Done closed while the pod runs")
	default:
	}
	// The owner stops one container: the pod lives on. Stops both: done.
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-c.Done():
		t.Fatal("Done closed while a container still runs")
	default:
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed once the pod's cgroups were empty")
	}
	if err := c.Wait(ctx); !errors.Is(err, cell.ErrCgroupEmpty) {
		t.Errorf("Wait = %v; want ErrCgroupEmpty", err)
	}
}

// TestAdoptDoneOnRemoval: the owner removes the cgroup (a container that
// ended): Done closes, Wait says why, Pause says it has exited, Close
// still works.
func TestAdoptDoneOnRemoval(t *testing.T) {
	layout := celltest.HostLayout(t)
	ctx := adoptCtx(t)
	m := adoptManager(t, cell.Options{})
	tr := celltest.NewTree(t, layout, celltest.UniqueName("mxowner"))
	tr.Start("sleep", "1000")
	owner := &celltest.Owner{}
	c, err := m.Adopt(ctx, cell.AdoptSpec{Name: "ns/gone", Cgroup: tr.Path(), Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	// Kill with an owner asks it, and kills nothing.
	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if got := owner.Asked(); len(got) != 1 || got[0] != "ns/gone" {
		t.Errorf("owner asked to stop %v; want [ns/gone]", got)
	}
	if err := tr.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after the cgroup was removed")
	}
	// Removal or emptiness, whichever the watcher saw first.
	if err := c.Wait(ctx); !errors.Is(err, cell.ErrCgroupRemoved) && !errors.Is(err, cell.ErrCgroupEmpty) {
		t.Errorf("Wait = %v; want ErrCgroupRemoved or ErrCgroupEmpty", err)
	}
	if err := c.Pause(ctx); !errors.Is(err, cell.ErrExited) {
		t.Errorf("Pause after removal = %v; want ErrExited", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after removal: %v", err)
	}
}

// TestAdoptRefuses: what cannot be adopted fails with a clear error and
// leaves the cgroup as it was.
func TestAdoptRefuses(t *testing.T) {
	layout := celltest.HostLayout(t)
	ctx := adoptCtx(t)
	m := adoptManager(t, cell.Options{})
	busyTree := celltest.NewTree(t, layout, celltest.UniqueName("mxowner"))
	busyTree.Start("sleep", "1000")
	empty := celltest.NewTree(t, layout, celltest.UniqueName("mxowner"))
	held, err := m.Adopt(ctx, cell.AdoptSpec{Name: "ns/held", Cgroup: busyTree.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, tc := range []struct {
		name string
		spec cell.AdoptSpec
		want error
	}{
		{"no such cgroup", cell.AdoptSpec{Name: "a", Cgroup: "/mx-no-such-cgroup-" + celltest.UniqueName("x")}, cell.ErrNoCgroup},
		{"empty", cell.AdoptSpec{Name: "a", Cgroup: empty.Path()}, cell.ErrExited},
		{"name taken", cell.AdoptSpec{Name: "ns/held", Cgroup: busyTree.Path()}, cell.ErrExists},
		{"signal freezer", cell.AdoptSpec{Name: "a", Cgroup: busyTree.Path(), Freezer: cell.FreezerSignal}, cell.ErrFreezerUnavailable},
		{"empty name", cell.AdoptSpec{Name: "", Cgroup: busyTree.Path()}, cell.ErrInvalidName},
		{"double slash", cell.AdoptSpec{Name: "ns//pod", Cgroup: busyTree.Path()}, cell.ErrInvalidName},
		{"dot dot name", cell.AdoptSpec{Name: "ns/..", Cgroup: busyTree.Path()}, cell.ErrInvalidName},
		{"space", cell.AdoptSpec{Name: "ns/a b", Cgroup: busyTree.Path()}, cell.ErrInvalidName},
		{"segment of 254 bytes", cell.AdoptSpec{Name: "ns/" + strings.Repeat("p", 254), Cgroup: busyTree.Path()}, cell.ErrInvalidName},
		{"name of 321 bytes", cell.AdoptSpec{Name: strings.Repeat("n", 63) + "/" + strings.Repeat("p", 253) + "/2222", Cgroup: busyTree.Path()}, cell.ErrInvalidName},
		{"escaping path", cell.AdoptSpec{Name: "a", Cgroup: busyTree.Path() + "/../.."}, cell.ErrInvalidName},
		{"root", cell.AdoptSpec{Name: "a", Cgroup: "/"}, cell.ErrInvalidName},
		{"empty path", cell.AdoptSpec{Name: "a", Cgroup: ""}, cell.ErrInvalidName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := m.Adopt(ctx, tc.spec)
			if !errors.Is(err, tc.want) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("Adopt(%+v) = %v; want %v", tc.spec, err, tc.want)
			}
		})
	}
	// Frozen by its owner: refused, and still frozen (not Maxwell's).
	fz := held.Freezer()
	held.Close()
	if err := held.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ownerFreeze(t, busyTree, fz, true)
	defer ownerFreeze(t, busyTree, fz, false)
	if _, err := m.Adopt(ctx, cell.AdoptSpec{Name: "ns/frozen", Cgroup: busyTree.Path(), Freezer: fz}); !errors.Is(err, cell.ErrFrozen) {
		t.Errorf("adopting a frozen cgroup = %v; want ErrFrozen", err)
	}
	if !busyTree.Frozen() {
		t.Error("a refused adoption thawed the owner's freeze")
	}
}

// ownerFreeze freezes or thaws the tree as its owner would.
func ownerFreeze(t *testing.T, tr *celltest.Tree, fz cell.FreezerKind, on bool) {
	t.Helper()
	var err error
	if fz == cell.FreezerV1 {
		v := "THAWED"
		if on {
			v = "FROZEN"
		}
		err = cgroupfs.Write(filepath.Join(tr.Dir("freezer"), "freezer.state"), v)
	} else {
		v := "0"
		if on {
			v = "1"
		}
		err = cgroupfs.Write(filepath.Join(tr.Dir(""), "cgroup.freeze"), v)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := adoptCtx(t)
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return tr.Frozen() == on, nil }); err != nil {
		t.Fatalf("owner freeze %t did not settle: %v", on, err)
	}
}

// TestAdoptPureV2 adopts a cgroup on a pure cgroup v2 layout: the host's
// cgroup2 hierarchy as the only one (real cgroup.freeze, real processes).
// That hierarchy has no cpu controller here, so LimitCPU must say so.
func TestAdoptPureV2(t *testing.T) {
	layout, proc := celltest.V2Layout(t)
	ctx := adoptCtx(t)
	m := adoptManager(t, cell.Options{CgroupRoot: layout.Unified, ProcRoot: proc})
	if m.Layout().Kind != cell.LayoutV2 {
		t.Fatalf("layout = %s; want v2", m.Layout())
	}
	tr := celltest.NewTree(t, layout, celltest.UniqueName("mxowner")+"/kubepods/pod1")
	pid := tr.Start(busy...).Process.Pid
	c, err := m.Adopt(ctx, cell.AdoptSpec{Name: "ns/pod1", Cgroup: tr.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend() != "adopted-cgroup-v2" || c.Freezer() != cell.FreezerV2 || c.CgroupID() == 0 || !c.Contains(pid) {
		t.Errorf("Backend, Freezer, CgroupID, Contains = %s, %s, %d, %t", c.Backend(), c.Freezer(), c.CgroupID(), c.Contains(pid))
	}
	waitCPU(t, ctx, c, 20*time.Millisecond)
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	s1, _ := c.Stats()
	time.Sleep(200 * time.Millisecond)
	if s2, _ := c.Stats(); !s2.Frozen || s2.CPUTime != s1.CPUTime {
		t.Errorf("paused: %+v then %+v; want frozen, CPU time still", s1, s2)
	}
	err = c.(cell.CPULimiter).LimitCPU(0.5)
	if cgroupfs.Exists(filepath.Join(tr.Dir(""), "cpu.max")) {
		if err != nil {
			t.Errorf("LimitCPU: %v", err)
		}
	} else if !errors.Is(err, cell.ErrNoCPUController) {
		t.Errorf("LimitCPU without cpu.max = %v; want ErrNoCPUController", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if tr.Frozen() || !celltest.Alive(pid) {
		t.Errorf("after Close: frozen %t, alive %t; want thawed and alive", tr.Frozen(), celltest.Alive(pid))
	}
}

// TestAdoptGuardThawsAfterHostSIGKILL: a host adopts a cgroup, caps and
// freezes it, and is SIGKILLed. Its guard thaws the cell and writes back
// the owner's CPU limit, and kills nothing and removes nothing.
func TestAdoptGuardThawsAfterHostSIGKILL(t *testing.T) {
	layout := celltest.HostLayout(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, fz := range layout.Freezers {
		if fz == cell.FreezerSignal {
			continue
		}
		t.Run(string(fz), func(t *testing.T) {
			ctx := adoptCtx(t)
			tr := celltest.NewTree(t, layout, celltest.UniqueName("mxowner"))
			pid := tr.Start(busy...).Process.Pid
			quotaFile, before := cpuQuota(t, tr)
			parent := celltest.UniqueName("mxadopthost")
			host := exec.Command(exe)
			host.Env = append(os.Environ(), "MAXWELL_CELL_TEST_ROLE=adopthost", "MAXWELL_CELL_TEST_PARENT="+parent,
				"MAXWELL_CELL_TEST_FREEZER="+string(fz), "MAXWELL_CELL_TEST_ADOPT_CGROUP="+tr.Path())
			var stderr strings.Builder
			host.Stderr = &stderr
			out, err := host.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := host.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = host.Process.Kill()
				_ = host.Wait()
				for _, m := range layout.V1 {
					os.Remove(filepath.Join(m, parent))
				}
				if layout.Unified != "" {
					os.Remove(filepath.Join(layout.Unified, parent))
				}
			}()
			line, err := bufio.NewReader(out).ReadString('\n')
			var r struct {
				Guard int    `json:"guard"`
				Error string `json:"error"`
			}
			if err != nil || json.Unmarshal([]byte(line), &r) != nil || r.Error != "" || r.Guard == 0 {
				t.Fatalf("adopt host said %q (%v, %s); stderr:\n%s", line, err, r.Error, stderr.String())
			}
			if !tr.Frozen() {
				t.Fatal("not frozen before the host died")
			}
			if _, v := cpuQuota(t, tr); quotaFile != "" && !strings.HasPrefix(v, "10000") {
				t.Errorf("%s = %q before the host died; want the 10000 µs cap", quotaFile, v)
			}
			if err := host.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = host.Wait()
			err = cgroupfs.Poll(ctx, func() (bool, error) { return !tr.Frozen() && !celltest.Alive(r.Guard), nil })
			if err != nil {
				t.Fatalf("guard did not thaw the adopted cell (frozen %t, guard alive %t): %v; host stderr:\n%s", tr.Frozen(), celltest.Alive(r.Guard), err, stderr.String())
			}
			if _, after := cpuQuota(t, tr); after != before {
				t.Errorf("%s = %q after the guard; want the owner's %q", quotaFile, after, before)
			}
			if !celltest.Alive(pid) || !tr.HasProcess(pid) {
				t.Error("the guard killed or moved the adopted process")
			}
			if err := waitGrowth(ctx, tr); err != nil {
				t.Errorf("adopted process not running after the guard: %v", err)
			}
		})
	}
}

// writeFixture writes files (path relative to root → content) under root.
func writeFixture(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, v := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAdoptV2Fixture reads a pure cgroup v2 fixture tree (the files a
// kernel shows, written by hand): stats from the cgroup and its children,
// identity in a child, the CPU limit written and its owner's value written
// back, Done on "populated 0" and on removal, and the refusals.
func TestAdoptV2Fixture(t *testing.T) {
	root := t.TempDir()
	proc := t.TempDir()
	writeFixture(t, proc, map[string]string{"self/mountinfo": fmt.Sprintf("41 31 0:38 / %s rw,relatime - cgroup2 cgroup2 rw\n", root)})
	pod := "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice"
	base := map[string]string{
		"cgroup.procs": "4242\n", "cgroup.events": "populated 1\nfrozen 0\n", "cgroup.freeze": "0\n",
		"cpu.max": "200000 100000\n", "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
		"memory.current": "1048576\n", "pids.current": "3\n",
	}
	fixture := func(rel string, over map[string]string) {
		files := map[string]string{}
		for k, v := range base {
			files[filepath.Join(rel, k)] = v
		}
		for k, v := range over {
			files[filepath.Join(rel, k)] = v
		}
		files[filepath.Join(rel, "cri-containerd-abc.scope", "cgroup.procs")] = "4343\n4344\n"
		writeFixture(t, root, files)
	}
	fixture(pod, nil)
	m := adoptManager(t, cell.Options{CgroupRoot: root, ProcRoot: proc})
	ctx := adoptCtx(t)
	c, err := m.Adopt(ctx, cell.AdoptSpec{Name: "default/web", Cgroup: "/" + pod})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Stats()
	if want := (cell.Stats{CPUTime: 1500 * time.Microsecond, MemoryBytes: 1 << 20, PIDs: 3}); err != nil || st != want {
		t.Errorf("Stats = %+v, %v; want %+v", st, err, want)
	}
	if c.PID() != 4242 || !c.Contains(4344) || !c.Contains(4242) || c.Contains(1) {
		t.Errorf("PID %d, Contains(4344, 4242, 1) = %t, %t, %t", c.PID(), c.Contains(4344), c.Contains(4242), c.Contains(1))
	}
	var sst syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, pod), &sst); err != nil || c.CgroupID() != sst.Ino {
		t.Errorf("CgroupID = %d; want inode %d (%v)", c.CgroupID(), sst.Ino, err)
	}
	cpuMax := filepath.Join(root, pod, "cpu.max")
	if err := c.(cell.CPULimiter).LimitCPU(0.5); err != nil {
		t.Fatal(err)
	}
	// cgroupfs.Write writes as the kernel wants, without truncating: on a
	// plain file a shorter value leaves the old tail, so compare prefixes.
	if v, _ := cgroupfs.ReadString(cpuMax); !strings.HasPrefix(v, "50000 100000") {
		t.Errorf("cpu.max = %q; want 50000 100000", v)
	}
	// A pause the kernel never confirms fails and is undone.
	pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = c.Pause(pctx)
	cancel()
	if err == nil {
		t.Error("Pause succeeded though cgroup.events never said frozen")
	}
	if v, _ := cgroupfs.ReadString(filepath.Join(root, pod, "cgroup.freeze")); v != "0" {
		t.Errorf("cgroup.freeze = %q after a failed pause; want 0", v)
	}
	// Garbage in a kernel file: a clear error.
	writeFixture(t, root, map[string]string{filepath.Join(pod, "cpu.stat"): "usage_usec lots\n"})
	if _, err := c.Stats(); !errors.Is(err, cell.ErrGarbage) {
		t.Errorf("Stats on garbage = %v; want ErrGarbage", err)
	}
	// The pod's last process went: done.
	writeFixture(t, root, map[string]string{filepath.Join(pod, "cgroup.events"): "populated 0\nfrozen 0\n"})
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed on populated 0")
	}
	if err := c.Wait(ctx); !errors.Is(err, cell.ErrCgroupEmpty) {
		t.Errorf("Wait = %v; want ErrCgroupEmpty", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if v, _ := cgroupfs.ReadString(cpuMax); !strings.HasPrefix(v, "200000 100000") {
		t.Errorf("cpu.max = %q after Close; want the owner's 200000 100000 back", v)
	}

	// Removal.
	gone := "kubepods/pod2"
	fixture(gone, nil)
	c, err = m.Adopt(ctx, cell.AdoptSpec{Name: "default/gone", Cgroup: gone})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, gone)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed on removal")
	}
	if err := c.Wait(ctx); !errors.Is(err, cell.ErrCgroupRemoved) {
		t.Errorf("Wait = %v; want ErrCgroupRemoved", err)
	}
	c.Close()

	// Refusals.
	fixture("frozen", map[string]string{"cgroup.events": "populated 1\nfrozen 1\n"})
	fixture("empty", map[string]string{"cgroup.procs": ""})
	writeFixture(t, root, map[string]string{"empty/cri-containerd-abc.scope/cgroup.procs": ""})
	fixture("nofreeze", nil)
	os.Remove(filepath.Join(root, "nofreeze", "cgroup.freeze"))
	for _, tc := range []struct {
		cgroup string
		want   error
	}{
		{"/frozen", cell.ErrFrozen},
		{"/empty", cell.ErrExited},
		{"/nofreeze", cell.ErrFreezerUnavailable},
		{"/missing", cell.ErrNoCgroup},
	} {
		if c, err := m.Adopt(ctx, cell.AdoptSpec{Name: "x", Cgroup: tc.cgroup}); !errors.Is(err, tc.want) {
			if c != nil {
				c.Close()
			}
			t.Errorf("Adopt(%s) = %v; want %v", tc.cgroup, err, tc.want)
		}
	}
}

// TestValidAdoptedName: the names of pods, as Kubernetes allows them, are
// valid; what cannot be a path segment is not.
func TestValidAdoptedName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"default/web-5d8f7c9b6-x7k2p", true},
		{"kube-system/coredns.v1", true},
		{strings.Repeat("n", 63) + "/" + strings.Repeat("p", 253), true},
		{strings.Repeat("n", 63) + "/" + strings.Repeat("p", 253) + "/2", true},
		{"plain", true},
		{"", false},
		{"/pod", false},
		{"ns/", false},
		{"ns/./pod", false},
		{"ns/pod\x00", false},
		{"ns/pöd", false},
	} {
		err := cell.ValidAdoptedName(tc.name)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, cell.ErrInvalidName) {
			t.Errorf("ValidAdoptedName(%q) = %v; want ok %t", tc.name, err, tc.ok)
		}
	}
}
