package cell

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"
)

// Errors of adopted cells. Callers test for them with errors.Is.
var (
	// ErrNotOwned means Maxwell was asked to kill an adopted cell that has
	// no Owner to ask: Maxwell did not start it and does not kill it.
	ErrNotOwned = errors.New("adopted cell: Maxwell does not own its processes")
	// ErrNoCgroup means the cgroup to adopt exists in no hierarchy.
	ErrNoCgroup = errors.New("no such cgroup")
	// ErrFrozen means the cgroup to adopt is already frozen by someone
	// else; Maxwell thaws what it governs when it lets go, so it will not
	// take over a freeze that is not its own.
	ErrFrozen = errors.New("cgroup is frozen by its owner")
	// ErrCgroupRemoved is what Wait returns once the adopted cgroup has
	// been removed by its owner.
	ErrCgroupRemoved = errors.New("adopted cgroup removed by its owner")
	// ErrCgroupEmpty is what Wait returns once the adopted cgroup has no
	// process left in it or below it.
	ErrCgroupEmpty = errors.New("adopted cgroup has no processes left")
)

// adoptPoll is how often an adopted cell checks whether its cgroup is
// still there and populated (Done): the economy's default tick.
const adoptPoll = 100 * time.Millisecond

// Owner is whoever created an adopted cgroup (the kubelet, systemd, a
// person), and so the only one who may stop its processes.
type Owner interface {
	// Stop asks the owner to stop the cell's processes (for a pod: evict
	// it) and returns once it has asked; the processes may go later, and
	// the cell's Done closes when they have. It must honour ctx.
	Stop(ctx context.Context, name string) error
}

// AdoptSpec names an existing cgroup to govern as a cell.
type AdoptSpec struct {
	// Name names the cell (ValidAdoptedName): path segments of ASCII
	// letters, digits, '.', '_' and '-' separated by single '/', so that
	// a pod can be "namespace/pod". It names no cgroup.
	Name string
	// Cgroup is the cgroup's path below each hierarchy's root, as
	// /proc/<pid>/cgroup lists it, e.g.
	// "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice".
	// The same path is looked up in every hierarchy of the host's layout.
	Cgroup string
	// Freezer overrides the freezer. FreezerAuto (or "") picks
	// cgroup.freeze where the cgroup has a populated cgroup2 directory,
	// else the v1 freezer. FreezerSignal is refused: the processes are
	// not Maxwell's children.
	Freezer FreezerKind
	// Owner is asked to stop the cell's processes when Kill is called
	// (an economy's apoptosis); nil makes Kill fail with ErrNotOwned.
	Owner Owner
}

// adoptedSaved is what an adopted cgroup's owner had set that Maxwell
// changes while it governs the cell, written back when Maxwell lets go
// (by Close, or by the guard if the host dies).
type adoptedSaved struct {
	// CPUPeriod and CPUQuota are the v1 cpu hierarchy's cpu.cfs_period_us
	// and cpu.cfs_quota_us; CPUMax is the cgroup2 cpu.max. "" where the
	// cgroup has no such file.
	CPUPeriod string `json:"cpu_period,omitempty"`
	CPUQuota  string `json:"cpu_quota,omitempty"`
	CPUMax    string `json:"cpu_max,omitempty"`
}

// adopted implements Cell (and CPULimiter) over a cgroup someone else
// created. It never starts, signals or removes a process or a cgroup.
type adopted struct {
	m       *Manager
	name    string
	cgroup  string
	backend string
	freezer FreezerKind
	owner   Owner
	cg      *cgroupSet
	saved   adoptedSaved
	pid     int
	cgID    uint64

	done    chan struct{}
	waitErr error
	stop    chan struct{} // closed by Close: the watcher ends

	mu        sync.Mutex // serialises Pause, Resume, LimitCPU, Close
	paused    bool       // Maxwell froze it and has not thawed it
	limited   bool       // Maxwell set a CPU limit
	closeOnce sync.Once
	closeErr  error
}

// Adopt puts an existing cgroup that someone else created (the kubelet,
// systemd, a person) under Maxwell as a cell: it can be paused and
// resumed, CPU-limited (the cell is a CPULimiter wherever the cgroup has a
// CPU bandwidth controller), measured, and matched to a peer's PID, and it
// has the id of its cgroup2 directory for the Landauer meter.
//
// Maxwell starts nothing in it and kills nothing in it: Kill asks
// spec.Owner to stop it, and Close lets go of it (thaws it if Maxwell froze
// it, writes back the CPU bandwidth its owner had set, and leaves its
// processes and its cgroup alone). The guard does the same if the host
// dies, thawing whatever state the cell was in: an adopted cell is never
// left frozen and never killed by Maxwell.
//
// Done closes once the cgroup is removed, or once no process is left in
// it or below it (cgroup.events "populated 0" in cgroup2, no task in the
// v1 subtree); Wait then returns ErrCgroupRemoved or ErrCgroupEmpty. A
// cgroup that is empty when adopted is refused with ErrExited, and one
// already frozen by its owner with ErrFrozen. PID is the first process
// found in the cgroup when it was adopted.
//
// Adopted cells share the Manager's name space with started ones; Close
// of the Manager lets go of every adopted cell.
func (m *Manager) Adopt(ctx context.Context, spec AdoptSpec) (Cell, error) {
	if err := ValidAdoptedName(spec.Name); err != nil {
		return nil, err
	}
	fail := func(err error) (Cell, error) {
		return nil, fmt.Errorf("adopting cgroup %s as cell %q: %w", spec.Cgroup, spec.Name, err)
	}
	rel, err := cleanCgroupPath(spec.Cgroup)
	if err != nil {
		return fail(err)
	}
	if m.layout.Kind == LayoutNone {
		return fail(fmt.Errorf("%w: %s", ErrNoCgroup, m.layout))
	}
	s := &cgroupSet{}
	for c, mount := range m.layout.V1 {
		if d := filepath.Join(mount, rel); cgroupfs.Exists(d) {
			if s.V1 == nil {
				s.V1 = make(map[string]string)
			}
			s.V1[c] = d
		}
	}
	if m.layout.Unified != "" {
		if d := filepath.Join(m.layout.Unified, rel); cgroupfs.Exists(d) {
			s.V2 = d
		}
	}
	if len(s.dirs()) == 0 {
		return fail(fmt.Errorf("%w: %s is in none of %s", ErrNoCgroup, rel, m.layout))
	}
	fz, err := adoptedFreezer(s, spec.Freezer)
	if err != nil {
		return fail(err)
	}
	a := &adopted{
		m: m, name: spec.Name, cgroup: rel, backend: "adopted-" + m.layout.Backend(), freezer: fz, owner: spec.Owner, cg: s,
		done: make(chan struct{}), stop: make(chan struct{}),
	}
	if frozen, err := a.frozen(); err != nil {
		return fail(err)
	} else if frozen {
		return fail(ErrFrozen)
	}
	pids, err := subtreeProcs(a.primary())
	if err != nil {
		return fail(err)
	}
	if len(pids) == 0 {
		return fail(ErrExited)
	}
	a.pid = pids[0]
	if s.V2 != "" {
		if a.cgID, err = cgroupID(s.V2); err != nil {
			return fail(err)
		}
	}
	a.saved = s.saveCPU()
	if err := m.reserve(spec.Name); err != nil {
		return fail(err)
	}
	if err := m.guard.send(guardMsg{Op: "add", Name: spec.Name, Cgroups: s, Adopted: &a.saved}); err != nil {
		m.release(spec.Name)
		return fail(err)
	}
	m.mu.Lock()
	closed := m.closed
	if !closed {
		m.adopted[spec.Name] = a
	}
	m.mu.Unlock()
	if closed {
		_ = m.guard.send(guardMsg{Op: "del", Name: spec.Name})
		m.release(spec.Name)
		return fail(fmt.Errorf("cell manager: %w", ErrClosed))
	}
	go a.watch()
	m.log.Debug("cgroup adopted", "cell", a.name, "cgroup", rel, "pid", a.pid, "freezer", fz, "cgroup_id", a.cgID)
	return a, nil
}

// adoptedFreezer picks the freezer for an adopted cgroup set.
func adoptedFreezer(s *cgroupSet, want FreezerKind) (FreezerKind, error) {
	v2 := s.V2 != "" && cgroupfs.Exists(filepath.Join(s.V2, "cgroup.freeze"))
	v1 := s.V1["freezer"] != "" && cgroupfs.Exists(filepath.Join(s.V1["freezer"], "freezer.state"))
	switch want {
	case "", FreezerAuto:
		// On a hybrid host the cgroup2 directory may exist without the
		// processes in it (a v1-only runtime): freezing it would stop
		// nothing.
		if v2 && (!v1 || populatedV2(s.V2)) {
			return FreezerV2, nil
		}
		if v1 {
			return FreezerV1, nil
		}
	case FreezerV2:
		if v2 {
			return FreezerV2, nil
		}
	case FreezerV1:
		if v1 {
			return FreezerV1, nil
		}
	}
	return "", fmt.Errorf("%w: %q for this cgroup (v2 cgroup.freeze: %t, v1 freezer: %t; adopted cells have no signal freezer)", ErrFreezerUnavailable, want, v2, v1)
}

// populatedV2 reports whether cgroup.events in dir says "populated 1".
func populatedV2(dir string) bool {
	v, err := cgroupfs.ReadKeyed(filepath.Join(dir, "cgroup.events"), "populated")
	return err == nil && v == 1
}

// subtreeProcs returns the processes of dir's cgroup and of every cgroup
// below it.
func subtreeProcs(dir string) ([]int, error) {
	var out []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil // a child cgroup went while we walked
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := cgroupfs.ReadPIDs(filepath.Join(p, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		out = append(out, pids...)
		return err
	})
	return out, err
}

// MaxAdoptedNameLen bounds an adopted cell's name: room for a Kubernetes
// namespace (63 bytes), a pod name (253) and an incarnation ("/N").
const MaxAdoptedNameLen = 320

// ValidAdoptedName checks an adopted cell's name: 1 to MaxAdoptedNameLen
// bytes of segments separated by single '/', each segment 1 to 253 bytes
// of ASCII letters, digits, '.', '_' and '-', and not "." or "..". A
// Kubernetes pod is "namespace/pod". The error wraps ErrInvalidName.
func ValidAdoptedName(name string) error {
	if name == "" || len(name) > MaxAdoptedNameLen {
		return fmt.Errorf("%w: %q (1 to %d bytes)", ErrInvalidName, name, MaxAdoptedNameLen)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if !validSegment(seg) {
			return fmt.Errorf("%w: %q has a bad segment %q (want 1 to 253 letters, digits, '.', '_' or '-', not . or ..)", ErrInvalidName, name, seg)
		}
	}
	return nil
}

// validSegment reports whether seg is a segment of an adopted name.
func validSegment(seg string) bool {
	if seg == "" || seg == "." || seg == ".." || len(seg) > 253 {
		return false
	}
	for _, r := range seg {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// cleanCgroupPath checks a cgroup path as /proc/<pid>/cgroup lists it and
// returns it relative, without a leading '/'.
func cleanCgroupPath(p string) (string, error) {
	if p == "" || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%w: cgroup path %q", ErrInvalidName, p)
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	c := path.Clean(p)
	if c != p && c+"/" != p || c == "/" || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		return "", fmt.Errorf("%w: cgroup path %q (want a clean path below the root, such as /kubepods/pod<uid>)", ErrInvalidName, p)
	}
	return strings.TrimPrefix(c, "/"), nil
}

// primary is the directory whose existence and population say whether
// the cell lives: the cgroup2 directory where it holds the processes,
// else the v1 freezer's, else any.
func (a *adopted) primary() string {
	if a.freezer == FreezerV2 {
		return a.cg.V2
	}
	if d := a.cg.V1["freezer"]; d != "" {
		return d
	}
	return a.cg.dirs()[0]
}

// watch closes done once the cgroup is removed or empty, or returns when
// the cell is closed.
func (a *adopted) watch() {
	t := time.NewTicker(adoptPoll)
	defer t.Stop()
	dir := a.primary()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		var gone error
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			gone = ErrCgroupRemoved
		} else if a.freezer == FreezerV2 {
			if v, err := cgroupfs.ReadKeyed(filepath.Join(dir, "cgroup.events"), "populated"); err == nil && v == 0 {
				gone = ErrCgroupEmpty
			}
		} else if pids, err := subtreeProcs(dir); err == nil && len(pids) == 0 {
			gone = ErrCgroupEmpty
		}
		if gone != nil {
			a.waitErr = fmt.Errorf("%w: %s", gone, a.cgroup)
			close(a.done)
			return
		}
	}
}

func (a *adopted) Name() string          { return a.name }
func (a *adopted) PID() int              { return a.pid }
func (a *adopted) Backend() string       { return a.backend }
func (a *adopted) Freezer() FreezerKind  { return a.freezer }
func (a *adopted) CgroupID() uint64      { return a.cgID }
func (a *adopted) Done() <-chan struct{} { return a.done }

// Cgroup returns the adopted cgroup's path below each hierarchy's root.
func (a *adopted) Cgroup() string { return "/" + a.cgroup }

// Pause implements Cell: it freezes the cgroup and everything below it.
func (a *adopted) Pause(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.isDone() {
		return fmt.Errorf("pausing cell %q: %w", a.name, ErrExited)
	}
	var err error
	if a.freezer == FreezerV1 {
		err = a.cg.freezeV1(ctx)
	} else {
		err = a.cg.freezeV2(ctx)
	}
	a.paused = true
	if err != nil {
		// Never leave a cell half-frozen.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		if terr := a.thaw(tctx); terr != nil {
			a.m.log.Warn("thawing after failed pause", "cell", a.name, "err", terr)
		}
		return fmt.Errorf("pausing cell %q: %w", a.name, err)
	}
	return nil
}

// Resume implements Cell.
func (a *adopted) Resume(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.thaw(ctx); err != nil {
		return fmt.Errorf("resuming cell %q: %w", a.name, err)
	}
	return nil
}

// thaw undoes a pause; a cgroup that is gone needs no thawing.
func (a *adopted) thaw(ctx context.Context) error {
	var err error
	if a.freezer == FreezerV1 {
		err = a.cg.thawV1(ctx)
	} else {
		err = a.cg.thawV2(ctx)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	a.paused = false
	return nil
}

func (a *adopted) frozen() (bool, error) {
	if a.freezer == FreezerV1 {
		return a.cg.frozenV1()
	}
	return a.cg.frozenV2()
}

func (a *adopted) isDone() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// LimitCPU implements CPULimiter. cores ≤ 0 writes back the bandwidth the
// owner had set when the cell was adopted.
func (a *adopted) LimitCPU(cores float64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var err error
	if cores <= 0 {
		err = a.cg.restoreCPU(a.saved)
		a.limited = false
	} else {
		err = a.cg.limitCPU(cores)
		a.limited = true
	}
	if err != nil {
		return fmt.Errorf("cell %q: %w", a.name, err)
	}
	return nil
}

// Kill implements Cell: Maxwell kills no adopted process. It asks the
// Owner to stop the cell, or fails with ErrNotOwned where there is none.
// It returns once the owner has been asked, not once the processes are
// gone (Done says that).
func (a *adopted) Kill(ctx context.Context) error {
	if a.owner == nil {
		return fmt.Errorf("killing cell %q (cgroup /%s): %w", a.name, a.cgroup, ErrNotOwned)
	}
	if err := a.owner.Stop(ctx, a.name); err != nil {
		return fmt.Errorf("asking the owner of cell %q to stop it: %w", a.name, err)
	}
	return nil
}

// Wait implements Cell: it waits for Done and returns ErrCgroupRemoved or
// ErrCgroupEmpty (wrapped, with the path).
func (a *adopted) Wait(ctx context.Context) error {
	select {
	case <-a.done:
		return a.waitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats implements Cell. The figures are the cgroup's, its descendants'
// included where the kernel accounts hierarchically (cpuacct.usage,
// memory.usage_in_bytes, pids.current, cpu.stat, memory.current).
func (a *adopted) Stats() (Stats, error) {
	st, err := a.cg.stats()
	if err == nil {
		st.Frozen, err = a.frozen()
	}
	if err != nil {
		return st, fmt.Errorf("stats of cell %q: %w", a.name, err)
	}
	return st, nil
}

// Contains implements Cell: pid is in the cgroup or in one below it.
func (a *adopted) Contains(pid int) bool {
	dir := a.primary()
	if cgroupfs.HasProcess(dir, pid) {
		return true
	}
	found := false
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return filepath.SkipDir
		}
		if d.IsDir() && p != dir && cgroupfs.HasProcess(p, pid) {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// Close implements Cell: it lets go of the cell. It thaws it if Maxwell
// froze it, writes back the CPU bandwidth its owner had set if Maxwell
// changed it, and leaves its processes and cgroups alone. It is
// idempotent and waits at most about 10 s.
func (a *adopted) Close() error {
	a.closeOnce.Do(func() {
		close(a.stop)
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		var errs []error
		a.mu.Lock()
		if a.paused {
			if err := a.thaw(ctx); err != nil {
				errs = append(errs, fmt.Errorf("thawing cell %q: %w", a.name, err))
			}
		}
		if a.limited {
			if err := a.cg.restoreCPU(a.saved); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("restoring the CPU limit of cell %q: %w", a.name, err))
			}
			a.limited = false
		}
		a.mu.Unlock()
		// A cell that could not be let go of cleanly stays with the
		// guard, which thaws it when the host exits.
		if len(errs) == 0 {
			if err := a.m.guard.send(guardMsg{Op: "del", Name: a.name}); err != nil && !errors.Is(err, ErrClosed) {
				errs = append(errs, err)
			}
		}
		a.m.mu.Lock()
		delete(a.m.adopted, a.name)
		a.m.mu.Unlock()
		a.m.release(a.name)
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// String returns the cell's name and cgroup.
func (a *adopted) String() string { return a.name + "[/" + a.cgroup + "]" }

// saveCPU reads the CPU bandwidth files Maxwell may change.
func (s *cgroupSet) saveCPU() adoptedSaved {
	var v adoptedSaved
	if d := s.V1["cpu"]; d != "" {
		v.CPUPeriod, _ = cgroupfs.ReadString(filepath.Join(d, "cpu.cfs_period_us"))
		v.CPUQuota, _ = cgroupfs.ReadString(filepath.Join(d, "cpu.cfs_quota_us"))
	}
	if s.V2 != "" {
		v.CPUMax, _ = cgroupfs.ReadString(filepath.Join(s.V2, "cpu.max"))
	}
	return v
}

// restoreCPU writes back what saveCPU read. The quota is lifted before the
// period is set, so that no intermediate pair is refused.
func (s *cgroupSet) restoreCPU(v adoptedSaved) error {
	var errs []error
	if d := s.V1["cpu"]; d != "" && v.CPUPeriod != "" && v.CPUQuota != "" {
		for _, w := range [][2]string{{"cpu.cfs_quota_us", "-1"}, {"cpu.cfs_period_us", v.CPUPeriod}, {"cpu.cfs_quota_us", v.CPUQuota}} {
			if err := cgroupfs.Write(filepath.Join(d, w[0]), w[1]); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	if s.V2 != "" && v.CPUMax != "" && s.V1["cpu"] == "" {
		if err := cgroupfs.Write(filepath.Join(s.V2, "cpu.max"), v.CPUMax); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// release lets go of an adopted set when the host is gone (the guard):
// thaw, write back the CPU bandwidth; kill nothing, remove nothing.
func (s *cgroupSet) release(v adoptedSaved) error {
	s.thawNoWait()
	if err := s.restoreCPU(v); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
