package cell

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// guardCleanupTimeout bounds the guard's cleanup after the host is gone.
const guardCleanupTimeout = 30 * time.Second

// guardMsg is one line the manager writes to the guard's stdin.
type guardMsg struct {
	Op      string     `json:"op"` // "add" or "del"
	Name    string     `json:"name"`
	Cgroups *cgroupSet `json:"cgroups,omitempty"`
	PGID    int        `json:"pgid,omitempty"` // signal cells
	// Adopted is set for an adopted cell (Manager.Adopt): the guard only
	// lets go of it (thaws it, writes back these CPU settings) and never
	// kills its processes or removes its cgroups.
	Adopted *adoptedSaved `json:"adopted,omitempty"`
}

// guardClient is the manager's end of the guard.
type guardClient struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	w   *os.File
	enc *json.Encoder
	err error // first write error; after it every send fails
}

// startGuard starts the guard process: the shim binary with guardArg, in
// its own process group (so that a ^C to the host's group does not kill
// it along with the host), its stdin the read end of a pipe whose only
// write end the manager holds.
//
// The guard is deliberately not given Pdeathsig: it must outlive the host
// to clean up after it. (Pdeathsig would also fire when the OS thread
// that forked it exits, not the process, which in Go can happen at any
// time a locked thread ends.) EOF on the pipe is the death notice instead:
// the kernel closes the write end however the host dies, SIGKILL included.
func startGuard(shim, procRoot string) (*guardClient, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("guard pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path:        shim,
		Args:        []string{shim, guardArg, procRoot},
		Stdin:       r,
		Stderr:      os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("starting cell guard %s: %w", shim, err)
	}
	r.Close()
	return &guardClient{cmd: cmd, w: w, enc: json.NewEncoder(w)}, nil
}

func (g *guardClient) send(msg guardMsg) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	if err := g.enc.Encode(msg); err != nil {
		g.err = fmt.Errorf("%w: %v", ErrGuard, err)
		return g.err
	}
	return nil
}

// close closes the pipe, which makes the guard clean up whatever is still
// registered (nothing, after a clean shutdown) and exit, and waits for it
// until ctx ends, then kills it.
func (g *guardClient) close(ctx context.Context) error {
	g.mu.Lock()
	if g.err == nil {
		g.err = fmt.Errorf("%w: %w", ErrGuard, ErrClosed)
	}
	g.w.Close()
	g.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = g.cmd.Process.Kill()
		<-done
		return fmt.Errorf("cell guard did not exit: %w", ctx.Err())
	}
}

// runGuard is the guard's main. args are: the proc root. It reads
// guardMsg lines from stdin until EOF (or SIGINT, SIGTERM, SIGHUP), then
// thaws, kills and removes every cell still registered, and exits.
func runGuard(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "maxwell cell guard: bad invocation")
		return shimExitUsage
	}
	pfs, err := procfs.NewFS(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "maxwell cell guard:", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)

	var mu sync.Mutex
	cells := make(map[string]guardMsg)
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		readGuardMsgs(os.Stdin, func(m guardMsg) {
			mu.Lock()
			defer mu.Unlock()
			switch m.Op {
			case "add":
				cells[m.Name] = m
			case "del":
				delete(cells, m.Name)
			}
		})
	}()
	select {
	case <-eof:
	case <-sigs:
	}

	mu.Lock()
	defer mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), guardCleanupTimeout)
	defer cancel()
	code := 0
	for name, m := range cells {
		if err := guardCleanup(ctx, args[0], pfs, m); err != nil {
			fmt.Fprintf(os.Stderr, "maxwell cell guard: cleaning up cell %q: %v\n", name, err)
			code = 1
		}
	}
	return code
}

// readGuardMsgs calls f for every well-formed line of r until EOF.
func readGuardMsgs(r io.Reader, f func(guardMsg)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		var m guardMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Name == "" {
			continue
		}
		f(m)
	}
}

// guardCleanup thaws, kills and removes one cell; an adopted cell it only
// thaws and lets go of.
func guardCleanup(ctx context.Context, procRoot string, pfs procfs.FS, m guardMsg) error {
	if m.Adopted != nil {
		if m.Cgroups == nil {
			return nil
		}
		return m.Cgroups.release(*m.Adopted)
	}
	var errs []error
	if m.PGID > 0 {
		g := newProcGroup(procRoot, pfs, m.PGID)
		if err := g.signal(syscall.SIGCONT); err != nil && !errors.Is(err, ErrExited) {
			errs = append(errs, err)
		}
		errs = append(errs, g.kill(ctx))
	}
	if m.Cgroups != nil {
		errs = append(errs, m.Cgroups.cleanup(ctx))
	}
	return errors.Join(errs...)
}
