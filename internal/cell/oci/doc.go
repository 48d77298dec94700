// Package oci runs cells as OCI containers through an OCI runtime's
// command line (runc, or crun where the host's cgroup layout allows it).
//
// A Manager turns a cell.Spec into a bundle (a config.json whose root is
// the Manager's root file system directory, read-only), runs it in the
// foreground with "<runtime> run", and returns a cell.Cell:
//
//   - Pause and Resume are the runtime's own "pause" and "resume" (the
//     cgroup freezer the runtime picks: v1 freezer.state on v1 and hybrid
//     hosts, cgroup.freeze on pure v2), checked against the kernel's
//     report afterwards.
//   - Kill is "<runtime> kill --all <id> KILL", falling back to SIGKILL of
//     every task in the container's cgroup.
//   - Stats, Contains and CgroupID read the container's cgroups, which
//     sit at a known path, <hierarchy>/<Options.Parent>/<cell name>,
//     because the Manager sets linux.cgroupsPath. runc 1.1 also creates
//     the directory in the controller-less cgroup2 mount of a hybrid host
//     (<root>/unified/<Parent>/<name>), so CgroupID is that directory's
//     inode and the eBPF meter works unchanged; where a runtime does not,
//     the Manager creates it and moves the container's tasks in itself.
//
// The runtime's own state lives under Options.StateDir, private to
// Maxwell: NewManager force-deletes whatever an earlier Manager left
// there (Sweep), so a host that died without cleaning up leaves nothing
// running for longer than its next start.
//
// BuildRootFS makes a minimal root file system (busybox plus chosen
// binaries and the shared libraries they need) to run agents in.
package oci
