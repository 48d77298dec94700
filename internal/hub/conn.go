package hub

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

// session is the host's view of one welcomed connection.
type session struct {
	cell     string
	pid      int
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

// resolve asks the resolver for pid's cell, and asks again for a short
// while if it does not know it yet: an agent may connect before the call
// that started its cell has returned and registered it.
func (h *Hub) resolve(ctx context.Context, pid int) (string, bool) {
	if pid <= 0 {
		return "", false
	}
	deadline := time.Now().Add(resolveWait)
	for {
		if cell, ok := h.res.CellForPID(pid); ok && cell != "" {
			return cell, true
		}
		if time.Now().After(deadline) {
			return "", false
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", false
		case <-t.C:
		}
	}
}

// resolveWait bounds how long resolve waits for a new cell to register.
const resolveWait = time.Second

// handle runs one connection from accept until it must close, and returns
// the event that ends it, for the caller to emit once the connection's
// resources are released.
func (h *Hub) handle(ctx context.Context, conn net.Conn) Event {
	pid, err := peerPID(conn)
	if err != nil {
		return Event{Kind: EventRefused, Detail: "peer credentials: " + err.Error()}
	}
	cell, ok := h.resolve(ctx, pid)
	if !ok || cell == "" {
		return h.refuse(conn, pid, "", &proto.Error{Code: proto.CodeNotACell,
			Message: fmt.Sprintf("pid %d belongs to no cell", pid)})
	}
	if !h.claim(cell) {
		return h.refuse(conn, pid, cell, &proto.Error{Code: proto.CodeAlreadyConnected,
			Message: fmt.Sprintf("cell %s already has a connected agent", cell)})
	}
	defer h.release(cell)

	rd := proto.NewReader(conn)
	hello, perr := h.readHello(ctx, conn, rd)
	if perr != nil {
		return h.refuse(conn, pid, cell, perr)
	}
	if hello == nil { // peer went away or host shutting down
		return Event{Kind: EventRefused, Cell: cell, PID: pid, Detail: "closed before hello"}
	}
	s := &session{cell: cell, pid: pid, counters: make(map[string]uint64)}
	h.declare(cell, hello.Useful)
	bidding := hello.Bidding && h.opts.Auctions
	var ob *outbox
	if bidding {
		// Registered before the welcome, so that every auction opened once
		// the agent has its welcome reaches it; the writer starts after.
		ob = newOutbox()
		h.setBidder(cell, ob)
		defer h.setBidder(cell, nil)
	}
	if err := h.write(conn, &proto.Welcome{Cell: cell, Protocol: proto.Version, Bidding: bidding}); err != nil {
		return Event{Kind: EventRefused, Cell: cell, PID: pid, Detail: "write welcome: " + err.Error()}
	}
	h.emit(Event{Kind: EventConnected, Cell: cell, PID: pid,
		Detail: fmt.Sprintf("kind=%q name=%q software=%q version=%q bidding=%v", hello.Kind, hello.Name, hello.Software, hello.Version, bidding)})

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
			conn.Close() // unblock a tick write to an agent that stopped reading
			wg.Wait()
		}()
	}
	code, detail := h.serveSession(ctx, conn, rd, s)
	if ob != nil && code == "" && ctx.Err() == nil {
		if err := ob.failure(); err != nil {
			detail = "write tick: " + err.Error()
		}
	}
	return Event{Kind: EventDisconnected, Cell: cell, PID: pid, Code: code, Detail: detail}
}

// readHello waits for the first message. It returns the error to refuse
// the peer with, or (nil, nil) when the peer left or the host is stopping.
func (h *Hub) readHello(ctx context.Context, conn net.Conn, rd *proto.Reader) (*proto.Hello, *proto.Error) {
	conn.SetReadDeadline(time.Now().Add(h.opts.HandshakeTimeout))
	line, err := rd.ReadLine()
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
// ended.
func (h *Hub) serveSession(ctx context.Context, conn net.Conn, rd *proto.Reader, s *session) (proto.Code, string) {
	for {
		conn.SetReadDeadline(time.Now().Add(h.opts.IdleTimeout))
		line, err := rd.ReadLine()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return "", "host shutting down"
			case errors.Is(err, proto.ErrOversized):
				e := &proto.Error{Code: proto.CodeOversized, Message: fmt.Sprintf("line exceeds %d bytes", proto.MaxLine), Fatal: true}
				h.reject(conn, s, e)
				return e.Code, e.Message
			case errors.Is(err, os.ErrDeadlineExceeded):
				e := &proto.Error{Code: proto.CodeTimeout, Message: fmt.Sprintf("no message within %v", h.opts.IdleTimeout), Fatal: true}
				h.reject(conn, s, e)
				return e.Code, e.Message
			case errors.Is(err, io.EOF):
				return "", "agent closed the connection"
			}
			return "", "read: " + err.Error()
		}
		m, err := proto.Decode(line)
		var e *proto.Error
		var ack *proto.Ack
		switch m := m.(type) {
		case nil:
			e = asProto(err)
		case *proto.Report:
			if e = h.apply(s, m); e == nil {
				ack = &proto.Ack{Seq: m.Seq}
			} else {
				e.Seq = m.Seq
			}
		case *proto.Bid:
			if e = h.placeBid(s, m); e == nil {
				ack = &proto.Ack{Tick: m.Tick}
			} else {
				e.Tick = m.Tick
			}
		default:
			e = &proto.Error{Code: proto.CodeUnexpectedType, Message: fmt.Sprintf("%s is not accepted after hello", m.MessageType())}
		}
		if ack != nil {
			if err := h.send(conn, s, ack); err != nil {
				return "", "write ack: " + err.Error()
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
				return e.Code, "write error: " + err.Error()
			}
			return e.Code, e.Message
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
	h.publish(s.cell, s.counters, r.Seq, h.opts.Now())
	return nil
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

// refuse sends e, marked fatal, to a peer that was not welcomed, and
// returns the refused event. The caller closes the connection.
func (h *Hub) refuse(conn net.Conn, pid int, cell string, e *proto.Error) Event {
	e.Fatal = true
	h.write(conn, e) // best effort: the peer may be gone
	return Event{Kind: EventRefused, Cell: cell, PID: pid, Code: e.Code, Detail: e.Message}
}

// write sends one message within the write timeout to a peer that has not
// been welcomed, so that nothing else writes to conn.
func (h *Hub) write(conn net.Conn, m proto.Message) error {
	line, err := proto.Encode(m)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
	_, err = conn.Write(line)
	return err
}

func asProto(err error) *proto.Error {
	var e *proto.Error
	if errors.As(err, &e) {
		c := *e
		return &c
	}
	return &proto.Error{Code: proto.CodeMalformed, Message: err.Error()}
}
