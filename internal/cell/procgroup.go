package cell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"

	"github.com/prometheus/procfs"
)

// procGroup is a cell of the signal backend: the process group the cell's
// main process leads. Processes that leave the group (setpgid, setsid)
// leave the cell; that is the backend's documented weakness.
//
// Finding the members means reading the stat file of every process on
// the host (about a millisecond per hundred processes), too slow for
// Pause. So every full scan (Start, Stats, Kill) leaves the members it
// found in known, and Pause and Resume wait for those and the leader.
// SIGSTOP and SIGCONT go to the whole group at once, so a member forked
// since the last scan is signalled with the rest; Pause just does not
// wait for it to reach state T.
//
// Pause, Resume and the scans read only the state and group of each task,
// with a small parser of their own; Stats uses prometheus/procfs.
type procGroup struct {
	root string // the proc file system
	fs   procfs.FS
	pgid int

	mu    sync.Mutex
	known []int // members found by the last full scan
}

func newProcGroup(root string, pfs procfs.FS, pgid int) *procGroup {
	return &procGroup{root: root, fs: pfs, pgid: pgid, known: []int{pgid}}
}

// knownMembers returns the members of the last scan, and the leader.
func (g *procGroup) knownMembers() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	pids := slices.Clone(g.known)
	if !slices.Contains(pids, g.pgid) {
		pids = append(pids, g.pgid)
	}
	return pids
}

// gone reports whether err says a process vanished while being read.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// taskStat is what the hot paths need from a <proc>/<pid>/stat file.
type taskStat struct {
	state byte
	pgrp  int
}

// readTaskStat reads the state and process group of a stat file, in the
// format of proc(5): "pid (comm) state ppid pgrp ...", where comm may
// itself hold spaces and parentheses.
func readTaskStat(path string) (taskStat, error) {
	// One open, one read, one close: this runs once per process on the
	// host in every scan.
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return taskStat{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var buf [1024]byte
	n, err := syscall.Read(fd, buf[:])
	syscall.Close(fd)
	if err != nil {
		return taskStat{}, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return parseTaskStat(path, buf[:max(n, 0)])
}

// parseTaskStat parses the start of a stat file read from path.
func parseTaskStat(path string, b []byte) (taskStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return taskStat{}, fmt.Errorf("%s: %w", path, ErrGarbage)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return taskStat{}, fmt.Errorf("%s: %w", path, ErrGarbage)
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return taskStat{}, fmt.Errorf("%s: %w: pgrp %q", path, ErrGarbage, f[2])
	}
	return taskStat{state: f[0][0], pgrp: pgrp}, nil
}

func (t taskStat) dead() bool { return t.state == 'Z' || t.state == 'X' }

// members returns the PIDs of the live (not zombie) processes in g.
func (g *procGroup) members() ([]int, error) {
	names, err := readDirNames(g.root)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var out []int
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		st, err := readTaskStat(filepath.Join(g.root, n, "stat"))
		if err != nil {
			if gone(err) {
				continue
			}
			return nil, fmt.Errorf("reading process %d: %w", pid, err)
		}
		if st.pgrp == g.pgid && !st.dead() {
			out = append(out, pid)
		}
	}
	g.mu.Lock()
	g.known = slices.Clone(out)
	g.mu.Unlock()
	return out, nil
}

func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

// contains reports whether pid is a live member of g.
func (g *procGroup) contains(pid int) bool {
	st, err := readTaskStat(filepath.Join(g.root, strconv.Itoa(pid), "stat"))
	return err == nil && st.pgrp == g.pgid && !st.dead()
}

// allThreads calls ok on the state of every thread of every process in
// pids and reports whether it held for all of them. Vanished processes and
// threads are skipped.
func (g *procGroup) allThreads(pids []int, ok func(state byte) bool) (bool, error) {
	for _, pid := range pids {
		taskDir := filepath.Join(g.root, strconv.Itoa(pid), "task")
		tids, err := readDirNames(taskDir)
		if err != nil {
			if gone(err) {
				continue
			}
			return false, fmt.Errorf("listing threads of %d: %w", pid, err)
		}
		for _, tid := range tids {
			st, err := readTaskStat(filepath.Join(taskDir, tid, "stat"))
			if err != nil {
				if gone(err) {
					continue
				}
				return false, fmt.Errorf("reading thread %s of %d: %w", tid, pid, err)
			}
			if !ok(st.state) {
				return false, nil
			}
		}
	}
	return true, nil
}

// isStopped reports whether a task state means the task runs no more:
// stopped (T), stopped by a tracer (t), or dead.
func isStopped(state byte) bool {
	switch state {
	case 'T', 't', 'Z', 'X':
		return true
	}
	return false
}

// signal sends sig to the whole group. ESRCH (no member left) is reported
// as ErrExited.
func (g *procGroup) signal(sig syscall.Signal) error {
	if err := syscall.Kill(-g.pgid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("process group %d: %w", g.pgid, ErrExited)
		}
		return fmt.Errorf("sending %v to process group %d: %w", sig, g.pgid, err)
	}
	return nil
}

// stop sends SIGSTOP to the group and returns once every thread of every
// known member (see procGroup) is in state T.
func (g *procGroup) stop(ctx context.Context) error {
	if err := g.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	pids := g.knownMembers()
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return g.allThreads(pids, isStopped) }); err != nil {
		return fmt.Errorf("stopping process group %d: %w", g.pgid, err)
	}
	return nil
}

// cont sends SIGCONT to the group and returns once no thread of any known
// member is in state T any more.
func (g *procGroup) cont(ctx context.Context) error {
	if err := g.signal(syscall.SIGCONT); err != nil {
		return err
	}
	pids := g.knownMembers()
	err := cgroupfs.Poll(ctx, func() (bool, error) {
		return g.allThreads(pids, func(s byte) bool { return s != 'T' })
	})
	if err != nil {
		return fmt.Errorf("continuing process group %d: %w", g.pgid, err)
	}
	return nil
}

// kill SIGKILLs the group (a stopped process dies of SIGKILL too) and
// returns once it has no live member.
func (g *procGroup) kill(ctx context.Context) error {
	return cgroupfs.Poll(ctx, func() (bool, error) {
		if err := g.signal(syscall.SIGKILL); err != nil {
			if errors.Is(err, ErrExited) {
				return true, nil
			}
			return false, err
		}
		pids, err := g.members()
		return len(pids) == 0, err
	})
}

// stats sums the figures of the group's members. CPU time includes the
// reaped children of members (cutime, cstime), so work of descendants that
// have already exited is kept as long as their parents live; it has the
// 10 ms resolution of USER_HZ.
func (g *procGroup) stats() (Stats, error) {
	pids, err := g.members()
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	var ticks int64
	var live []int
	for _, pid := range pids {
		p, err := g.fs.Proc(pid)
		if err != nil {
			if gone(err) {
				continue
			}
			return Stats{}, err
		}
		st, err := p.Stat()
		if err != nil {
			if gone(err) {
				continue
			}
			return Stats{}, fmt.Errorf("reading process %d: %w", pid, err)
		}
		live = append(live, pid)
		ticks += int64(st.UTime) + int64(st.STime) + int64(st.CUTime) + int64(st.CSTime)
		s.MemoryBytes += uint64(st.ResidentMemory())
		s.PIDs += st.NumThreads
	}
	s.CPUTime = time.Duration(ticks) * (time.Second / userHZ)
	if len(live) > 0 {
		s.Frozen, err = g.allThreads(live, isStopped)
	}
	return s, err
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100
// on every Linux architecture Maxwell runs on).
const userHZ = 100
