// Package vm runs cells as microVMs behind the ordinary cell.Cell
// interface, with QEMU's microvm machine (driven over QMP) or Firecracker
// (through package cell/firecracker).
//
// # The VMM is an ordinary cell
//
// A Manager starts the VMM process (qemu-system-x86_64, or firecracker)
// as the command of a cell of a cell.Manager. So the VM lives in that
// cell's cgroups from its first instruction: its CPU time is the cell's,
// a CPU limit (cell.CPULimiter) caps it, the cgroup id is what the eBPF
// Landauer meter counts by, and the cell guard kills the VMM if the host
// dies, even by SIGKILL. The engine sees a cell.Cell and knows nothing
// new. What differs:
//
//   - Pause is QMP "stop" and Resume is "cont", each confirmed by
//     query-status reporting "paused" or "running": the vCPUs stop, the
//     VMM stays able to answer.
//   - Wait returns why the VM ended: nil when the guest's command
//     exited 0, *ExitError with its status otherwise, *PanicError for a
//     guest kernel panic, ErrBootTimeout for a guest that did not boot
//     in time, *AgentError for an agent the hub cut off, ErrKilled after
//     Kill, and *VMMError when the VMM itself died.
//   - Backend is "qemu-microvm/kvm" or "qemu-microvm/tcg": emulation
//     (TCG) is always visible, and Manager.Accel says why it was chosen.
//
// # Boot and the guest's command
//
// The guest boots the kernel and initramfs of package vmimage. Its init
// receives the cell's command on the kernel command line
// (vmimage.CommandLine), says on the console when the command starts and
// how it ended, and powers the VM off after it. A guest that has not said
// "ready" within Options.BootTimeout is killed (ErrBootTimeout); a kernel
// panic reboots the guest (panic=-1, by a triple fault: reboot=t), which
// ends QEMU (-no-reboot). With
// Options.RootFS the command runs chrooted in a root file system image of
// the user's, attached read-only as virtio-blk.
//
// # The agent's channel
//
// The guest's agent talks over a virtio-serial port named AgentPort
// (/dev/virtio-ports/maxwell.agent in the guest; the agent's
// MAXWELL_AGENT_SERIAL), whose other end is a QEMU chardev socket the
// Manager connects to as soon as QEMU starts. Machine.AgentConn hands that
// connection to the hub (hub.Attach): it belongs to exactly one cell, so
// the agent's identity comes from the VM, never from a message. ServeAgent
// does it once the agent has written its first bytes, and kills the VM,
// with the hub's reason as its cause, when the hub cuts the agent off (a
// flood, garbage, no hello in time) or the guest has written nothing
// within Options.HelloTimeout of running (time paused does not count);
// ServeAgentOnceSpoken is the same for a command that need not speak.
//
// # Guests and users
//
// StartGuest overrides the Manager's kernel, initramfs, root file system
// image, memory and vCPUs for one VM (Guest). With Spec.Credential the
// VMM runs as that user (the cell's shim drops to them before it execs
// QEMU), in a directory of theirs under the 0711 StateDir: the guest's
// files are then opened with that user's rights.
//
// Once QEMU has created its QMP and agent sockets and the Manager has
// connected to both, it removes them from the file system: a VM leaves no
// socket behind, however the host ends. NewManager sweeps state
// directories a killed host left in the short window before that.
//
// # Landauer's tax for guests
//
// A guest's munmap and madvise never reach the host's system calls. The
// VM has a virtio-balloon with free page reporting: the guest kernel
// reports the free blocks it gathers (of pageblock order, 2 MiB on x86),
// and QEMU discards them with madvise(MADV_DONTNEED) from its own
// process, in the cell's cgroup, which the eBPF meter counts.
//
// # Accelerators
//
// Options.Accel "auto" (the default) uses KVM when /dev/kvm opens and a
// probe guest boots under it within Options.ProbeTimeout, and falls back
// to TCG (-accel tcg -cpu max) otherwise, saying why (Manager.Accel).
package vm
