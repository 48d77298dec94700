// Package qmp is a small client of the QEMU Machine Protocol: JSON
// objects, one per line, on a Unix stream socket (QEMU's -qmp or -mon
// mode=control chardev).
//
// Dial reads QEMU's greeting and leaves capabilities negotiation mode with
// qmp_capabilities; Execute runs one command and waits for its answer;
// asynchronous events (STOP, RESUME, SHUTDOWN, GUEST_PANICKED, ...) are
// delivered on Events without ever blocking the reader. Every wait is
// bounded by a context: a QEMU that stops answering costs the caller its
// deadline, never a hang.
//
// Why not github.com/digitalocean/go-qemu/qmp: its SocketMonitor.Run has
// no context or deadline (a wedged QEMU blocks the caller forever), it
// answers commands by reading the next non-event line rather than by
// request id, and it pulls in libvirt RPC code Maxwell does not use. The
// protocol subset Maxwell needs is about two hundred lines.
package qmp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Errors of this package.
var (
	// ErrGreeting means the peer did not greet like QEMU's QMP server.
	ErrGreeting = errors.New("qmp: no QMP greeting")
	// ErrClosed means the connection has ended (QEMU exited, or Close).
	ErrClosed = errors.New("qmp: connection closed")
	// ErrProtocol means QEMU sent a line that is not a QMP message.
	ErrProtocol = errors.New("qmp: malformed message")
)

// MaxLine bounds one message from QEMU. QEMU's answers to the commands
// Maxwell sends are a few hundred bytes; a longer line ends the
// connection rather than grow the buffer.
const MaxLine = 1 << 20

// eventBuffer is how many events wait for a reader before the oldest is
// dropped.
const eventBuffer = 64

// Error is an error answer from QEMU.
type Error struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *Error) Error() string { return "qmp: " + e.Class + ": " + e.Desc }

// Event is an asynchronous QMP event.
type Event struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data,omitempty"`
	// At is QEMU's timestamp of the event.
	At time.Time `json:"-"`
}

// Status is the answer to query-status.
type Status struct {
	Running bool   `json:"running"`
	Status  string `json:"status"` // "running", "paused", "shutdown", "guest-panicked", ...
}

// Client is one QMP connection. Its methods are safe for concurrent use.
type Client struct {
	conn    net.Conn
	version string

	wmu sync.Mutex // serializes writes

	mu      sync.Mutex
	nextID  uint64
	pending map[string]chan reply
	err     error // why the reader ended

	events  chan Event
	dropped uint64
	done    chan struct{}
}

type reply struct {
	ret json.RawMessage
	err error
}

// message is any line QEMU sends.
type message struct {
	QMP       *struct{ Version json.RawMessage } `json:"QMP"`
	Return    json.RawMessage                    `json:"return"`
	Error     *Error                             `json:"error"`
	ID        json.RawMessage                    `json:"id"`
	Event     string                             `json:"event"`
	Data      json.RawMessage                    `json:"data"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

// Dial connects to the QMP socket at path, reads the greeting and
// negotiates capabilities, all within ctx.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	c, err := NewClient(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// NewClient runs the handshake on conn, within ctx, and starts serving it.
// The Client owns conn from then on.
func NewClient(ctx context.Context, conn net.Conn) (*Client, error) {
	c := &Client{
		conn:    conn,
		pending: make(map[string]chan reply),
		events:  make(chan Event, eventBuffer),
		done:    make(chan struct{}),
	}
	rd := bufio.NewReaderSize(conn, 64<<10)
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	line, err := readLine(rd)
	stopped := !stop()
	if err != nil {
		if stopped {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrGreeting, err)
	}
	if stopped {
		return nil, fmt.Errorf("%w: %w", ErrGreeting, ctx.Err())
	}
	conn.SetReadDeadline(time.Time{})
	var g message
	if err := json.Unmarshal(line, &g); err != nil || g.QMP == nil {
		return nil, fmt.Errorf("%w: %.200q", ErrGreeting, line)
	}
	c.version = string(g.QMP.Version)
	go c.readLoop(rd)
	if err := c.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("qmp: capabilities: %w", err)
	}
	return c, nil
}

// Version returns the version object of QEMU's greeting, as JSON.
func (c *Client) Version() string { return c.version }

// Events delivers QEMU's asynchronous events. When nobody reads, the
// oldest waiting event is dropped (see Dropped); the channel is closed
// when the connection ends.
func (c *Client) Events() <-chan Event { return c.events }

// Dropped returns how many events were dropped because Events was not
// read.
func (c *Client) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it lasts.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection. It is idempotent.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Execute runs command with args (nil for none; anything that marshals to
// a JSON object) and decodes the answer's "return" into result (nil to
// ignore it). It returns an *Error for QEMU's error answer, and ctx's
// error if no answer comes in time.
func (c *Client) Execute(ctx context.Context, command string, args, result any) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := strconv.FormatUint(c.nextID, 10)
	ch := make(chan reply, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}

	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id}
	line, err := json.Marshal(req)
	if err != nil {
		forget()
		return fmt.Errorf("qmp: %s: %w", command, err)
	}
	line = append(line, '\n')
	if err := c.write(ctx, line); err != nil {
		forget()
		return fmt.Errorf("qmp: %s: %w", command, err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("qmp: %s: %w", command, r.err)
		}
		if result != nil {
			if err := json.Unmarshal(r.ret, result); err != nil {
				return fmt.Errorf("qmp: %s: %w: %w", command, ErrProtocol, err)
			}
		}
		return nil
	case <-ctx.Done():
		forget()
		return fmt.Errorf("qmp: %s: %w", command, ctx.Err())
	}
}

// write sends one line within ctx.
func (c *Client) write(ctx context.Context, line []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetWriteDeadline(dl)
	} else {
		c.conn.SetWriteDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	_, err := c.conn.Write(line)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// QueryStatus runs query-status.
func (c *Client) QueryStatus(ctx context.Context) (Status, error) {
	var s Status
	err := c.Execute(ctx, "query-status", nil, &s)
	return s, err
}

// readLoop dispatches QEMU's lines until the connection ends.
func (c *Client) readLoop(rd *bufio.Reader) {
	var err error
	for {
		var line []byte
		line, err = readLine(rd)
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m message
		if jerr := json.Unmarshal(line, &m); jerr != nil {
			err = fmt.Errorf("%w: %.200q", ErrProtocol, line)
			break
		}
		switch {
		case m.Event != "":
			ev := Event{Name: m.Event, Data: m.Data}
			if m.Timestamp != nil {
				ev.At = time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000)
			}
			c.deliver(ev)
		case m.ID != nil:
			var id string
			if json.Unmarshal(m.ID, &id) != nil {
				id = string(m.ID)
			}
			c.mu.Lock()
			ch := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ch == nil {
				continue // an answer nobody waits for any more
			}
			r := reply{ret: m.Return}
			if m.Error != nil {
				r.err = m.Error
			}
			ch <- r
		}
	}
	c.conn.Close()
	c.mu.Lock()
	c.err = fmt.Errorf("%w: %w", ErrClosed, err)
	for id, ch := range c.pending {
		ch <- reply{err: c.err}
		delete(c.pending, id)
	}
	c.mu.Unlock()
	close(c.events)
	close(c.done)
}

// deliver queues ev, dropping the oldest queued event if the queue is
// full: the reader never blocks on a slow consumer.
func (c *Client) deliver(ev Event) {
	for {
		select {
		case c.events <- ev:
			return
		default:
		}
		select {
		case <-c.events:
			c.mu.Lock()
			c.dropped++
			c.mu.Unlock()
		default:
		}
	}
}

// readLine reads one line of at most MaxLine bytes.
func readLine(rd *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := rd.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxLine {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, MaxLine)
		}
		if err == nil {
			return buf, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}
