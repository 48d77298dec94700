package cell

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"
)

// cgroupSet is the set of cgroup directories one cell lives in: one per
// v1 hierarchy and one in the v2 hierarchy, any of which may be missing.
// It is what the guard process is told about, so it is JSON-encodable and
// holds absolute paths only.
type cgroupSet struct {
	// V1 maps a v1 controller name to the cell's directory in the
	// hierarchy that carries it. Co-mounted controllers share a directory.
	V1 map[string]string `json:"v1,omitempty"`
	// V2 is the cell's directory in the cgroup2 hierarchy, or "".
	V2 string `json:"v2,omitempty"`

	// files keeps the control files read every tick open (nil: read
	// each afresh); whoever owns the set closes it.
	files *cgroupfs.Files
}

// dirs returns every distinct directory of s, v1 first, sorted.
func (s *cgroupSet) dirs() []string {
	seen := make(map[string]bool)
	var out []string
	for _, d := range s.V1 {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	if s.V2 != "" {
		out = append(out, s.V2)
	}
	return out
}

// procs returns the union of the PIDs listed in every cgroup.procs of s.
// Directories that no longer exist count as empty.
func (s *cgroupSet) procs() ([]int, error) {
	seen := make(map[int]bool)
	var out []int
	for _, d := range s.dirs() {
		pids, err := cgroupfs.ReadPIDs(filepath.Join(d, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, p := range pids {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// contains reports whether pid is listed in the cell's v2 cgroup, or its
// first v1 directory where there is no v2 cgroup.
func (s *cgroupSet) contains(pid int) bool {
	d := s.V2
	if d == "" {
		if d = s.V1["freezer"]; d == "" {
			if ds := s.dirs(); len(ds) > 0 {
				d = ds[0]
			}
		}
	}
	return cgroupfs.HasProcess(d, pid)
}

// usageDirs are the directories that account for s's usage.
func (s *cgroupSet) usageDirs() cgroupfs.Dirs {
	return cgroupfs.Dirs{CPUAcct: s.V1["cpuacct"], Memory: s.V1["memory"], PIDs: s.V1["pids"], V2: s.V2}
}

// join moves pid (and all its threads) into every cgroup of s.
func (s *cgroupSet) join(pid int) error {
	for _, d := range s.dirs() {
		if err := cgroupfs.Write(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("moving pid %d into %s: %w", pid, d, err)
		}
	}
	return nil
}

// v1 freezer states, as freezer.state reads and is written.
const (
	v1Frozen = "FROZEN"
	v1Thawed = "THAWED"
)

// freezeV1 freezes s with the v1 freezer and returns once freezer.state
// reads FROZEN (every task is in the refrigerator). A cgroup can stay in
// FREEZING while a task sleeps uninterruptibly, so the request is
// repeated now and then, as runc does.
func (s *cgroupSet) freezeV1(ctx context.Context) error {
	dir := s.V1["freezer"]
	if dir == "" {
		return fmt.Errorf("v1 freezer: %w", ErrFreezerUnavailable)
	}
	state := filepath.Join(dir, "freezer.state")
	if err := cgroupfs.Write(state, v1Frozen); err != nil {
		return fmt.Errorf("freezing: %w", err)
	}
	n := 0
	return cgroupfs.Poll(ctx, func() (bool, error) {
		st, err := s.files.String(state)
		if err != nil {
			return false, fmt.Errorf("freezing: %w", err)
		}
		if st == v1Frozen {
			return true, nil
		}
		if n++; n%64 == 0 || st == v1Thawed {
			if err := cgroupfs.Write(state, v1Frozen); err != nil {
				return false, fmt.Errorf("freezing: %w", err)
			}
		}
		return false, nil
	})
}

// thawV1 thaws s's v1 freezer and returns once freezer.state reads THAWED.
func (s *cgroupSet) thawV1(ctx context.Context) error {
	dir := s.V1["freezer"]
	if dir == "" {
		return nil
	}
	state := filepath.Join(dir, "freezer.state")
	if err := cgroupfs.Write(state, v1Thawed); err != nil {
		return fmt.Errorf("thawing: %w", err)
	}
	return cgroupfs.Poll(ctx, func() (bool, error) {
		st, err := s.files.String(state)
		if err != nil {
			return false, fmt.Errorf("thawing: %w", err)
		}
		return st == v1Thawed, nil
	})
}

// frozenV1 reports whether freezer.state reads FROZEN.
func (s *cgroupSet) frozenV1() (bool, error) {
	st, err := s.files.String(filepath.Join(s.V1["freezer"], "freezer.state"))
	return st == v1Frozen, err
}

// freezeV2 freezes s's v2 cgroup and returns once cgroup.events reports
// "frozen 1".
func (s *cgroupSet) freezeV2(ctx context.Context) error {
	return s.setFreezeV2(ctx, 1)
}

// thawV2 thaws s's v2 cgroup and returns once cgroup.events reports
// "frozen 0".
func (s *cgroupSet) thawV2(ctx context.Context) error {
	if s.V2 == "" {
		return nil
	}
	return s.setFreezeV2(ctx, 0)
}

func (s *cgroupSet) setFreezeV2(ctx context.Context, want uint64) error {
	if s.V2 == "" {
		return fmt.Errorf("v2 freezer: %w", ErrFreezerUnavailable)
	}
	verb := "thawing"
	if want == 1 {
		verb = "freezing"
	}
	if err := cgroupfs.Write(filepath.Join(s.V2, "cgroup.freeze"), strconv.FormatUint(want, 10)); err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	events := filepath.Join(s.V2, "cgroup.events")
	return cgroupfs.Poll(ctx, func() (bool, error) {
		v, err := s.files.Keyed(events, "frozen")
		if err != nil {
			return false, fmt.Errorf("%s: %w", verb, err)
		}
		return v == want, nil
	})
}

// frozenV2 reports whether cgroup.events says "frozen 1".
func (s *cgroupSet) frozenV2() (bool, error) {
	v, err := s.files.Keyed(filepath.Join(s.V2, "cgroup.events"), "frozen")
	return v == 1, err
}

// kill SIGKILLs every task of s and returns once no cgroup of s lists a
// process. It uses cgroup.kill where the v2 cgroup has it (atomic against
// forks); elsewhere it freezes (so nothing can fork), signals every
// listed process, and repeats until the cgroups are empty. Frozen tasks
// are thawed, since tasks in the v1 freezer cannot die until thawed.
func (s *cgroupSet) kill(ctx context.Context) error {
	cgKill := ""
	if s.V2 != "" && cgroupfs.Exists(filepath.Join(s.V2, "cgroup.kill")) {
		cgKill = filepath.Join(s.V2, "cgroup.kill")
	}
	var lastErr error
	err := cgroupfs.Poll(ctx, func() (bool, error) {
		pids, err := s.procs()
		if err != nil {
			return false, err
		}
		if len(pids) == 0 {
			return true, nil
		}
		if cgKill != "" {
			if err := cgroupfs.Write(cgKill, "1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
				lastErr = err
			}
		} else {
			if d := s.V1["freezer"]; d != "" {
				_ = cgroupfs.Write(filepath.Join(d, "freezer.state"), v1Frozen)
			} else if s.V2 != "" {
				_ = cgroupfs.Write(filepath.Join(s.V2, "cgroup.freeze"), "1")
			}
			if pids, err = s.procs(); err != nil {
				return false, err
			}
			for _, p := range pids {
				if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
					lastErr = fmt.Errorf("kill %d: %w", p, err)
				}
			}
		}
		s.thawNoWait()
		return false, nil
	})
	if err != nil && lastErr != nil {
		return fmt.Errorf("%w (last error: %v)", err, lastErr)
	}
	return err
}

// thawNoWait asks every freezer of s to thaw without waiting for it.
// Errors are ignored: it is used on paths that must not stop early.
func (s *cgroupSet) thawNoWait() {
	if d := s.V1["freezer"]; d != "" {
		_ = cgroupfs.Write(filepath.Join(d, "freezer.state"), v1Thawed)
	}
	if s.V2 != "" {
		_ = cgroupfs.Write(filepath.Join(s.V2, "cgroup.freeze"), "0")
	}
}

// remove removes every directory of s. Directories already gone are fine;
// EBUSY (a task not yet fully gone) is retried until ctx ends.
func (s *cgroupSet) remove(ctx context.Context) error {
	var errs []error
	if err := s.files.Close(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range s.dirs() {
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
			errs = append(errs, fmt.Errorf("removing %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// cleanup thaws, kills and removes s: the one way out for a cell, used by
// Close, Sweep and the guard.
func (s *cgroupSet) cleanup(ctx context.Context) error {
	s.thawNoWait()
	kerr := s.kill(ctx)
	rerr := s.remove(ctx)
	return errors.Join(kerr, rerr)
}

// stats reads s's accounting files. Figures the layout does not account
// for are left zero.
func (s *cgroupSet) stats() (Stats, error) {
	d := s.usageDirs()
	if ds := s.dirs(); len(ds) > 0 {
		d.Tasks = ds[0]
	}
	u, err := s.files.ReadUsage(d)
	return Stats{CPUTime: u.CPUTime, MemoryBytes: u.MemoryBytes, PIDs: u.Tasks}, err
}
