package vm

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// maxConsoleLine bounds the part of a console line the scanner keeps to
// look for markers; the bytes themselves all pass through.
const maxConsoleLine = 4096

// panicMarker is how the kernel starts a panic message.
const panicMarker = "Kernel panic - not syncing"

// console watches the guest's console (the VMM's standard output) for
// init's markers and kernel panics, and passes every byte on to out.
type console struct {
	out io.Writer // nil discards

	mu       sync.Mutex
	line     []byte
	ready    chan struct{}
	isReady  bool
	ended    chan struct{} // closed when init says the command ended
	exited   bool
	status   int
	initErr  string
	panicMsg string
}

func newConsole(out io.Writer) *console {
	return &console{out: out, ready: make(chan struct{}), ended: make(chan struct{})}
}

// Write implements io.Writer. It never fails: the guest's console must
// keep flowing even when the cell's own output writer fails.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			c.keep(rest)
			break
		}
		c.keep(rest[:i])
		c.scan(string(bytes.TrimRight(c.line, "\r")))
		c.line = c.line[:0]
		rest = rest[i+1:]
	}
	c.mu.Unlock()
	if c.out != nil {
		_, _ = c.out.Write(p)
	}
	return len(p), nil
}

func (c *console) keep(b []byte) {
	if room := maxConsoleLine - len(c.line); room > 0 {
		c.line = append(c.line, b[:min(len(b), room)]...)
	}
}

// scan looks at one complete line.
func (c *console) scan(line string) {
	switch {
	case strings.HasPrefix(line, vmimage.MarkerReady):
		if !c.isReady {
			c.isReady = true
			close(c.ready)
		}
	case strings.HasPrefix(line, vmimage.MarkerExit+" "):
		if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, vmimage.MarkerExit))); err == nil && !c.exited {
			c.exited, c.status = true, n
			close(c.ended)
		}
	case strings.HasPrefix(line, vmimage.MarkerError+" "):
		if c.initErr == "" {
			c.initErr = strings.TrimPrefix(line, vmimage.MarkerError+" ")
		}
	}
	if i := strings.Index(line, panicMarker); i >= 0 && c.panicMsg == "" {
		c.panicMsg = line[i:]
	}
}

// outcome returns what the console said about the guest's end.
func (c *console) outcome() (exited bool, status int, initErr, panicMsg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exited, c.status, c.initErr, c.panicMsg
}

// tail keeps the last bytes written to it, for error messages.
type tail struct {
	out io.Writer // nil discards
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	t.mu.Unlock()
	if t.out != nil {
		_, _ = t.out.Write(p)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
