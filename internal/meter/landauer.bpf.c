//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// landauer.bpf.c counts, per watched cgroup, the calls and bytes of the
// system calls that give memory back to the kernel: munmap, madvise with
// MADV_DONTNEED / MADV_FREE / MADV_REMOVE, a shrinking brk and a shrinking
// mremap. It is the Landauer meter of package meter; see meter.go.
//
// Counting happens at syscall entry, in the kernel, into a per-CPU array:
// no event reaches user space per call. User space reads the array once a
// tick. The same counting code is attached one of three ways (see
// attach.go): fentry on the syscall functions, the per-syscall tracepoints
// syscalls/sys_enter_*, or tp_btf/sys_enter.
//
// Regenerate the Go bindings and objects with `go generate` (needs
// clang-14 and libbpf-dev; see the README's developer section).

#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// Kinds: the index of each counter; keep in step with meter.Kind.
#define KIND_MUNMAP 0
#define KIND_MADV_DONTNEED 1
#define KIND_MADV_FREE 2
#define KIND_MADV_REMOVE 3
#define KIND_BRK 4
#define KIND_MREMAP 5
#define NUM_KINDS 6

// madvise advice values (include/uapi/asm-generic/mman-common.h; the same
// on x86 and arm64).
#define MADV_DONTNEED 4
#define MADV_FREE 8
#define MADV_REMOVE 9

// Syscall numbers, for tp_btf/sys_enter.
#if defined(__TARGET_ARCH_x86)
#define NR_munmap 11
#define NR_brk 12
#define NR_mremap 25
#define NR_madvise 28
#define SYS_PREFIX "__x64_sys_"
#elif defined(__TARGET_ARCH_arm64)
#define NR_brk 214
#define NR_munmap 215
#define NR_mremap 216
#define NR_madvise 233
#define SYS_PREFIX "__arm64_sys_"
#else
#error "unsupported architecture"
#endif

// counts_t is one cgroup's counters on one CPU.
struct counts_t {
	__u64 calls[NUM_KINDS];
	__u64 bytes[NUM_KINDS];
};

// page_size is set by the loader to the host's page size (a power of two);
// lengths are rounded up to whole pages, as the kernel does.
volatile const __u64 page_size = 4096;

// watched maps a cgroup2 id to its slot in counts. Only watched cgroups
// are counted.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} watched SEC(".maps");

// counts holds each slot's counters, per CPU.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct counts_t);
} counts SEC(".maps");

static __always_inline __u64 page_align(__u64 n)
{
	return (n + page_size - 1) & ~(page_size - 1);
}

static __always_inline void count(int kind, __u64 bytes)
{
	__u64 cg = bpf_get_current_cgroup_id();
	__u32 *slot = bpf_map_lookup_elem(&watched, &cg);
	if (!slot)
		return;
	struct counts_t *c = bpf_map_lookup_elem(&counts, slot);
	if (!c)
		return;
	if (kind < 0 || kind >= NUM_KINDS)
		return;
	c->calls[kind]++;
	c->bytes[kind] += bytes;
}

static __always_inline void on_munmap(__u64 len)
{
	count(KIND_MUNMAP, page_align(len));
}

static __always_inline void on_madvise(__u64 len, __u64 advice)
{
	switch (advice) {
	case MADV_DONTNEED:
		count(KIND_MADV_DONTNEED, page_align(len));
		break;
	case MADV_FREE:
		count(KIND_MADV_FREE, page_align(len));
		break;
	case MADV_REMOVE:
		count(KIND_MADV_REMOVE, page_align(len));
		break;
	}
}

static __always_inline void on_mremap(__u64 old_len, __u64 new_len)
{
	old_len = page_align(old_len);
	new_len = page_align(new_len);
	if (new_len < old_len)
		count(KIND_MREMAP, old_len - new_len);
}

// on_brk counts brk(want) as a shrink when want lies between the start of
// the heap and the current break, as mm/mmap.c's brk does: it frees the
// pages from the page-aligned new break to the page-aligned old one.
static __always_inline void on_brk(__u64 want)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 cur = BPF_CORE_READ(task, mm, brk);
	__u64 start = BPF_CORE_READ(task, mm, start_brk);
	if (want < start || want >= cur)
		return;
	__u64 oldp = page_align(cur), newp = page_align(want);
	if (newp < oldp)
		count(KIND_BRK, oldp - newp);
	else
		count(KIND_BRK, 0);
}

// ---- tp_btf/sys_enter: one program on every syscall of the host.
//
// regs is a BTF pointer: the verifier turns these plain loads into
// fault-safe ones, relocated by CO-RE.

#if defined(__TARGET_ARCH_x86)
#define ARG0(r) ((r)->di)
#define ARG1(r) ((r)->si)
#define ARG2(r) ((r)->dx)
#else
#define ARG0(r) ((r)->regs[0])
#define ARG1(r) ((r)->regs[1])
#define ARG2(r) ((r)->regs[2])
#endif

SEC("tp_btf/sys_enter")
int BPF_PROG(tp_btf_sys_enter, struct pt_regs *regs, long id)
{
	switch (id) {
	case NR_munmap:
		on_munmap(ARG1(regs));
		break;
	case NR_madvise:
		on_madvise(ARG1(regs), ARG2(regs));
		break;
	case NR_mremap:
		on_mremap(ARG1(regs), ARG2(regs));
		break;
	case NR_brk:
		on_brk(ARG0(regs));
		break;
	}
	return 0;
}

// ---- fentry on the syscall functions: nothing runs on other syscalls.
//
// With syscall wrappers (x86-64, arm64) the function's one argument is the
// user registers.

SEC("fentry/" SYS_PREFIX "munmap")
int BPF_PROG(fentry_munmap, struct pt_regs *regs)
{
	on_munmap(ARG1(regs));
	return 0;
}

SEC("fentry/" SYS_PREFIX "madvise")
int BPF_PROG(fentry_madvise, struct pt_regs *regs)
{
	on_madvise(ARG1(regs), ARG2(regs));
	return 0;
}

SEC("fentry/" SYS_PREFIX "mremap")
int BPF_PROG(fentry_mremap, struct pt_regs *regs)
{
	on_mremap(ARG1(regs), ARG2(regs));
	return 0;
}

SEC("fentry/" SYS_PREFIX "brk")
int BPF_PROG(fentry_brk, struct pt_regs *regs)
{
	on_brk(ARG0(regs));
	return 0;
}

// ---- the per-syscall tracepoints syscalls/sys_enter_*: the context is
// the tracepoint's record, whose layout (tracefs events/syscalls/
// sys_enter_*/format) is the same for every syscall: the common fields,
// the syscall number, then six unsigned long arguments from offset 16.

struct sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

SEC("tracepoint/syscalls/sys_enter_munmap")
int tp_munmap(struct sys_enter_ctx *ctx)
{
	on_munmap(ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_madvise")
int tp_madvise(struct sys_enter_ctx *ctx)
{
	on_madvise(ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mremap")
int tp_mremap(struct sys_enter_ctx *ctx)
{
	on_mremap(ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_brk")
int tp_brk(struct sys_enter_ctx *ctx)
{
	on_brk(ctx->args[0]);
	return 0;
}
