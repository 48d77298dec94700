// Package agent makes any Go program a Maxwell agent: it connects to the
// host that runs the program's cell and reports the program's counters.
//
//	c, err := agent.Dial(ctx, agent.FromEnv())
//	if err != nil { ... }
//	defer c.Close()
//	err = c.Report(ctx, map[string]uint64{"primes": n})
//
// The wire protocol is specified in docs/PROTOCOL.md; its messages are in
// package agent/proto. Counters are cumulative: each value must never
// decrease while the connection lasts.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
)

// Environment variables naming the host's endpoint.
const (
	// EnvSocket is the path of the host's Unix stream socket.
	EnvSocket = "MAXWELL_AGENT_SOCKET"
	// EnvVsock is reserved for a vsock endpoint ("CID:PORT"), for agents in
	// virtual machines. This version cannot dial it.
	EnvVsock = "MAXWELL_AGENT_VSOCK"
)

// Transports a Config may name.
const (
	Unix  = "unix"
	Vsock = "vsock"
)

// ProtocolError is an error message from the host, or a protocol rule the
// client enforced before sending. Code is machine-readable.
type ProtocolError = proto.Error

// Sentinel errors.
var (
	// ErrNoEndpoint: the Config names no host (the environment had neither
	// EnvSocket nor EnvVsock).
	ErrNoEndpoint = errors.New("agent: no host endpoint configured")
	// ErrUnsupportedTransport: the Config names a transport this version
	// cannot dial.
	ErrUnsupportedTransport = errors.New("agent: unsupported transport")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("agent: client closed")
)

// Config says where the host is and how the agent introduces itself.
type Config struct {
	Transport string // Unix or Vsock; "" means Unix
	Address   string // socket path for Unix, "CID:PORT" for Vsock

	// Hello is sent in the handshake. It is informational only: the host
	// identifies the agent by its process. Empty Software and Version are
	// filled in from the program's build information.
	Hello proto.Hello
}

// FromEnv returns a Config for the endpoint named in the environment:
// EnvSocket if set, else EnvVsock. With neither, Address is empty and Dial
// returns ErrNoEndpoint.
func FromEnv() Config {
	if p := os.Getenv(EnvSocket); p != "" {
		return Config{Transport: Unix, Address: p}
	}
	if a := os.Getenv(EnvVsock); a != "" {
		return Config{Transport: Vsock, Address: a}
	}
	return Config{}
}

// Client is a connection to the host. Its methods are safe for concurrent
// use; reports are sent one at a time.
type Client struct {
	conn net.Conn
	cell string

	mu  sync.Mutex // serializes exchanges; guards below
	rd  *proto.Reader
	seq uint64
	err error // sticky: the connection is unusable

	dmu    sync.Mutex // guards gen
	gen    uint64     // exchange generation, so a late ctx cancel cannot touch the next exchange
	closed chan struct{}
	once   sync.Once
}

// Dial connects to the host named by cfg and completes the handshake. It
// returns a *ProtocolError when the host refuses the agent (for example
// proto.CodeNotACell), ErrNoEndpoint when cfg names no host, and
// ErrUnsupportedTransport for a transport this version cannot dial.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Address == "" {
		return nil, ErrNoEndpoint
	}
	conn, err := dialTransport(ctx, cfg.Transport, cfg.Address)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, rd: proto.NewReader(conn), closed: make(chan struct{})}
	hello := cfg.Hello
	fillBuildInfo(&hello)
	if err := c.handshake(ctx, &hello); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// DialUnix is Dial to the Unix socket at path with an empty hello.
func DialUnix(ctx context.Context, path string) (*Client, error) {
	return Dial(ctx, Config{Transport: Unix, Address: path})
}

// dialTransport opens the byte stream to the host. New transports slot in
// here.
func dialTransport(ctx context.Context, transport, addr string) (net.Conn, error) {
	switch transport {
	case "", Unix:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", addr)
		if err != nil {
			return nil, fmt.Errorf("agent: dial: %w", err)
		}
		return conn, nil
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedTransport, transport)
	}
}

func fillBuildInfo(h *proto.Hello) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if h.Software == "" {
		h.Software = bi.Path
	}
	if h.Version == "" {
		h.Version = bi.Main.Version
	}
}

// Cell returns the name of the cell the host assigned this agent.
func (c *Client) Cell() string { return c.cell }

func (c *Client) handshake(ctx context.Context, hello *proto.Hello) error {
	line, err := proto.Encode(hello)
	if err != nil {
		return err
	}
	return c.exchange(ctx, func() error {
		if _, werr := c.conn.Write(line); werr != nil {
			return c.hostError(fmt.Errorf("agent: send hello: %w", werr))
		}
		m, err := c.read()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *proto.Welcome:
			if m.Protocol != proto.Version {
				return &ProtocolError{Code: proto.CodeUnsupportedVersion,
					Message: fmt.Sprintf("host speaks protocol %d, want %d", m.Protocol, proto.Version), Fatal: true}
			}
			c.cell = m.Cell
			return nil
		case *proto.Error:
			m.Fatal = true // no welcome: the connection is done
			return m
		}
		return &ProtocolError{Code: proto.CodeUnexpectedType,
			Message: fmt.Sprintf("host answered hello with %s", m.MessageType()), Fatal: true}
	})
}

// Report sends the agent's cumulative counters and waits for the host to
// accept them. A rejection is a *ProtocolError; one with Fatal set, like
// an I/O error, leaves the Client unusable, so later calls return it too.
// When ctx ends first Report returns ctx's error and the Client stays
// usable.
func (c *Client) Report(ctx context.Context, counters map[string]uint64) error {
	r := &proto.Report{Counters: counters}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.seq++
	r.Seq = c.seq
	line, err := proto.Encode(r)
	if err != nil {
		return err
	}
	return c.exchange(ctx, func() error {
		if _, werr := c.conn.Write(line); werr != nil {
			return c.hostError(fmt.Errorf("agent: send report: %w", werr))
		}
		for {
			m, err := c.read()
			if err != nil {
				return err
			}
			switch m := m.(type) {
			case *proto.Ack:
				if m.Seq == r.Seq {
					return nil
				}
			case *proto.Error:
				if m.Seq == r.Seq || m.Seq == 0 || m.Fatal {
					return m
				}
			default:
				return &ProtocolError{Code: proto.CodeUnexpectedType,
					Message: fmt.Sprintf("host sent %s", m.MessageType()), Fatal: true}
			}
			// An answer to an earlier report whose caller gave up: skip it.
		}
	})
}

// read returns the next message from the host.
func (c *Client) read() (proto.Message, error) {
	line, err := c.rd.ReadLine()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("agent: receive: %w", err)
	}
	m, err := proto.Decode(line)
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			pe.Fatal = true // the host broke the protocol: give up
			pe.Message = "from host: " + pe.Message
		}
		return nil, err
	}
	return m, nil
}

// hostError is called when a write failed: the host may have sent an error
// and closed the connection, so look for that error before giving up.
func (c *Client) hostError(werr error) error {
	if m, err := c.read(); err == nil {
		if e, ok := m.(*proto.Error); ok {
			e.Fatal = true
			return e
		}
	}
	return &writeError{werr}
}

// writeError marks a failed write: part of a line may have been sent, so
// the stream is out of step and the connection unusable.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// exchange runs f with the connection's deadline following ctx, and
// classifies the error f returns.
func (c *Client) exchange(ctx context.Context, f func() error) error {
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	c.dmu.Lock()
	c.gen++
	gen := c.gen
	c.dmu.Unlock()
	dl, _ := ctx.Deadline()
	c.conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() {
		c.dmu.Lock()
		defer c.dmu.Unlock()
		if c.gen == gen {
			c.conn.SetDeadline(time.Unix(1, 0)) // in the past: unblock now
		}
	})
	err := f()
	stop()
	c.dmu.Lock()
	c.gen++ // a late AfterFunc is now a no-op
	c.dmu.Unlock()

	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	if err == nil {
		return nil
	}
	var pe *ProtocolError
	var we *writeError
	switch {
	case errors.As(err, &we):
		c.err = err
	case errors.As(err, &pe):
		if pe.Fatal {
			c.err = err
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		// Only ctx sets deadlines, so ctx cut the wait short (its own timer
		// may not have fired yet). The connection is still in step: Reader
		// keeps partial lines, and a cut-short write is a writeError.
		cerr := ctx.Err()
		if cerr == nil {
			cerr = context.DeadlineExceeded
		}
		err = fmt.Errorf("agent: %w", cerr)
	default:
		c.err = err
	}
	return err
}

// Close closes the connection. Calls in progress return ErrClosed.
func (c *Client) Close() error {
	err := ErrClosed
	c.once.Do(func() {
		close(c.closed)
		err = c.conn.Close()
	})
	return err
}
