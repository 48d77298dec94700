// Package meter is Maxwell's Landauer meter: it tells the economy how many
// bytes of memory each cell gave back to the kernel, and with how many
// calls, so that freeing memory can be taxed.
//
// The primary meter (OpenEBPF) is a BPF program that counts, per cgroup2
// id, the calls and bytes of munmap, madvise with MADV_DONTNEED, MADV_FREE
// or MADV_REMOVE, a shrinking brk and a shrinking mremap. It counts in the
// kernel, into per-CPU counters, only for the cgroups it is told to Watch;
// user space reads the totals once a tick, so no event crosses to user
// space per call. bpf_get_current_cgroup_id keys the counts, so every
// thread and every child of a cell is counted.
//
// It counts requests, at syscall entry: a call the kernel then rejects
// (EINVAL, ENOMEM) is counted, and so is a munmap of a range that was not
// mapped. Pairing each entry with its exit would count only accepted calls
// at about twice the cost per call (and, with tp_btf, on every syscall of
// the host); a cell gains nothing by issuing calls that fail, so the meter
// counts requests. Lengths are rounded up to whole pages, as the kernel
// rounds them.
//
// Where eBPF is unavailable (not root, no kernel BTF, a locked-down kernel,
// no attachment point) Open falls back to the kernel's per-cgroup memory
// accounting (OpenAccounting), whose figure is an approximation and whose
// Source says so.
package meter

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is a way of giving memory back to the kernel.
type Kind int

// The kinds the meter counts. Their order is the BPF program's.
const (
	Munmap          Kind = iota // munmap(addr, len): len bytes
	MadviseDontneed             // madvise(addr, len, MADV_DONTNEED): len bytes
	MadviseFree                 // madvise(addr, len, MADV_FREE): len bytes
	MadviseRemove               // madvise(addr, len, MADV_REMOVE): len bytes
	Brk                         // brk(new) below the current break: old − new bytes
	Mremap                      // mremap(addr, old, new, …) with new < old: old − new bytes
	NumKinds                    // the number of kinds
)

var kindNames = [NumKinds]string{"munmap", "madvise_dontneed", "madvise_free", "madvise_remove", "brk", "mremap"}

// String returns the kind's name, e.g. "madvise_dontneed".
func (k Kind) String() string {
	if k < 0 || k >= NumKinds {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// Counts are one cgroup's cumulative figures since it was watched.
type Counts struct {
	// Calls counts the calls of each kind.
	Calls [NumKinds]uint64 `json:"calls"`
	// Bytes sums the bytes each kind freed, in bytes, lengths rounded up
	// to whole pages.
	Bytes [NumKinds]uint64 `json:"bytes"`
	// Unattributed is freed memory, in bytes, that the source cannot
	// attach to a system call: the accounting meter's estimate. It is 0
	// for the eBPF meter.
	Unattributed uint64 `json:"unattributed_bytes,omitempty"`
}

// FreedBytes returns the total bytes freed, in bytes.
func (c Counts) FreedBytes() uint64 {
	n := c.Unattributed
	for _, b := range c.Bytes {
		n += b
	}
	return n
}

// TotalCalls returns the number of calls of every kind.
func (c Counts) TotalCalls() uint64 {
	var n uint64
	for _, x := range c.Calls {
		n += x
	}
	return n
}

// Sub returns c − prev, field by field: the figures of one tick when c and
// prev are two successive reads of the same cgroup. A field that went
// backwards (the cgroup was unwatched and watched again) yields its value
// in c.
func (c Counts) Sub(prev Counts) Counts {
	d := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	var out Counts
	for k := range NumKinds {
		out.Calls[k] = d(c.Calls[k], prev.Calls[k])
		out.Bytes[k] = d(c.Bytes[k], prev.Bytes[k])
	}
	out.Unattributed = d(c.Unattributed, prev.Unattributed)
	return out
}

// Add returns c + o, field by field.
func (c Counts) Add(o Counts) Counts {
	for k := range NumKinds {
		c.Calls[k] += o.Calls[k]
		c.Bytes[k] += o.Bytes[k]
	}
	c.Unattributed += o.Unattributed
	return c
}

// String formats c as "N bytes in M calls (munmap a/b, …)".
func (c Counts) String() string {
	var parts []string
	for k := range NumKinds {
		if c.Calls[k] != 0 || c.Bytes[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d/%dB", k, c.Calls[k], c.Bytes[k]))
		}
	}
	if c.Unattributed != 0 {
		parts = append(parts, fmt.Sprintf("unattributed %dB", c.Unattributed))
	}
	return fmt.Sprintf("%d bytes in %d calls (%s)", c.FreedBytes(), c.TotalCalls(), strings.Join(parts, ", "))
}

// The kinds of Source.
const (
	SourceFentry     = "ebpf:fentry"
	SourceTracepoint = "ebpf:tracepoint"
	SourceTPBTF      = "ebpf:tp_btf"
	SourceAccounting = "cgroup-accounting"
)

// ApproximateNote is what the accounting meter's Source says of itself.
const ApproximateNote = "approximate: kernel memory accounting, not syscall bytes"

// Source says what a Meter measures with and how far to trust it.
type Source struct {
	// Kind is SourceFentry, SourceTracepoint, SourceTPBTF or
	// SourceAccounting.
	Kind string `json:"kind"`
	// Estimated is true when the figures are approximations rather than
	// counts of system calls.
	Estimated bool `json:"estimated"`
	// Detail says what was attached where, or why the figures are
	// approximate.
	Detail string `json:"detail"`
	// Fallbacks lists, in order, the preferred sources that could not
	// be used and why.
	Fallbacks []string `json:"fallbacks,omitempty"`
}

// Label returns "measured" or "estimated".
func (s Source) Label() string {
	if s.Estimated {
		return "estimated"
	}
	return "measured"
}

// String describes s in one line.
func (s Source) String() string {
	out := fmt.Sprintf("%s (%s): %s", s.Kind, s.Label(), s.Detail)
	if len(s.Fallbacks) > 0 {
		out += "; not used: " + strings.Join(s.Fallbacks, "; ")
	}
	return out
}

// Meter counts the memory that watched cgroups give back to the kernel.
// Its methods are safe for concurrent use.
type Meter interface {
	// Watch starts counting the cgroup2 directory whose id (inode
	// number) is cgroupID. Watching a watched cgroup is a no-op.
	Watch(cgroupID uint64) error
	// Unwatch stops counting cgroupID and forgets its figures.
	Unwatch(cgroupID uint64) error
	// Read returns the cumulative figures since it was watched of each
	// of ids that is watched, or, with no ids, of every watched cgroup.
	// A caller that knows which cgroups can have moved (a daemon's
	// frozen cells make no syscalls) reads only those.
	Read(ids ...uint64) (map[uint64]Counts, error)
	// Source says what the meter measures with.
	Source() Source
	// Close detaches and unloads everything the meter attached or
	// loaded. It is idempotent.
	Close() error
}

// Errors the meters wrap.
var (
	// ErrUnavailable means eBPF cannot be used on this host; the error
	// says why.
	ErrUnavailable = errors.New("eBPF meter unavailable")
	// ErrFull means the meter watches as many cgroups as it can.
	ErrFull = errors.New("meter: too many watched cgroups")
	// ErrNotWatched means the cgroup is not watched.
	ErrNotWatched = errors.New("meter: cgroup not watched")
	// ErrClosed means the meter was closed.
	ErrClosed = errors.New("meter: closed")
	// ErrNoCgroup means the accounting meter cannot find a cgroup's
	// directories.
	ErrNoCgroup = errors.New("meter: cgroup not found")
)
