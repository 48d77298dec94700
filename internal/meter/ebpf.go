package meter

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Attach is a way of attaching the meter's BPF program.
type Attach string

// The attachments, as measured on the 6.18 VM this was built on (see
// docs/BENCHMARKS.md and `maxwell bench landauer`).
const (
	// AttachFentry attaches to the entry of the four syscall functions
	// (__x64_sys_munmap, …) through BPF trampolines: nothing runs on any
	// other syscall. It needs a kernel with BPF trampolines for the
	// architecture.
	AttachFentry Attach = "fentry"
	// AttachTracepoint attaches to the tracepoints
	// syscalls/sys_enter_{munmap,madvise,mremap,brk}. It needs tracefs
	// (mounted by the meter if it is not). Enabling any syscall
	// tracepoint sends every syscall of the host through the slow
	// syscall-entry path, but only the four run the program.
	AttachTracepoint Attach = "tracepoint"
	// AttachTPBTF attaches one BTF-enabled raw tracepoint program to
	// sys_enter, which runs on every syscall of the host. It needs no
	// tracefs.
	AttachTPBTF Attach = "tp_btf"
)

// DefaultOrder is the order in which OpenEBPF tries the attachments:
// fentry where the kernel has it (nothing on unrelated syscalls), then the
// per-syscall tracepoints, then tp_btf/sys_enter, by the costs measured
// with `maxwell bench landauer`.
var DefaultOrder = []Attach{AttachFentry, AttachTracepoint, AttachTPBTF}

// source returns a's Source kind.
func (a Attach) source() string {
	switch a {
	case AttachFentry:
		return SourceFentry
	case AttachTracepoint:
		return SourceTracepoint
	case AttachTPBTF:
		return SourceTPBTF
	}
	return "ebpf:" + string(a)
}

// MaxCells is the most cgroups one meter can watch.
const MaxCells = 1024

// EBPFOptions configure OpenEBPF.
type EBPFOptions struct {
	// SysRoot is where sysfs is mounted: the kernel's BTF is read from
	// SysRoot/kernel/btf/vmlinux and tracefs is looked for (and mounted)
	// at SysRoot/kernel/tracing. "" means "/sys".
	SysRoot string
	// Order lists the attachments to try, best first. nil means
	// DefaultOrder.
	Order []Attach
	// Cells is the most cgroups the meter can watch, 1 to MaxCells;
	// 0 means MaxCells.
	Cells int
	// NoMountTracefs stops the meter from mounting tracefs where it is
	// missing; the tracepoint attachment then fails.
	NoMountTracefs bool
	// Logger receives what the meter tried; nil discards it.
	Logger *slog.Logger
}

// objects are the loaded maps and the programs of one attachment.
type objects struct {
	Watched *ebpf.Map `ebpf:"watched"`
	Counts  *ebpf.Map `ebpf:"counts"`
	progs   map[string]*ebpf.Program
}

// EBPF is the eBPF meter. It keeps its maps and links to itself (nothing
// is pinned), so two meters on one host, in one process or two, never see
// each other's counts; both count a cgroup that both watch.
type EBPF struct {
	log    *slog.Logger
	attach Attach
	src    Source
	ncpu   int

	mu     sync.Mutex
	objs   *objects
	links  []link.Link
	slots  map[uint64]uint32 // watched cgroup id → slot in counts
	free   []uint32          // free slots, last first
	closed bool
}

// attachPoints lists, per attachment, the programs to load and where each
// attaches: a tracepoint "group/name" or, for fentry and tp_btf, the
// attach target fixed in the program's section.
var attachPoints = map[Attach][][2]string{
	AttachFentry: {
		{"fentry_munmap", ""}, {"fentry_madvise", ""}, {"fentry_mremap", ""}, {"fentry_brk", ""},
	},
	AttachTracepoint: {
		{"tp_munmap", "syscalls/sys_enter_munmap"}, {"tp_madvise", "syscalls/sys_enter_madvise"},
		{"tp_mremap", "syscalls/sys_enter_mremap"}, {"tp_brk", "syscalls/sys_enter_brk"},
	},
	AttachTPBTF: {{"tp_btf_sys_enter", ""}},
}

// OpenEBPF loads the meter's BPF program and attaches it with the first
// attachment of opts.Order that works. Its error wraps ErrUnavailable and
// says, for each attachment, why it failed.
func OpenEBPF(opts EBPFOptions) (*EBPF, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sysRoot := opts.SysRoot
	if sysRoot == "" {
		sysRoot = "/sys"
	}
	order := opts.Order
	if order == nil {
		order = DefaultOrder
	}
	cells := opts.Cells
	if cells == 0 {
		cells = MaxCells
	}
	if cells < 1 || cells > MaxCells {
		return nil, fmt.Errorf("meter: %d cells out of range [1, %d]", cells, MaxCells)
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%w: no attachment to try", ErrUnavailable)
	}

	kernelTypes, err := kernelBTF(sysRoot)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("%w: raising RLIMIT_MEMLOCK: %w", ErrUnavailable, err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("%w: counting CPUs: %w", ErrUnavailable, err)
	}

	var tried []string
	for _, a := range order {
		m, err := openAttach(a, sysRoot, !opts.NoMountTracefs, kernelTypes, cells, log)
		if err == nil {
			m.ncpu = ncpu
			m.src = Source{
				Kind:      a.source(),
				Detail:    m.detail(),
				Fallbacks: tried,
			}
			for i := cells - 1; i >= 0; i-- {
				m.free = append(m.free, uint32(i))
			}
			log.Info("Landauer meter attached", "source", m.src.Kind, "not_used", strings.Join(tried, "; "))
			return m, nil
		}
		log.Info("Landauer meter: attachment failed", "attach", a, "err", err)
		tried = append(tried, fmt.Sprintf("%s: %v", a.source(), err))
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(tried, "; "))
}

// kernelBTF checks that the kernel describes its types with BTF, which
// the meter's CO-RE relocations and tp_btf/fentry need, and returns them
// when sysRoot is not the host's /sys (nil means the library reads the
// host's own).
func kernelBTF(sysRoot string) (*btf.Spec, error) {
	path := filepath.Join(sysRoot, "kernel", "btf", "vmlinux")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("kernel BTF (CONFIG_DEBUG_INFO_BTF) not found: %w", err)
	}
	if filepath.Clean(sysRoot) == "/sys" {
		return nil, nil
	}
	spec, err := btf.LoadSpec(path)
	if err != nil {
		return nil, fmt.Errorf("reading kernel BTF: %w", err)
	}
	return spec, nil
}

// openAttach loads the programs of attachment a and attaches them.
func openAttach(a Attach, sysRoot string, mount bool, kernelTypes *btf.Spec, cells int, log *slog.Logger) (*EBPF, error) {
	points, ok := attachPoints[a]
	if !ok {
		return nil, fmt.Errorf("unknown attachment %q", a)
	}
	if a == AttachTracepoint {
		if err := ensureTracefs(sysRoot, mount, log); err != nil {
			return nil, err
		}
	}
	objs, err := load(points, kernelTypes, cells)
	if err != nil {
		return nil, err
	}
	m := &EBPF{log: log, attach: a, objs: objs, slots: make(map[uint64]uint32)}
	if err := m.attachLinks(); err != nil {
		objs.close()
		return nil, err
	}
	return m, nil
}

// load loads the maps and the named programs.
func load(points [][2]string, kernelTypes *btf.Spec, cells int) (*objects, error) {
	spec, err := loadLandauer()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables["page_size"].Set(uint64(os.Getpagesize())); err != nil {
		return nil, fmt.Errorf("setting page size: %w", err)
	}
	spec.Maps["watched"].MaxEntries = uint32(cells)
	spec.Maps["counts"].MaxEntries = uint32(cells)
	want := make(map[string]bool)
	for _, p := range points {
		want[p[0]] = true
	}
	for name := range spec.Programs {
		if !want[name] {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{KernelTypes: kernelTypes},
	})
	if err != nil {
		return nil, explainLoad(err)
	}
	objs := &objects{Watched: coll.Maps["watched"], Counts: coll.Maps["counts"], progs: coll.Programs}
	// The collection's other maps (.rodata) stay referenced by the
	// programs; close our handles to them.
	for name, mp := range coll.Maps {
		if name != "watched" && name != "counts" {
			mp.Close()
		}
	}
	return objs, nil
}

// explainLoad turns a load error into a message that says what to do.
func explainLoad(err error) error {
	switch {
	case errors.Is(err, unix.EPERM) && os.Geteuid() == 0:
		return fmt.Errorf("loading BPF program: the kernel refused it with EPERM although this process is root (kernel lockdown, or a security module): %w", err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("loading BPF program: permission denied (needs root or CAP_BPF+CAP_PERFMON; a locked-down kernel also refuses): %w", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("loading BPF program: not supported by this kernel: %w", err)
	}
	return fmt.Errorf("loading BPF program: %w", err)
}

func (o *objects) close() {
	for _, p := range o.progs {
		p.Close()
	}
	o.Watched.Close()
	o.Counts.Close()
}

// attachLinks attaches every loaded program.
func (m *EBPF) attachLinks() error {
	for _, p := range attachPoints[m.attach] {
		prog := m.objs.progs[p[0]]
		if prog == nil {
			m.detachLinks()
			return fmt.Errorf("program %s not loaded", p[0])
		}
		var l link.Link
		var err error
		if m.attach == AttachTracepoint {
			group, name, _ := strings.Cut(p[1], "/")
			l, err = link.Tracepoint(group, name, prog, nil)
		} else {
			l, err = link.AttachTracing(link.TracingOptions{Program: prog})
		}
		if err != nil {
			m.detachLinks()
			return fmt.Errorf("attaching %s: %w", p[0], err)
		}
		m.links = append(m.links, l)
	}
	return nil
}

// detachLinks closes every link; the programs stay loaded.
func (m *EBPF) detachLinks() error {
	var errs []error
	for _, l := range m.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	m.links = nil
	return errors.Join(errs...)
}

func (m *EBPF) detail() string {
	var where []string
	for _, p := range attachPoints[m.attach] {
		if p[1] != "" {
			where = append(where, p[1])
		} else {
			where = append(where, p[0])
		}
	}
	return fmt.Sprintf("BPF program at %s, counting syscall requests at entry, per cgroup2 id, in per-CPU maps", strings.Join(where, ", "))
}

// ensureTracefs makes sure tracefs is mounted at sysRoot/kernel/tracing
// (or debugfs's tracing directory), mounting it if mount is set. A mount
// it makes stays: the library caches where tracefs is for the life of the
// process.
func ensureTracefs(sysRoot string, mount bool, log *slog.Logger) error {
	dir := filepath.Join(sysRoot, "kernel", "tracing")
	for _, d := range []string{dir, filepath.Join(sysRoot, "kernel", "debug", "tracing")} {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && (st.Type == unix.TRACEFS_MAGIC || st.Type == unix.DEBUGFS_MAGIC) {
			if _, err := os.Stat(filepath.Join(d, "events", "syscalls")); err != nil {
				return fmt.Errorf("tracefs at %s has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS): %w", d, err)
			}
			return nil
		}
	}
	if !mount {
		return fmt.Errorf("tracefs is not mounted at %s", dir)
	}
	if err := unix.Mount("tracefs", dir, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("tracefs is not mounted at %s and mounting it failed: %w", dir, err)
	}
	log.Info("mounted tracefs for the Landauer meter", "path", dir)
	if _, err := os.Stat(filepath.Join(dir, "events", "syscalls")); err != nil {
		return fmt.Errorf("tracefs at %s has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS): %w", dir, err)
	}
	return nil
}

// Attach returns the attachment in use.
func (m *EBPF) Attach() Attach { return m.attach }

// Source implements Meter.
func (m *EBPF) Source() Source { return m.src }

// Watch implements Meter. It returns an error wrapping ErrFull when the
// meter watches as many cgroups as it can.
func (m *EBPF) Watch(cgroupID uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, ok := m.slots[cgroupID]; ok {
		return nil
	}
	if cgroupID == 0 {
		return fmt.Errorf("meter: cgroup id 0: the cell has no cgroup2 directory")
	}
	if len(m.free) == 0 {
		return fmt.Errorf("%w: %d watched, cannot watch cgroup %d", ErrFull, len(m.slots), cgroupID)
	}
	slot := m.free[len(m.free)-1]
	zero := make([]landauerCountsT, m.ncpu)
	if err := m.objs.Counts.Put(slot, zero); err != nil {
		return fmt.Errorf("meter: clearing slot %d: %w", slot, err)
	}
	if err := m.objs.Watched.Update(cgroupID, slot, ebpf.UpdateNoExist); err != nil {
		if errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOMEM) {
			return fmt.Errorf("%w: the kernel map is full: %w", ErrFull, err)
		}
		return fmt.Errorf("meter: watching cgroup %d: %w", cgroupID, err)
	}
	m.free = m.free[:len(m.free)-1]
	m.slots[cgroupID] = slot
	return nil
}

// Unwatch implements Meter.
func (m *EBPF) Unwatch(cgroupID uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	slot, ok := m.slots[cgroupID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNotWatched, cgroupID)
	}
	if err := m.objs.Watched.Delete(cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("meter: unwatching cgroup %d: %w", cgroupID, err)
	}
	delete(m.slots, cgroupID)
	m.free = append(m.free, slot)
	return nil
}

// Read implements Meter: it sums each watched cgroup's per-CPU counters.
func (m *EBPF) Read(ids ...uint64) (map[uint64]Counts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	n := len(ids)
	if n == 0 {
		n = len(m.slots)
	}
	out := make(map[uint64]Counts, n)
	var per []landauerCountsT
	read := func(id uint64, slot uint32) error {
		if err := m.objs.Counts.Lookup(slot, &per); err != nil {
			return fmt.Errorf("meter: reading cgroup %d: %w", id, err)
		}
		var c Counts
		for _, p := range per {
			for k := range NumKinds {
				c.Calls[k] += p.Calls[k]
				c.Bytes[k] += p.Bytes[k]
			}
		}
		out[id] = c
		return nil
	}
	if len(ids) == 0 {
		for id, slot := range m.slots {
			if err := read(id, slot); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	for _, id := range ids {
		if slot, ok := m.slots[id]; ok {
			if err := read(id, slot); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// programIDs returns the kernel ids of the loaded programs, for tests.
func (m *EBPF) programIDs() []ebpf.ProgramID {
	var ids []ebpf.ProgramID
	for _, p := range m.objs.progs {
		if info, err := p.Info(); err == nil {
			if id, ok := info.ID(); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// Close implements Meter: it closes every link, program and map. Nothing
// was pinned, so nothing is left in the kernel once the last reference
// goes.
func (m *EBPF) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	err := m.detachLinks()
	m.objs.close()
	if err != nil {
		return fmt.Errorf("meter: detaching: %w", err)
	}
	return nil
}
