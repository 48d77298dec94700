package meter

import (
	"bufio"
	"bytes"
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
)

// Paths are a cell's directories in the memory-accounting hierarchies.
type Paths struct {
	// V1Memory is the cell's directory in the cgroup v1 memory
	// hierarchy, or "".
	V1Memory string
	// V2 is the cell's cgroup2 directory, or "". It is read only where
	// it has the memory controller (memory.stat and memory.current).
	V2 string
}

// Resolver finds the directories of the cgroup2 directory whose id is
// cgroupID.
type Resolver func(cgroupID uint64) (Paths, error)

// AccountingOptions configure OpenAccounting.
type AccountingOptions struct {
	// Resolve finds a watched cgroup's directories. nil means
	// CgroupResolver(CgroupRoot).
	Resolve Resolver
	// CgroupRoot is where the cgroup hierarchies are mounted, for the
	// default resolver. "" means "/sys/fs/cgroup".
	CgroupRoot string
	// PageSize is the size of a page in bytes; 0 means os.Getpagesize().
	PageSize uint64
	// Reason says why the eBPF meter is not used; it goes into
	// Source().Detail.
	Reason string
}

// Accounting is the fallback meter. It estimates freed memory from the
// kernel's per-cgroup memory accounting, which counts pages leaving a
// cgroup, not system calls, so its figures are approximations
// (Source().Estimated is true) and go into Counts.Unattributed.
//
// With a cgroup v1 memory directory it uses memory.stat's total_pgpgout
// (or pgpgout), the number of uncharge events, times the page size. An
// uncharge happens for every page that leaves the cgroup's charge,
// whoever frees it: munmap and madvise, but also page-cache reclaim and
// truncation, and a huge page is one event, not 512.
//
// cgroup v2 has no pgpgout (pgfree is not per cgroup). With a cgroup2
// memory.stat it estimates, by conservation, bytes freed = bytes faulted
// in − growth in usage: pgfault × page size − (memory.current − its value
// at Watch), never decreasing. In a churn loop every freed page was
// first faulted in, so this tracks the churn; it counts file faults and
// copy-on-write faults as well and a huge-page fault as one page.
type Accounting struct {
	resolve Resolver
	page    uint64
	src     Source

	mu      sync.Mutex
	watched map[uint64]*acctCell
	closed  bool
}

// acctCell is one watched cgroup's reader and baseline.
type acctCell struct {
	paths Paths
	v1    bool
	base  acctSample
	last  uint64 // last estimate, in bytes: the estimate never decreases
}

// acctSample is one read of a cgroup's accounting files.
type acctSample struct {
	pgpgout uint64 // v1: pages
	pgfault uint64 // v2: faults
	current uint64 // v2: bytes
}

// OpenAccounting returns the fallback meter.
func OpenAccounting(opts AccountingOptions) *Accounting {
	root := opts.CgroupRoot
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	res := opts.Resolve
	if res == nil {
		res = CgroupResolver(root)
	}
	page := opts.PageSize
	if page == 0 {
		page = uint64(os.Getpagesize())
	}
	detail := ApproximateNote + " (cgroup v1 memory.stat pgpgout × page size, or cgroup2 pgfault × page size − growth of memory.current)"
	if opts.Reason != "" {
		detail += "; eBPF meter unavailable: " + opts.Reason
	}
	return &Accounting{
		resolve: res,
		page:    page,
		src:     Source{Kind: SourceAccounting, Estimated: true, Detail: detail},
		watched: make(map[uint64]*acctCell),
	}
}

// Source implements Meter.
func (a *Accounting) Source() Source { return a.src }

// Watch implements Meter: it resolves the cgroup's directories and takes
// the baseline its figures count from.
func (a *Accounting) Watch(cgroupID uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	if _, ok := a.watched[cgroupID]; ok {
		return nil
	}
	p, err := a.resolve(cgroupID)
	if err != nil {
		return err
	}
	return a.watchLocked(cgroupID, p)
}

// WatchPaths is Watch with the cgroup's directories given, for callers
// that know them (and for cgroup v1 cells, which have no cgroup2 id: any
// key unique among the watched cells will do).
func (a *Accounting) WatchPaths(cgroupID uint64, p Paths) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	if _, ok := a.watched[cgroupID]; ok {
		return nil
	}
	return a.watchLocked(cgroupID, p)
}

func (a *Accounting) watchLocked(id uint64, p Paths) error {
	c := &acctCell{paths: p}
	switch {
	case p.V1Memory != "" && exists(filepath.Join(p.V1Memory, "memory.stat")):
		c.v1 = true
	case p.V2 != "" && exists(filepath.Join(p.V2, "memory.stat")):
	default:
		return fmt.Errorf("%w: cgroup %d has no memory accounting (no memory.stat in %q or %q)", ErrNoCgroup, id, p.V1Memory, p.V2)
	}
	s, err := c.sample()
	if err != nil {
		return err
	}
	c.base = s
	a.watched[id] = c
	return nil
}

// Unwatch implements Meter.
func (a *Accounting) Unwatch(cgroupID uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	if _, ok := a.watched[cgroupID]; !ok {
		return fmt.Errorf("%w: %d", ErrNotWatched, cgroupID)
	}
	delete(a.watched, cgroupID)
	return nil
}

// Read implements Meter. A cgroup whose files are gone (the cell was
// removed) keeps its last figures.
func (a *Accounting) Read(ids ...uint64) (map[uint64]Counts, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	out := make(map[uint64]Counts, len(a.watched))
	var errs []error
	for id, c := range a.watched {
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		s, err := c.sample()
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			errs = append(errs, fmt.Errorf("cgroup %d: %w", id, err))
		default:
			c.last = max(c.last, c.estimate(s, a.page))
		}
		out[id] = Counts{Unattributed: c.last}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("meter: %w", errors.Join(errs...))
	}
	return out, nil
}

// Close implements Meter.
func (a *Accounting) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	a.watched = nil
	return nil
}

// estimate returns the bytes freed since the baseline.
func (c *acctCell) estimate(s acctSample, page uint64) uint64 {
	if c.v1 {
		if s.pgpgout < c.base.pgpgout {
			return 0
		}
		return (s.pgpgout - c.base.pgpgout) * page
	}
	in := sat(s.pgfault, c.base.pgfault)*page + c.base.current
	return sat(in, s.current)
}

// sat returns a − b, or 0 if b > a.
func sat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func (c *acctCell) sample() (acctSample, error) {
	var s acctSample
	if c.v1 {
		stat, err := readStat(filepath.Join(c.paths.V1Memory, "memory.stat"))
		if err != nil {
			return s, err
		}
		v, ok := stat["total_pgpgout"]
		if !ok {
			v, ok = stat["pgpgout"]
		}
		if !ok {
			return s, fmt.Errorf("%s: no pgpgout", filepath.Join(c.paths.V1Memory, "memory.stat"))
		}
		s.pgpgout = v
		return s, nil
	}
	stat, err := readStat(filepath.Join(c.paths.V2, "memory.stat"))
	if err != nil {
		return s, err
	}
	v, ok := stat["pgfault"]
	if !ok {
		return s, fmt.Errorf("%s: no pgfault", filepath.Join(c.paths.V2, "memory.stat"))
	}
	s.pgfault = v
	cur, err := os.ReadFile(filepath.Join(c.paths.V2, "memory.current"))
	if err != nil {
		return s, err
	}
	if s.current, err = strconv.ParseUint(string(bytes.TrimSpace(cur)), 10, 64); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(c.paths.V2, "memory.current"), err)
	}
	return s, nil
}

// readStat parses a flat keyed file ("key value" lines), such as
// memory.stat.
func readStat(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return nil, fmt.Errorf("%s: malformed line %q", path, sc.Text())
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, k, err)
		}
		out[k] = n
	}
	return out, sc.Err()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// CgroupResolver returns a Resolver that finds a cgroup2 directory by its
// id (inode number) under the cgroup2 mount in root (root itself on a
// cgroup v2 host, root/unified on a hybrid one), and the v1 memory
// directory at the same relative path under root/memory.
func CgroupResolver(root string) Resolver {
	return func(id uint64) (Paths, error) {
		v2 := V2Root(root)
		if v2 == "" {
			return Paths{}, fmt.Errorf("%w: no cgroup2 hierarchy under %s", ErrNoCgroup, root)
		}
		var found string
		errFound := errors.New("found")
		err := filepath.WalkDir(v2, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if inode(path) == id {
				found = path
				return errFound
			}
			return nil
		})
		if err != nil && !errors.Is(err, errFound) {
			return Paths{}, fmt.Errorf("%w: searching %s: %w", ErrNoCgroup, v2, err)
		}
		if found == "" {
			return Paths{}, fmt.Errorf("%w: no cgroup2 directory with id %d under %s", ErrNoCgroup, id, v2)
		}
		p := Paths{V2: found}
		rel, err := filepath.Rel(v2, found)
		if err == nil {
			if mem := filepath.Join(root, "memory", rel); v2 != root && exists(filepath.Join(mem, "memory.stat")) {
				p.V1Memory = mem
			}
		}
		return p, nil
	}
}

// V2Root returns the cgroup2 hierarchy under root: root itself if it
// holds cgroup.controllers, else root/unified if that does, else "".
func V2Root(root string) string {
	for _, d := range []string{root, filepath.Join(root, "unified")} {
		if exists(filepath.Join(d, "cgroup.controllers")) {
			return d
		}
	}
	return ""
}

func inode(path string) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Ino
}
