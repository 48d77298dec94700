package hub

import (
	"bytes"
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

// session is the host's view of one welcomed connection.
type session struct {
	cell     string
	pid      int
	hd       *holder // the link's claim on cell
	lastSeq  uint64
	counters map[string]uint64
	errors   int

	wmu sync.Mutex // serializes writes: answers and ticks come from two goroutines
}

// writeLine sends one encoded message within timeout.
func (s *session) writeLine(conn net.Conn, line []byte, timeout time.Duration) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := conn.Write(line)
	return err
}

// serveCell serves conn as the agent of cell, whose identity the caller
// established, until the connection must close. It returns the event that
// ends it and, when the host ended it for the agent's fault, why: the
// *proto.Error sent, or the write error of an agent that stopped reading.
//
// With resync (a link without connections, such as a serial port: see
// Attach) empty lines are skipped and a hello in the middle of a session
// ends that session and starts a new one on the same link.
//
// The link claims its cell once its hello is read: a link the cell had
// is superseded then (see claim), so that a connection that never says
// hello takes nothing from the cell's agent.
func (h *Hub) serveCell(ctx context.Context, conn net.Conn, pid int, cell string, resync bool) (Event, error) {
	rd := proto.NewReader(conn)
	hello, perr := h.readHello(ctx, conn, rd, resync)
	if perr != nil {
		return h.refuse(conn, pid, cell, perr, h.opts.WriteTimeout), perr
	}
	if hello == nil { // peer went away or host shutting down
		return Event{Kind: EventRefused, Cell: cell, PID: pid, Detail: "closed before hello"}, nil
	}
	hd := &holder{conn: conn, pid: pid, attached: resync}
	if !h.claim(cell, hd) {
		e := &proto.Error{Code: proto.CodeAlreadyConnected,
			Message: fmt.Sprintf("cell %s has its agent attached through a link of its own", cell)}
		return h.refuse(conn, pid, cell, e, h.opts.WriteTimeout), e
	}
	defer h.release(cell, hd)
	for {
		ev, next, fault := h.session(ctx, conn, rd, hd, cell, hello, resync)
		if next == nil {
			return ev, fault
		}
		h.emit(ev)
		hello = next
	}
}

// session runs one session, from the welcome of hello on. It returns the
// event that ends it, the hello of the next session when a resync link
// brought one, and the agent's fault, if any (see serveCell).
func (h *Hub) session(ctx context.Context, conn net.Conn, rd *proto.Reader, hd *holder, cell string, hello *proto.Hello, resync bool) (Event, *proto.Hello, error) {
	pid := hd.pid
	s := &session{cell: cell, pid: pid, hd: hd, counters: make(map[string]uint64)}
	h.declare(cell, hd, hello.Useful)
	bidding := hello.Bidding && h.opts.Auctions
	var ob *outbox
	if bidding {
		// Registered before the welcome, so that every auction opened once
		// the agent has its welcome reaches it; the writer starts after.
		ob = newOutbox()
		h.setBidder(cell, hd, ob)
		defer h.dropBidder(cell, ob)
	}
	if err := write(conn, &proto.Welcome{Cell: cell, Protocol: proto.Version, Bidding: bidding}, h.opts.WriteTimeout); err != nil {
		return Event{Kind: EventRefused, Cell: cell, PID: pid, Detail: "write welcome: " + err.Error()}, nil, fmt.Errorf("%w: %w", ErrStalled, err)
	}
	h.emit(Event{Kind: EventConnected, Cell: cell, PID: pid,
		Detail: fmt.Sprintf("kind=%q name=%q software=%q version=%q bidding=%v", hello.Kind, hello.Name, hello.Software, hello.Version, bidding)})

	var next *proto.Hello
	if ob != nil {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.writeTicks(conn, s, ob, stop)
		}()
		defer func() {
			close(stop)
			if next != nil {
				// The link lives on: unblock a tick write without
				// closing it (the next write sets its own deadline).
				conn.SetWriteDeadline(time.Unix(1, 0))
			} else {
				conn.Close() // unblock a tick write to an agent that stopped reading
			}
			wg.Wait()
		}()
	}
	code, detail, fault, nh := h.serveSession(ctx, conn, rd, s, resync)
	if nh != nil {
		next = nh
		return Event{Kind: EventDisconnected, Cell: cell, PID: pid, Detail: "a new agent said hello on the link"}, next, nil
	}
	if ob != nil && code == "" && ctx.Err() == nil {
		if err := ob.failure(); err != nil {
			detail = "write tick: " + err.Error()
			fault = fmt.Errorf("%w: %w", ErrStalled, err)
		}
	}
	return Event{Kind: EventDisconnected, Cell: cell, PID: pid, Code: code, Detail: detail}, nil, fault
}

// readHello waits for the first message. It returns the error to refuse
// the peer with, or (nil, nil) when the peer left or the host is stopping.
func (h *Hub) readHello(ctx context.Context, conn net.Conn, rd *proto.Reader, resync bool) (*proto.Hello, *proto.Error) {
	conn.SetReadDeadline(time.Now().Add(h.opts.HandshakeTimeout))
	line, err := rd.ReadLine()
	for resync && err == nil && isBlank(line) {
		line, err = rd.ReadLine()
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, nil
		case errors.Is(err, proto.ErrOversized):
			return nil, &proto.Error{Code: proto.CodeOversized, Message: fmt.Sprintf("line exceeds %d bytes", proto.MaxLine)}
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, &proto.Error{Code: proto.CodeTimeout, Message: fmt.Sprintf("no hello within %v", h.opts.HandshakeTimeout)}
		}
		return nil, nil
	}
	m, err := proto.Decode(line)
	if err != nil {
		return nil, asProto(err)
	}
	hello, ok := m.(*proto.Hello)
	if !ok {
		return nil, &proto.Error{Code: proto.CodeUnexpectedType, Message: fmt.Sprintf("first message is %s, want hello", m.MessageType())}
	}
	return hello, nil
}

// serveSession reads reports until the connection ends, and says why it
// ended: the code sent, a description, and the agent's fault (the
// *proto.Error that ended the session, or a write error). With resync,
// empty lines are skipped (they do not extend the idle deadline) and a
// hello ends the session and is returned, to start the next.
func (h *Hub) serveSession(ctx context.Context, conn net.Conn, rd *proto.Reader, s *session, resync bool) (proto.Code, string, error, *proto.Hello) {
	for {
		conn.SetReadDeadline(time.Now().Add(h.opts.IdleTimeout))
		if s.hd.superseded.Load() {
			return h.over(conn, s)
		}
		line, err := rd.ReadLine()
		for resync && err == nil && isBlank(line) {
			line, err = rd.ReadLine()
		}
		if s.hd.superseded.Load() {
			return h.over(conn, s)
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return "", "host shutting down", nil, nil
			case errors.Is(err, proto.ErrOversized):
				e := &proto.Error{Code: proto.CodeOversized, Message: fmt.Sprintf("line exceeds %d bytes", proto.MaxLine), Fatal: true}
				h.reject(conn, s, e)
				return e.Code, e.Message, e, nil
			case errors.Is(err, os.ErrDeadlineExceeded):
				e := &proto.Error{Code: proto.CodeTimeout, Message: fmt.Sprintf("no message within %v", h.opts.IdleTimeout), Fatal: true}
				h.reject(conn, s, e)
				return e.Code, e.Message, e, nil
			case errors.Is(err, io.EOF):
				return "", "agent closed the connection", nil, nil
			}
			return "", "read: " + err.Error(), nil, nil
		}
		m, err := proto.Decode(line)
		var e *proto.Error
		var ack *proto.Ack
		switch m := m.(type) {
		case nil:
			e = asProto(err)
		case *proto.Hello:
			if resync {
				return "", "", nil, m
			}
			e = &proto.Error{Code: proto.CodeUnexpectedType, Message: fmt.Sprintf("%s is not accepted after hello", m.MessageType())}
		case *proto.Report:
			if e = h.apply(s, m); e != nil && e.Code == proto.CodeSuperseded {
				return h.over(conn, s)
			} else if e == nil {
				ack = &proto.Ack{Seq: m.Seq}
			} else {
				e.Seq = m.Seq
			}
		case *proto.Bid:
			if e = h.placeBid(s, m); e != nil && e.Code == proto.CodeSuperseded {
				return h.over(conn, s)
			} else if e == nil {
				ack = &proto.Ack{Tick: m.Tick}
			} else {
				e.Tick = m.Tick
			}
		default:
			e = &proto.Error{Code: proto.CodeUnexpectedType, Message: fmt.Sprintf("%s is not accepted after hello", m.MessageType())}
		}
		if ack != nil {
			if err := h.send(conn, s, ack); err != nil {
				return "", "write ack: " + err.Error(), fmt.Errorf("%w: %w", ErrStalled, err), nil
			}
			continue
		}
		// A bid that crossed the auction's close on the wire is no fault of
		// the agent's: out_of_turn does not count toward MaxErrors.
		if e.Code != proto.CodeOutOfTurn {
			s.errors++
		}
		if s.errors >= h.opts.MaxErrors {
			e = &proto.Error{Code: proto.CodeTooManyErrors, Seq: e.Seq, Tick: e.Tick, Fatal: true,
				Message: fmt.Sprintf("%d rejected messages; last: %s: %s", s.errors, e.Code, e.Message)}
		}
		if err := h.reject(conn, s, e); err != nil || e.Fatal {
			if err != nil {
				return e.Code, "write error: " + err.Error(), fmt.Errorf("%w: %w", ErrStalled, err), nil
			}
			return e.Code, e.Message, e, nil
		}
	}
}

// apply checks r against the session and, if it is acceptable, records it.
func (h *Hub) apply(s *session, r *proto.Report) *proto.Error {
	if r.Seq <= s.lastSeq {
		return &proto.Error{Code: proto.CodeOutOfOrder, Message: fmt.Sprintf("seq %d after %d", r.Seq, s.lastSeq)}
	}
	added := 0
	for _, name := range sortedKeys(r.Counters) {
		v := r.Counters[name]
		old, ok := s.counters[name]
		if !ok {
			added++
			continue
		}
		if v < old {
			return &proto.Error{Code: proto.CodeCounterDecreased, Message: fmt.Sprintf("counter %q went from %d to %d", name, old, v)}
		}
	}
	if len(s.counters)+added > proto.MaxCounters {
		return &proto.Error{Code: proto.CodeInvalidCounter, Message: fmt.Sprintf("more than %d counters", proto.MaxCounters)}
	}
	for name, v := range r.Counters {
		s.counters[name] = v
	}
	s.lastSeq = r.Seq
	if !h.publish(s.cell, s.hd, s.counters, r.Seq, h.opts.Now()) {
		return errSuperseded
	}
	return nil
}

// errSuperseded is what apply and placeBid return for a message that
// arrived on a link after a newer one took its cell over: the session
// ends (see over), and the message is not acknowledged.
var errSuperseded = &proto.Error{Code: proto.CodeSuperseded}

// supersededWriteTimeout bounds the write that tells a superseded agent
// why its connection closes: it is a courtesy, and must not keep the link
// open long.
const supersededWriteTimeout = 100 * time.Millisecond

// over ends the session of a link a newer one of its cell superseded: it
// tells the agent so, best effort, and returns what serveSession returns.
func (h *Hub) over(conn net.Conn, s *session) (proto.Code, string, error, *proto.Hello) {
	e := &proto.Error{Code: proto.CodeSuperseded, Fatal: true,
		Message: fmt.Sprintf("a newer connection of cell %s (pid %d) said hello", s.cell, s.hd.by.Load())}
	if line, err := proto.Encode(e); err == nil {
		s.writeLine(conn, line, supersededWriteTimeout)
	}
	return e.Code, e.Message, nil, nil
}

// reject sends e to a welcomed peer and emits a protocol error event.
func (h *Hub) reject(conn net.Conn, s *session, e *proto.Error) error {
	h.emit(Event{Kind: EventProtocolError, Cell: s.cell, PID: s.pid, Code: e.Code, Detail: e.Message})
	return h.send(conn, s, e)
}

// send sends one message to a welcomed peer within the write timeout.
func (h *Hub) send(conn net.Conn, s *session, m proto.Message) error {
	line, err := proto.Encode(m)
	if err != nil {
		return err
	}
	return s.writeLine(conn, line, h.opts.WriteTimeout)
}

// refuse sends e, marked fatal, within timeout to a peer that was not
// welcomed, and returns the refused event. The caller closes the
// connection.
func (h *Hub) refuse(conn net.Conn, pid int, cell string, e *proto.Error, timeout time.Duration) Event {
	e.Fatal = true
	write(conn, e, timeout) // best effort: the peer may be gone
	return Event{Kind: EventRefused, Cell: cell, PID: pid, Code: e.Code, Detail: e.Message}
}

// write sends one message within timeout to a peer that has not been
// welcomed, so that nothing else writes to conn.
func write(conn net.Conn, m proto.Message, timeout time.Duration) error {
	line, err := proto.Encode(m)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err = conn.Write(line)
	return err
}

// isBlank reports whether a line holds nothing but white space.
func isBlank(line []byte) bool { return len(bytes.TrimSpace(line)) == 0 }

func asProto(err error) *proto.Error {
	var e *proto.Error
	if errors.As(err, &e) {
		c := *e
		return &c
	}
	return &proto.Error{Code: proto.CodeMalformed, Message: err.Error()}
}
