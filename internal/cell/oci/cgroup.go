package oci

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// ErrGarbage means a kernel file held something other than its documented
// format.
var ErrGarbage = cell.ErrGarbage

// poll calls cond every few milliseconds until it reports true, fails, or
// ctx ends.
func poll(ctx context.Context, cond func() (bool, error)) error {
	delay := 100 * time.Microsecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		delay = min(2*delay, 10*time.Millisecond)
		t.Reset(delay)
	}
}

func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSpace(b)), nil
}

func readUint(path string) (uint64, error) {
	s, err := readTrimmed(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %q", path, ErrGarbage, s)
	}
	return v, nil
}

// readKeyed reads one key of a flat-keyed file such as cpu.stat or
// cgroup.events ("key value" per line).
func readKeyed(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w: key %s = %q", path, ErrGarbage, key, v)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: %w: no key %q", path, ErrGarbage, key)
}

// readPIDs reads a cgroup.procs, cgroup.threads or tasks file.
func readPIDs(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %q", path, ErrGarbage, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// writeFile writes s to an existing control file in one write.
func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(s)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("write %q to %s: %w", s, path, werr)
	}
	return cerr
}

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
	d := g.procsDir()
	if d == "" || pid <= 0 {
		return false
	}
	pids, err := readPIDs(filepath.Join(d, "cgroup.procs"))
	if err != nil {
		return false
	}
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

// stats reads the cgroups' accounting files: v1 files where the
// hierarchy is mounted, the cgroup2 ones otherwise. frozen is read from
// the freezer the runtime uses.
func (g cgroups) stats(freezer cell.FreezerKind) (cell.Stats, error) {
	var st cell.Stats
	switch {
	case g.cpuacct != "":
		ns, err := readUint(filepath.Join(g.cpuacct, "cpuacct.usage"))
		if err != nil {
			return st, fmt.Errorf("cpu time: %w", err)
		}
		st.CPUTime = time.Duration(ns)
	case g.v2 != "":
		us, err := readKeyed(filepath.Join(g.v2, "cpu.stat"), "usage_usec")
		if err != nil {
			return st, fmt.Errorf("cpu time: %w", err)
		}
		st.CPUTime = time.Duration(us) * time.Microsecond
	}
	var err error
	switch {
	case g.memory != "":
		st.MemoryBytes, err = readUint(filepath.Join(g.memory, "memory.usage_in_bytes"))
	case g.v2 != "":
		st.MemoryBytes, err = readUint(filepath.Join(g.v2, "memory.current"))
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	}
	if err != nil {
		return st, fmt.Errorf("memory: %w", err)
	}
	var n uint64
	switch {
	case g.pids != "":
		n, err = readUint(filepath.Join(g.pids, "pids.current"))
	case g.v2 != "":
		n, err = readUint(filepath.Join(g.v2, "pids.current"))
		if errors.Is(err, fs.ErrNotExist) {
			var tids []int
			tids, err = readPIDs(filepath.Join(g.v2, "cgroup.threads"))
			n = uint64(len(tids))
		}
	}
	if err != nil {
		return st, fmt.Errorf("tasks: %w", err)
	}
	st.PIDs = int(n)
	st.Frozen, err = g.frozen(freezer)
	if err != nil {
		return st, fmt.Errorf("freezer: %w", err)
	}
	return st, nil
}

// frozen reports whether the freezer says the cgroup is stopped.
func (g cgroups) frozen(freezer cell.FreezerKind) (bool, error) {
	if freezer == cell.FreezerV1 {
		s, err := readTrimmed(filepath.Join(g.freezer, "freezer.state"))
		return s == "FROZEN", err
	}
	v, err := readKeyed(filepath.Join(g.v2, "cgroup.events"), "frozen")
	return v == 1, err
}

// thawNoWait asks both freezers to thaw, ignoring errors: for paths that
// must not stop early.
func (g cgroups) thawNoWait() {
	if g.freezer != "" {
		_ = writeFile(filepath.Join(g.freezer, "freezer.state"), "THAWED")
	}
	if g.v2 != "" {
		_ = writeFile(filepath.Join(g.v2, "cgroup.freeze"), "0")
	}
}

// killDir SIGKILLs every process in cgroup directory d until it is empty.
// A v1 freezer directory is thawed first, since frozen tasks cannot die.
func killDir(ctx context.Context, d string) error {
	if _, err := os.Stat(filepath.Join(d, "freezer.state")); err == nil {
		_ = writeFile(filepath.Join(d, "freezer.state"), "THAWED")
	}
	if _, err := os.Stat(filepath.Join(d, "cgroup.freeze")); err == nil {
		_ = writeFile(filepath.Join(d, "cgroup.freeze"), "0")
	}
	return poll(ctx, func() (bool, error) {
		pids, err := readPIDs(filepath.Join(d, "cgroup.procs"))
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
			_ = writeFile(filepath.Join(d, "cgroup.kill"), "1")
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
	err := poll(ctx, func() (bool, error) {
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
