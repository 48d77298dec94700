package hub

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
)

// acceptWriteTimeout bounds the write of a refusal on the accepting
// goroutine. The socket is fresh, so its buffer has room: the bound is
// only there so that nothing can hold up accepts.
const acceptWriteTimeout = 100 * time.Millisecond

// resolvePoll is how often a connection waiting for its cell asks the
// Resolver again.
const resolvePoll = 20 * time.Millisecond

// admit decides, on the accepting goroutine, what becomes of a connection
// just accepted, before it takes a slot: a peer of a known cell is served
// if the host and its cell have room; a process in no known cell is
// refused at once, unless it is the first of its process to wait for its
// cell to register (see Options.ResolveWait). It reports false, having
// closed conn, if the hub is shutting down.
func (h *Hub) admit(ctx context.Context, conn net.Conn, wg *sync.WaitGroup) bool {
	pid, err := peerPID(conn)
	if err != nil {
		conn.Close()
		h.emit(Event{Kind: EventRefused, Detail: "peer credentials: " + err.Error()})
		return true
	}
	if cell, ok := h.lookup(pid); ok {
		rel, perr := h.enter(cell)
		if perr != nil {
			h.refuseNow(conn, pid, cell, perr)
			return true
		}
		if !h.track(conn) {
			conn.Close()
			rel()
			return false
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.serveConn(ctx, conn, pid, cell, rel)
		}()
		return true
	}
	if why := h.holdPending(pid); why != "" {
		h.refuseNow(conn, pid, "", notACell(pid, why))
		return true
	}
	if !h.track(conn) {
		conn.Close()
		h.dropPending(pid)
		return false
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		cell, ok := h.waitCell(ctx, pid)
		h.dropPending(pid)
		var perr *proto.Error
		var rel func()
		if !ok {
			perr = notACell(pid, "")
		} else {
			rel, perr = h.enter(cell)
		}
		if perr != nil {
			ev := h.refuse(conn, pid, cell, perr, h.opts.WriteTimeout)
			conn.Close()
			h.untrack(conn)
			h.emit(ev)
			return
		}
		h.serveConn(ctx, conn, pid, cell, rel)
	}()
	return true
}

// serveConn serves a tracked connection of cell that holds a slot, closes
// it, frees the slot with rel, and emits the event that ended it.
func (h *Hub) serveConn(ctx context.Context, conn net.Conn, pid int, cell string, rel func()) {
	ev, _ := h.serveCell(ctx, conn, pid, cell, false)
	conn.Close()
	h.untrack(conn)
	rel()
	h.emit(ev)
}

func notACell(pid int, why string) *proto.Error {
	msg := fmt.Sprintf("pid %d belongs to no cell", pid)
	if why != "" {
		msg += " (" + why + ")"
	}
	return &proto.Error{Code: proto.CodeNotACell, Message: msg}
}

// lookup asks the Resolver for pid's cell, once.
func (h *Hub) lookup(pid int) (string, bool) {
	if pid <= 0 {
		return "", false
	}
	cell, ok := h.res.CellForPID(pid)
	return cell, ok && cell != ""
}

// waitCell asks the Resolver again every resolvePoll until it knows pid's
// cell, for at most Options.ResolveWait.
func (h *Hub) waitCell(ctx context.Context, pid int) (string, bool) {
	deadline := time.Now().Add(h.opts.ResolveWait)
	for {
		t := time.NewTimer(min(resolvePoll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return "", false
		case <-t.C:
		}
		if cell, ok := h.lookup(pid); ok {
			return cell, true
		}
		if !time.Now().Before(deadline) {
			return "", false
		}
	}
}

// holdPending lets pid's connection wait for its cell, or says why it may
// not: pid has one waiting already, or MaxPending connections are.
func (h *Hub) holdPending(pid int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.pending[pid]; ok || pid <= 0 {
		return "another connection of this process waits for its cell"
	}
	if len(h.pending) >= h.opts.MaxPending {
		return fmt.Sprintf("%d connections wait for their cells already", len(h.pending))
	}
	h.pending[pid] = struct{}{}
	return ""
}

func (h *Hub) dropPending(pid int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.pending, pid)
}

// enter takes a slot for a connection of cell, within the host's and the
// cell's limits, and returns the function that frees it, or the busy error
// to refuse the connection with.
func (h *Hub) enter(cell string) (func(), *proto.Error) {
	select {
	case h.slots <- struct{}{}:
	default:
		return nil, &proto.Error{Code: proto.CodeBusy,
			Message: fmt.Sprintf("host serves at most %d agents", h.opts.MaxConns)}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := h.perCell[cell]; n >= h.opts.MaxConnsPerCell {
		<-h.slots
		return nil, &proto.Error{Code: proto.CodeBusy,
			Message: fmt.Sprintf("cell %s has %d connections open, the most one cell may", cell, n)}
	}
	h.perCell[cell]++
	return func() {
		h.mu.Lock()
		if h.perCell[cell]--; h.perCell[cell] <= 0 {
			delete(h.perCell, cell)
		}
		h.mu.Unlock()
		<-h.slots
	}, nil
}

// refuseNow refuses conn on the accepting goroutine: it sends e, closes
// conn and emits the event.
func (h *Hub) refuseNow(conn net.Conn, pid int, cell string, e *proto.Error) {
	ev := h.refuse(conn, pid, cell, e, acceptWriteTimeout)
	conn.Close()
	h.emit(ev)
}

// holder is one link's claim on its cell: the link of the cell's
// connected agent, until the hello of a newer link of the same cell
// supersedes it.
type holder struct {
	conn     net.Conn
	pid      int
	attached bool // a link of Attach: only another such link supersedes it

	by         atomic.Int64 // pid of the link that superseded this one
	superseded atomic.Bool
}

// supersede tells the link's session that a newer link, of process pid,
// took its cell over, and interrupts the read it may be blocked in; the
// session then ends (see session.over).
func (hd *holder) supersede(pid int) {
	hd.by.Store(int64(pid))
	hd.superseded.Store(true)
	hd.conn.SetReadDeadline(time.Unix(1, 0))
}
