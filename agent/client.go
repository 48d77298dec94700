package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
)

// writeErrorWait bounds how long a failed write waits for the host's
// parting error message to be read.
const writeErrorWait = time.Second

// Client is a connection to the host. Its methods are safe for concurrent
// use. Messages are sent one at a time, in the order the calls send them,
// and the host answers them in that order; a goroutine started by Dial reads
// the answers and, for a bidding agent, the ticks.
type Client struct {
	conn    net.Conn
	cell    string
	bidding bool

	wmu sync.Mutex // serializes writes; guards seq
	seq uint64     // last report seq sent

	mu      sync.Mutex // guards below
	pending []*call    // sent, awaiting the host's answer, oldest first
	err     error      // sticky: the connection is unusable

	ticks      chan proto.Tick // capacity 1, newest wins; closed when the reader ends
	readerDone chan struct{}
	closed     chan struct{}
	once       sync.Once
}

// call is one message awaiting the host's answer.
type call struct {
	seq  uint64     // the report's seq; 0 for a bid
	tick uint64     // the bid's tick; 0 for a report
	done chan error // capacity 1; receives the answer: nil for an ack
}

// newClient completes the handshake on conn and starts the reader.
func newClient(ctx context.Context, conn net.Conn, hello *proto.Hello) (*Client, error) {
	c := &Client{
		conn:       conn,
		ticks:      make(chan proto.Tick, 1),
		readerDone: make(chan struct{}),
		closed:     make(chan struct{}),
	}
	rd := proto.NewReader(conn)
	if err := c.handshake(ctx, rd, hello); err != nil {
		return nil, err
	}
	go c.readLoop(rd)
	return c, nil
}

// Cell returns the name of the cell the host assigned this agent.
func (c *Client) Cell() string { return c.cell }

// Bidding reports whether the host agreed to send ticks: the agent asked
// (Config.Bidding) and the host runs auctions.
func (c *Client) Bidding() bool { return c.bidding }

// Ticks returns the channel on which the host's ticks arrive, each opening
// an auction to bid in. It holds only the newest tick: one the agent did
// not take in time is replaced by the next. It is closed when the
// connection ends. Without Bidding it never delivers a tick.
func (c *Client) Ticks() <-chan proto.Tick { return c.ticks }

func (c *Client) handshake(ctx context.Context, rd *proto.Reader, hello *proto.Hello) error {
	line, err := proto.Encode(hello)
	if err != nil {
		return err
	}
	err = withDeadline(ctx, c.conn.SetDeadline, func() error { return c.greet(rd, line) })
	c.conn.SetDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ctxError(ctx)
	}
	return err
}

func (c *Client) greet(rd *proto.Reader, line []byte) error {
	if _, werr := c.conn.Write(line); werr != nil {
		// The host may have refused the agent and closed: find its reason.
		if m, err := readMessage(rd); err == nil {
			if e, ok := m.(*proto.Error); ok {
				e.Fatal = true
				return e
			}
		}
		return fmt.Errorf("agent: send hello: %w", werr)
	}
	m, err := readMessage(rd)
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
		c.bidding = m.Bidding
		return nil
	case *proto.Error:
		m.Fatal = true // no welcome: the connection is done
		return m
	}
	return &ProtocolError{Code: proto.CodeUnexpectedType,
		Message: fmt.Sprintf("host answered hello with %s", m.MessageType()), Fatal: true}
}

// Report sends the agent's cumulative counters and waits for the host to
// accept them. A rejection is a *ProtocolError; one with Fatal set, like
// an I/O error, leaves the Client unusable, so later calls return it too.
// When ctx ends first Report returns ctx's error and the Client stays
// usable: the host's late answer is discarded.
func (c *Client) Report(ctx context.Context, counters map[string]uint64) error {
	if err := proto.ValidateCounters(counters); err != nil {
		return err
	}
	cl := &call{done: make(chan error, 1)}
	return c.do(ctx, cl, func() ([]byte, error) {
		r := &proto.Report{Seq: c.seq + 1, Counters: counters}
		line, err := proto.Encode(r)
		if err == nil {
			c.seq = r.Seq
			cl.seq = r.Seq
		}
		return line, err
	})
}

// Bid offers price credits per full slot for each of units slots in the
// auction of tick (see Ticks), and waits for the host to accept it. A later
// bid for the same tick replaces this one. The host refuses a bid with a
// *ProtocolError that is not fatal: proto.CodeOutOfTurn when tick is not
// the open auction (too late or too early), proto.CodeInvalidBid for a
// price above proto.MaxPrice or units outside 1 to proto.MaxBidUnits (which
// Bid refuses itself, without sending). Errors are otherwise as for Report.
func (c *Client) Bid(ctx context.Context, tick, price uint64, units int) error {
	b := &proto.Bid{Tick: tick, Price: price, Units: units}
	if err := proto.ValidateBid(b); err != nil {
		return err
	}
	cl := &call{tick: tick, done: make(chan error, 1)}
	return c.do(ctx, cl, func() ([]byte, error) { return proto.Encode(b) })
}

// do sends the line encode returns and waits for the host's answer.
func (c *Client) do(ctx context.Context, cl *call, encode func() ([]byte, error)) error {
	if err := c.send(ctx, cl, encode); err != nil {
		return err
	}
	select {
	case err := <-cl.done:
		if c.isClosed() {
			return ErrClosed
		}
		return err
	case <-ctx.Done():
		if c.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("agent: %w", ctx.Err())
	case <-c.closed:
		return ErrClosed
	}
}

// send writes one message, encoded under the write lock so that report
// seqs go out in order, and queues cl for its answer.
func (c *Client) send(ctx context.Context, cl *call, encode func() ([]byte, error)) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.isClosed() {
		return ErrClosed
	}
	if err := c.sticky(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	line, err := encode()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.pending = append(c.pending, cl)
	c.mu.Unlock()
	var n int
	werr := withDeadline(ctx, c.conn.SetWriteDeadline, func() error {
		var err error
		n, err = c.conn.Write(line)
		return err
	})
	if werr == nil {
		return nil
	}
	c.unqueue(cl)
	switch {
	case c.isClosed():
		return ErrClosed
	case n == 0 && errors.Is(werr, os.ErrDeadlineExceeded):
		// Only ctx sets write deadlines, and nothing was sent: the stream
		// is still in step.
		return ctxError(ctx)
	case !errors.Is(werr, os.ErrDeadlineExceeded):
		// The host may have sent its reason and closed: let the reader
		// find it before giving up.
		t := time.NewTimer(writeErrorWait)
		select {
		case <-c.readerDone:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	// Part of a line may have gone out: the stream is out of step.
	return c.fail(&writeError{fmt.Errorf("agent: send: %w", werr)})
}

// readLoop reads the host's messages until the connection ends.
func (c *Client) readLoop(rd *proto.Reader) {
	defer close(c.readerDone)
	defer close(c.ticks)
	for {
		m, err := readMessage(rd)
		if err != nil {
			c.fail(err)
			return
		}
		switch m := m.(type) {
		case *proto.Tick:
			select { // newest wins; this goroutine is the only sender
			case <-c.ticks:
			default:
			}
			c.ticks <- *m
		case *proto.Ack:
			if err := c.answer(m.Seq, m.Tick, nil); err != nil {
				c.fail(err)
				return
			}
		case *proto.Error:
			if m.Fatal {
				c.fail(m)
				return
			}
			c.answer(m.Seq, m.Tick, m)
		default:
			c.fail(&ProtocolError{Code: proto.CodeUnexpectedType,
				Message: fmt.Sprintf("host sent %s", m.MessageType()), Fatal: true})
			return
		}
	}
}

// answer hands the host's answer to the oldest message awaiting one. An
// ack must name that message; a non-fatal error may name none. An answer
// with nobody waiting is ignored.
func (c *Client) answer(seq, tick uint64, e *proto.Error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return nil
	}
	cl := c.pending[0]
	if e == nil && (seq != cl.seq || tick != cl.tick) {
		return &ProtocolError{Code: proto.CodeUnexpectedType, Fatal: true,
			Message: fmt.Sprintf("host acknowledged seq %d tick %d, want seq %d tick %d", seq, tick, cl.seq, cl.tick)}
	}
	c.pending[0] = nil
	c.pending = c.pending[1:]
	if e != nil {
		cl.done <- e
	} else {
		cl.done <- nil
	}
	return nil
}

// unqueue removes cl, whose message was not sent whole.
func (c *Client) unqueue(cl *call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.pending {
		if p == cl {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return
		}
	}
}

// fail makes err the Client's sticky error, unless it already has one, and
// hands the sticky error to every message awaiting an answer. It returns
// the sticky error.
func (c *Client) fail(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	for _, cl := range c.pending {
		cl.done <- c.err
	}
	c.pending = nil
	return c.err
}

func (c *Client) sticky() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// readMessage returns the next message from the host.
func readMessage(rd *proto.Reader) (proto.Message, error) {
	line, err := rd.ReadLine()
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

// writeError marks a failed write: part of a line may have been sent, so
// the stream is out of step and the connection unusable.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// withDeadline runs f with a connection deadline (set) following ctx: ctx's
// deadline, or the past once ctx is done, so that f's I/O returns.
func withDeadline(ctx context.Context, set func(time.Time) error, f func() error) error {
	dl, _ := ctx.Deadline()
	set(dl)
	var mu sync.Mutex
	over := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !over {
			set(time.Unix(1, 0))
		}
	})
	err := f()
	stop()
	mu.Lock()
	over = true
	mu.Unlock()
	return err
}

// ctxError is the error for an exchange that ctx cut short. ctx's own timer
// may not have fired yet when its deadline stopped the I/O.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		err = context.DeadlineExceeded
	}
	return fmt.Errorf("agent: %w", err)
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
