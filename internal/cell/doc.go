// Package cell runs commands in cells: a command and all its descendants
// in cgroups of their own, so that Maxwell can pin a cell to CPUs, pause
// and resume it, read its CPU time, memory and task count, and kill it as
// a whole.
//
// A Manager detects the host's cgroup layout from <proc>/self/mountinfo
// and the cgroup root (see DetectLayout and Layout) and picks a backend:
//
//   - cgroup-v2: a pure cgroup v2 host. A cell is <root>/<parent>/<name>;
//     cpu, cpuset, memory and pids are enabled for children where the
//     kernel offers them; the cell pauses with cgroup.freeze and dies by
//     cgroup.kill.
//   - cgroup-hybrid: v1 hierarchies plus a controller-less cgroup2 mount
//     (usually <root>/unified). A cell gets a directory in each of the
//     cpu, cpuacct, cpuset, memory, freezer and pids hierarchies and in
//     the cgroup2 one, whose id (Cell.CgroupID) is what the eBPF meter
//     keys on. It pauses with the v1 freezer by default, or with the v2
//     group's cgroup.freeze (FreezerV2).
//   - cgroup-v1: as hybrid, without a cgroup2 mount; cells have no
//     cgroup id.
//   - signal: no writable cgroups (not root, read-only mounts, none
//     mounted). A cell is a process group; it pauses with SIGSTOP and
//     resumes with SIGCONT, and its figures are summed from procfs.
//     Layout().Reason says why Maxwell fell back to it. Any cell can ask
//     for it with Spec.Freezer = FreezerSignal.
//
// Every wait (for a freezer to report frozen, a cgroup to empty, a
// process to stop) polls the kernel's own report and is bounded by a
// context.
//
// # Joining before running
//
// A cell's command must not run a single instruction outside its
// cgroups, or it could fork children that escape them. So the Manager
// starts the host binary itself as a shim (see RunShimIfRequested), which
// blocks on a pipe until the Manager has written its PID into every
// cgroup.procs of the cell, then sets its CPU affinity and execs the
// command. A close-on-exec status pipe tells the Manager whether the exec
// succeeded. Every binary that uses a Manager must therefore call
// RunShimIfRequested first thing in main (and in TestMain).
//
// # Never left frozen
//
// The Manager's guard process thaws, kills and removes every cell when
// the host dies, however it dies; see Manager.
package cell
