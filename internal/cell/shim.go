package cell

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"github.com/maxwellhq/maxwell/internal/cpuset"

	"golang.org/x/sys/unix"
)

// The magic first arguments that turn the host binary into a shim or a
// guard. They cannot clash with a cobra subcommand or a test flag.
const (
	shimArg  = "__maxwell_cell_shim__"
	guardArg = "__maxwell_cell_guard__"
)

// File descriptors the manager hands the shim (exec.Cmd.ExtraFiles start
// at 3).
const (
	shimReadyFD  = 3 // one byte 'g' = joined every cgroup, go ahead
	shimStatusFD = 4 // close-on-exec; the exec error, if any, is written here
)

// Exit codes of the shim when it never gets to the real command.
const (
	shimExitAborted = 125 // the manager closed the ready pipe without a go
	shimExitUsage   = 126 // malformed shim command line
	shimExitExec    = 127 // execve failed; the error went to the status pipe
)

// RunShimIfRequested turns the process into a cell shim or a cell guard
// when the Manager started it as one, and then never returns; otherwise it
// returns at once and does nothing.
//
// The Manager starts both helpers by re-executing the host binary
// (Options.ShimPath, by default os.Executable()) with a magic first
// argument, the way runc re-executes itself as "runc init". So every
// binary that creates a Manager must call RunShimIfRequested first thing
// in main, before flag parsing or any other work, and every test binary
// that starts cells must call it first thing in TestMain:
//
//	func main() {
//		cell.RunShimIfRequested()
//		...
//	}
//
// The shim waits until the Manager has moved it into every cgroup of its
// cell, applies the CPU affinity, and then execs the real command, so the
// command never runs a single instruction outside its cell. The guard is
// described on Manager.
func RunShimIfRequested() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case shimArg:
		os.Exit(runShim(os.Args[2:]))
	case guardArg:
		os.Exit(runGuard(os.Args[2:]))
	}
}

// runShim is the shim's main. args are: cpu list ("" for none), path of
// the command, then its argv (argv[0] first).
func runShim(args []string) int {
	// Affinity is per thread, and execve keeps the calling thread's: set
	// it on the thread that will exec.
	runtime.LockOSThread()
	status := os.NewFile(shimStatusFD, "status")
	ready := os.NewFile(shimReadyFD, "ready")
	if status == nil || ready == nil || len(args) < 3 {
		fmt.Fprintln(os.Stderr, "maxwell cell shim: bad invocation")
		return shimExitUsage
	}
	// Neither pipe may leak into the command.
	unix.CloseOnExec(shimReadyFD)
	unix.CloseOnExec(shimStatusFD)
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(status, format, a...)
		return code
	}

	var b [1]byte
	if n, _ := ready.Read(b[:]); n != 1 || b[0] != 'g' {
		// The manager gave up (or died) before the cell was ready.
		return shimExitAborted
	}
	ready.Close()

	if args[0] != "" {
		cpus, err := cpuset.Parse(args[0])
		if err != nil {
			return fail(shimExitUsage, "cpu list: %v", err)
		}
		var set unix.CPUSet
		for _, c := range cpus {
			set.Set(c)
		}
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fail(shimExitExec, "sched_setaffinity %s: %v", args[0], err)
		}
	}
	err := syscall.Exec(args[1], args[2:], os.Environ())
	return fail(shimExitExec, "exec %s: %v", args[1], err)
}
