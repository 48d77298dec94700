package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// ErrGarbage means a kernel file held something other than its documented
// format.
var ErrGarbage = cell.ErrGarbage

// cgroups are the directories of one container's cgroups that Maxwell
// reads; any may be "".
type cgroups struct {
	cpuacct string // v1 cpuacct
	memory  string // v1 memory
	pids    string // v1 pids
	freezer string // v1 freezer
	v2      string // cgroup2 directory (unified on hybrid hosts)
}

// cgroupsOf returns where a runtime puts container name's cgroups under
// layout l with cgroupsPath /<parent>/<name>.
func cgroupsOf(l cell.Layout, parent, name string) cgroups {
	var g cgroups
	at := func(ctrl string) string {
		if mp := l.V1[ctrl]; mp != "" {
			return filepath.Join(mp, parent, name)
		}
		return ""
	}
	g.cpuacct, g.memory, g.pids, g.freezer = at("cpuacct"), at("memory"), at("pids"), at("freezer")
	if l.Unified != "" {
		g.v2 = filepath.Join(l.Unified, parent, name)
	}
	return g
}

// procsDir is the directory whose cgroup.procs lists the container's
// processes.
func (g cgroups) procsDir() string {
	for _, d := range []string{g.v2, g.freezer, g.cpuacct, g.memory, g.pids} {
		if d != "" {
			return d
		}
	}
	return ""
}

// contains reports whether pid (in the host's PID namespace) is a process
// of the cgroup.
func (g cgroups) contains(pid int) bool {
	return cgroupfs.HasProcess(g.procsDir(), pid)
}

// stats reads the cgroups' accounting files: v1 files where the
// hierarchy is mounted, the cgroup2 ones otherwise. frozen is read from
// the freezer the runtime uses.
func (g cgroups) stats(freezer cell.FreezerKind) (cell.Stats, error) {
	u, err := cgroupfs.ReadUsage(cgroupfs.Dirs{CPUAcct: g.cpuacct, Memory: g.memory, PIDs: g.pids, V2: g.v2})
	st := cell.Stats{CPUTime: u.CPUTime, MemoryBytes: u.MemoryBytes, PIDs: u.Tasks}
	if err != nil {
		return st, err
	}
	if st.Frozen, err = g.frozen(freezer); err != nil {
		return st, fmt.Errorf("freezer: %w", err)
	}
	return st, nil
}

// frozen reports whether the freezer says the cgroup is stopped.
func (g cgroups) frozen(freezer cell.FreezerKind) (bool, error) {
	if freezer == cell.FreezerV1 {
		s, err := cgroupfs.ReadString(filepath.Join(g.freezer, "freezer.state"))
		return s == "FROZEN", err
	}
	v, err := cgroupfs.ReadKeyed(filepath.Join(g.v2, "cgroup.events"), "frozen")
	return v == 1, err
}

// thawNoWait asks both freezers to thaw, ignoring errors: for paths that
// must not stop early.
func (g cgroups) thawNoWait() {
	if g.freezer != "" {
		_ = cgroupfs.Write(filepath.Join(g.freezer, "freezer.state"), "THAWED")
	}
	if g.v2 != "" {
		_ = cgroupfs.Write(filepath.Join(g.v2, "cgroup.freeze"), "0")
	}
}

// killDir SIGKILLs every process in cgroup directory d until it is empty.
// A v1 freezer directory is thawed first, since frozen tasks cannot die.
func killDir(ctx context.Context, d string) error {
	if _, err := os.Stat(filepath.Join(d, "freezer.state")); err == nil {
		_ = cgroupfs.Write(filepath.Join(d, "freezer.state"), "THAWED")
	}
	if _, err := os.Stat(filepath.Join(d, "cgroup.freeze")); err == nil {
		_ = cgroupfs.Write(filepath.Join(d, "cgroup.freeze"), "0")
	}
	return cgroupfs.Poll(ctx, func() (bool, error) {
		pids, err := cgroupfs.ReadPIDs(filepath.Join(d, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if len(pids) == 0 {
			return true, nil
		}
		if _, err := os.Stat(filepath.Join(d, "cgroup.kill")); err == nil {
			_ = cgroupfs.Write(filepath.Join(d, "cgroup.kill"), "1")
		}
		for _, p := range pids {
			if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return false, fmt.Errorf("kill %d: %w", p, err)
			}
		}
		return false, nil
	})
}

// rmdirCgroup removes cgroup directory d, retrying while the kernel says
// it is busy (a task not yet fully gone).
func rmdirCgroup(ctx context.Context, d string) error {
	err := cgroupfs.Poll(ctx, func() (bool, error) {
		err := os.Remove(d)
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
			return true, nil
		case errors.Is(err, syscall.EBUSY):
			return false, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("removing cgroup %s: %w", d, err)
	}
	return nil
}

// cgroupID returns the inode number of cgroup2 directory d: what
// bpf_get_current_cgroup_id returns for its tasks.
func cgroupID(d string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(d, &st); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", d, err)
	}
	return st.Ino, nil
}
