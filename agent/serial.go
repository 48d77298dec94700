package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
)

// serialConn is a virtio-serial port (a character device such as
// /dev/virtio-ports/maxwell.agent in a QEMU microVM) as a net.Conn.
//
// A serial port has no connection: the host's end stays open while agents
// come and go in the guest, so a new agent can find in the port what the
// host sent its predecessor (acks, ticks), and the host can hold the
// unfinished line a crashed predecessor left. So on open the agent sends
// a lone newline, which ends any such line (the host ignores empty
// lines), and until the host's welcome (or a fatal error, the host's
// refusal) has been read, every other line from the host is dropped. The
// hub, for its part, takes a hello in the middle of a session as a new
// agent's (see hub.Attach).
//
// Reads and writes honour deadlines: the port is pollable, so the file is
// in non-blocking mode under Go's poller.
type serialConn struct {
	f    *os.File
	path string

	rmu    sync.Mutex
	synced bool   // the welcome has been read: pass everything through
	line   []byte // a partial line being examined before the welcome
	skip   bool   // dropping the rest of an over-long line
	out    []byte // bytes ready to return
}

// dialSerial opens the virtio-serial port at path, within ctx.
func dialSerial(ctx context.Context, path string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("agent: dial serial %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, syscall.EBUSY) {
			err = fmt.Errorf("%w (another process of this guest has the port open)", err)
		}
		return nil, fmt.Errorf("agent: dial serial: %w", err)
	}
	c := &serialConn{f: f, path: path}
	if dl, ok := ctx.Deadline(); ok {
		f.SetWriteDeadline(dl)
	}
	_, err = f.Write([]byte{'\n'})
	f.SetWriteDeadline(time.Time{})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("agent: dial serial %s: resync: %w", path, err)
	}
	return c, nil
}

// Read implements net.Conn.
func (c *serialConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.synced {
			return c.f.Read(p)
		}
		buf := make([]byte, 4096)
		n, err := c.f.Read(buf)
		c.filter(buf[:n])
		if err != nil && len(c.out) == 0 {
			return 0, err
		}
	}
}

// filter examines the host's bytes before the welcome: it drops whole
// lines until one is a welcome or a fatal error, and from there on queues
// everything for Read.
func (c *serialConn) filter(b []byte) {
	for len(b) > 0 {
		if c.synced {
			c.out = append(c.out, b...)
			return
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if !c.skip {
				c.line = append(c.line, b...)
				if len(c.line) > proto.MaxLine {
					c.line, c.skip = c.line[:0], true
				}
			}
			return
		}
		chunk := b[:i]
		b = b[i+1:]
		if c.skip {
			c.skip = false
			continue
		}
		line := append(c.line, chunk...)
		c.line = nil
		if keep(line) {
			c.synced = true
			c.out = append(append(c.out, line...), '\n')
		}
	}
}

// keep reports whether a line read before the welcome is for this agent:
// the welcome itself, or a fatal error (the host refusing the agent).
func keep(line []byte) bool {
	m, err := proto.Decode(line)
	if err != nil {
		return false
	}
	switch m := m.(type) {
	case *proto.Welcome:
		return true
	case *proto.Error:
		return m.Fatal
	}
	return false
}

func (c *serialConn) Write(p []byte) (int, error)        { return c.f.Write(p) }
func (c *serialConn) Close() error                       { return c.f.Close() }
func (c *serialConn) LocalAddr() net.Addr                { return serialAddr(c.path) }
func (c *serialConn) RemoteAddr() net.Addr               { return serialAddr("host") }
func (c *serialConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *serialConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *serialConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// serialAddr is the address of a serial port: its device path.
type serialAddr string

func (a serialAddr) Network() string { return Serial }
func (a serialAddr) String() string  { return string(a) }
