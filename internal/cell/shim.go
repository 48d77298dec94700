package cell

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
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

// runShim is the shim's main. args are: cpu list ("" for none), the
// credential (formatCredential; "" keeps the shim's), the working
// directory ("" keeps the shim's), the path of the command, then its argv
// (argv[0] first).
func runShim(args []string) int {
	// Affinity is per thread, and execve keeps the calling thread's: set
	// it on the thread that will exec.
	runtime.LockOSThread()
	status := os.NewFile(shimStatusFD, "status")
	ready := os.NewFile(shimReadyFD, "ready")
	if status == nil || ready == nil || len(args) < 5 {
		fmt.Fprintln(os.Stderr, "maxwell cell shim: bad invocation")
		return shimExitUsage
	}
	cpuList, credArg, dir, path, argv := args[0], args[1], args[2], args[3], args[4:]
	// Neither pipe may leak into the command.
	unix.CloseOnExec(shimReadyFD)
	unix.CloseOnExec(shimStatusFD)
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(status, format, a...)
		return code
	}
	cred, err := parseCredential(credArg)
	if err != nil {
		return fail(shimExitUsage, "credential: %v", err)
	}

	var b [1]byte
	if n, _ := ready.Read(b[:]); n != 1 || b[0] != 'g' {
		// The manager gave up (or died) before the cell was ready.
		return shimExitAborted
	}
	ready.Close()

	if cpuList != "" {
		cpus, err := cpuset.Parse(cpuList)
		if err != nil {
			return fail(shimExitUsage, "cpu list: %v", err)
		}
		var set unix.CPUSet
		for _, c := range cpus {
			set.Set(c)
		}
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fail(shimExitExec, "sched_setaffinity %s: %v", cpuList, err)
		}
	}
	if cred != nil {
		if err := dropTo(cred); err != nil {
			return fail(shimExitExec, "%v", err)
		}
	}
	if dir != "" {
		if err := os.Chdir(dir); err != nil {
			return fail(shimExitExec, "working directory: %v", err)
		}
	}
	err = syscall.Exec(path, argv, os.Environ())
	return fail(shimExitExec, "exec %s: %v", path, err)
}

// dropTo makes the process cred's user: groups first, then the GID, then
// the UID, after which it can regain nothing (setuid away from root
// clears every capability). Go applies each call to all of the process's
// threads.
func dropTo(cred *syscall.Credential) error {
	groups := make([]int, len(cred.Groups))
	for i, g := range cred.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := syscall.Setgid(int(cred.Gid)); err != nil {
		return fmt.Errorf("setgid %d: %w", cred.Gid, err)
	}
	if err := syscall.Setuid(int(cred.Uid)); err != nil {
		return fmt.Errorf("setuid %d: %w", cred.Uid, err)
	}
	return nil
}

// formatCredential writes a credential as the shim reads it:
// "UID:GID:G1,G2,…", or "" for none.
func formatCredential(c *syscall.Credential) string {
	if c == nil {
		return ""
	}
	gs := make([]string, len(c.Groups))
	for i, g := range c.Groups {
		gs[i] = strconv.FormatUint(uint64(g), 10)
	}
	return fmt.Sprintf("%d:%d:%s", c.Uid, c.Gid, strings.Join(gs, ","))
}

// parseCredential reads what formatCredential wrote.
func parseCredential(s string) (*syscall.Credential, error) {
	if s == "" {
		return nil, nil
	}
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return nil, fmt.Errorf("%q: want UID:GID:GROUPS", s)
	}
	id := func(v string) (uint32, error) {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", v, err)
		}
		return uint32(n), nil
	}
	uid, err := id(f[0])
	if err != nil {
		return nil, err
	}
	gid, err := id(f[1])
	if err != nil {
		return nil, err
	}
	c := &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
	if f[2] != "" {
		for _, g := range strings.Split(f[2], ",") {
			n, err := id(g)
			if err != nil {
				return nil, err
			}
			c.Groups = append(c.Groups, n)
		}
	}
	return c, nil
}
