// Package firecracker runs cells as Firecracker microVMs and tunnels the
// agent protocol over vsock.
//
// A Manager boots a configured kernel and root file system with
// firecracker-go-sdk. The Firecracker process (or the jailer, in
// production) is started as the command of an ordinary cell of a
// cell.Manager, so the VM lives in that cell's cgroups: CPU time, memory
// and the cgroup id (the Landauer meter's key) are the cell's, the cell
// guard kills the VM if the host dies, and only Pause and Resume differ:
// they are PATCH /vm {"state": "Paused"|"Resumed"} (Machine.PauseVM,
// Machine.ResumeVM), confirmed with GET / (the instance state).
//
// The guest's agent dials vsock CID 2 (the host) on Options.AgentPort;
// Firecracker turns each such connection into a connection from its own
// process to the Unix socket "<vsock uds>_<port>" (ListenVsock), so the
// hub's SO_PEERCRED names the VM's Firecracker process, which is in the
// cell: the agent's identity comes from the VM, never from its messages.
// Host-initiated connections go through DialVsock's CONNECT handshake.
package firecracker
