// Package cgroupfs reads and writes cgroup control files, for the cell
// backends that keep cells in cgroups (package cell and package cell/oci).
// Every path is a full path: callers join it from their own cgroup root.
package cgroupfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrGarbage means a kernel file held something other than its documented
// format.
var ErrGarbage = errors.New("unexpected content in kernel file")

// Write writes s to an existing control file, the way cgroup files must be
// written: no O_CREAT, no O_TRUNC, one write.
func Write(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(s)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("write %q to %s: %w", strings.TrimSpace(s), path, werr)
	}
	return cerr
}

// ReadString reads a one-value file, trimmed of white space.
func ReadString(path string) (string, error) { return (*Files)(nil).String(path) }

// ReadUint reads a file holding one unsigned integer (e.g. pids.current,
// memory.current, cpuacct.usage).
func ReadUint(path string) (uint64, error) { return (*Files)(nil).Uint(path) }

// ReadKeyed reads one key of a flat-keyed file such as cpu.stat or
// cgroup.events ("key value" per line).
func ReadKeyed(path, key string) (uint64, error) { return (*Files)(nil).Keyed(path, key) }

// ReadPIDs reads a cgroup.procs, cgroup.threads or tasks file.
func ReadPIDs(path string) ([]int, error) {
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

// Exists reports whether path exists.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// How Poll waits. The first pollSpins checks follow each other with only a
// yield between them, because a freeze usually completes within tens of
// microseconds and the runtime cannot sleep for less than about a
// millisecond; after that the wait backs off from pollFirst to pollMax so
// that a long wait costs little CPU.
const (
	pollSpins = 200
	pollFirst = 50 * time.Microsecond
	pollMax   = time.Millisecond
)

// Poll calls cond until it reports true, fails, or ctx ends.
func Poll(ctx context.Context, cond func() (bool, error)) error {
	for range pollSpins {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		runtime.Gosched()
	}
	delay := pollFirst
	t := time.NewTimer(delay)
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
		delay = min(2*delay, pollMax)
		t.Reset(delay)
	}
}

// Dirs are the directories one cgroup has in each hierarchy that accounts
// for it; any may be "". V2 is its cgroup2 directory (the unified one on a
// hybrid host).
type Dirs struct {
	CPUAcct, Memory, PIDs string // v1 hierarchies
	// Tasks is any v1 directory of the cgroup, for counting its tasks
	// when there is neither a pids hierarchy nor a V2 directory.
	Tasks string
	V2    string
}

// Usage is what a cgroup has used.
type Usage struct {
	// CPUTime is the cumulative CPU time of all its tasks.
	CPUTime time.Duration
	// MemoryBytes is its current memory charge.
	MemoryBytes uint64
	// Tasks is the number of its tasks (threads).
	Tasks int
}

// ReadUsage reads a cgroup's accounting: from the v1 hierarchy where one
// accounts for a figure, from cgroup2 otherwise (cpu.stat usage_usec,
// memory.current, pids.current or cgroup.threads). A figure no hierarchy
// accounts for is left zero.
func ReadUsage(d Dirs) (Usage, error) { return (*Files)(nil).ReadUsage(d) }

// ReadUsage is the package's ReadUsage through f's descriptors.
func (f *Files) ReadUsage(d Dirs) (Usage, error) {
	u, err := f.ReadCPUMemory(d)
	if err != nil {
		return u, err
	}
	var n uint64
	count := func(path string) {
		var tids []int
		tids, err = ReadPIDs(path)
		n = uint64(len(tids))
	}
	switch {
	case d.PIDs != "":
		n, err = f.Uint(filepath.Join(d.PIDs, "pids.current"))
	case d.V2 != "":
		if n, err = f.Uint(filepath.Join(d.V2, "pids.current")); absent(err) {
			count(filepath.Join(d.V2, "cgroup.threads"))
		}
	case d.Tasks != "":
		count(filepath.Join(d.Tasks, "tasks"))
	}
	if err != nil {
		return u, fmt.Errorf("tasks: %w", err)
	}
	u.Tasks = int(n)
	return u, nil
}

// ReadCPUMemory reads what ReadUsage does but the task count: the two
// figures a daemon reads of every cell every tick.
func (f *Files) ReadCPUMemory(d Dirs) (Usage, error) {
	var u Usage
	switch {
	case d.CPUAcct != "":
		ns, err := f.Uint(filepath.Join(d.CPUAcct, "cpuacct.usage"))
		if err != nil {
			return u, fmt.Errorf("cpu time: %w", err)
		}
		u.CPUTime = time.Duration(ns)
	case d.V2 != "":
		us, err := f.Keyed(filepath.Join(d.V2, "cpu.stat"), "usage_usec")
		if err != nil {
			return u, fmt.Errorf("cpu time: %w", err)
		}
		u.CPUTime = time.Duration(us) * time.Microsecond
	}
	var err error
	switch {
	case d.Memory != "":
		u.MemoryBytes, err = f.Uint(filepath.Join(d.Memory, "memory.usage_in_bytes"))
	case d.V2 != "":
		if u.MemoryBytes, err = f.Uint(filepath.Join(d.V2, "memory.current")); absent(err) {
			err = nil // no memory controller there
		}
	}
	if err != nil {
		return u, fmt.Errorf("memory: %w", err)
	}
	return u, nil
}

// absent reports that a control file does not exist: in cgroup2, a
// controller not enabled for the group.
func absent(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// HasProcess reports whether pid is listed in dir's cgroup.procs. An
// unreadable file counts as no.
func HasProcess(dir string, pid int) bool {
	if dir == "" || pid <= 0 {
		return false
	}
	pids, err := ReadPIDs(filepath.Join(dir, "cgroup.procs"))
	return err == nil && slices.Contains(pids, pid)
}
