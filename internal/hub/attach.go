package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Errors of Attach.
var (
	// ErrStalled means the host cut an agent off because it stopped
	// reading: a write to it did not complete within
	// Options.WriteTimeout.
	ErrStalled = errors.New("hub: agent stopped reading")
	// ErrHubClosed means the hub has shut down and serves no new
	// connections.
	ErrHubClosed = errors.New("hub: closed")
)

// Attach serves conn as the agent of cell, whose identity the caller
// vouches for, until the connection ends, ctx ends, or the hub shuts
// down: the host's end of a microVM's virtio-serial port, which belongs
// to exactly one cell, so no peer credentials are asked for and no name in
// a message counts. The session is the one Serve runs (hello, welcome,
// reports, ticks and bids, every limit of Options), with two differences
// for a link that has no connections of its own and so no EOF when the
// agent behind it restarts:
//
//   - a hello in the middle of a session ends it and starts a new one on
//     the same link (the agent restarted), welcomed as the first;
//   - empty lines are skipped: an agent opening the port sends one to end
//     whatever line a predecessor left unfinished. They do not count as
//     messages, nor extend the idle deadline.
//
// Attach closes conn when it returns. It returns nil when the link closed
// (the VM ended) or ctx ended, ErrHubClosed if the hub had shut down, and
// otherwise the agent's fault that made the host end the session: the
// *proto.Error it was sent (no hello in time, an oversized line, too many
// rejected messages, silence past the idle timeout) or ErrStalled. Events
// are emitted as for Serve, with PID 0.
func (h *Hub) Attach(ctx context.Context, conn net.Conn, cell string) error {
	if cell == "" {
		conn.Close()
		return fmt.Errorf("hub: attach: no cell name")
	}
	if !h.track(conn) {
		conn.Close()
		return ErrHubClosed
	}
	defer h.untrack(conn)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	ev, fault := h.serveCell(ctx, conn, 0, cell, true)
	h.emit(ev)
	if ctx.Err() != nil {
		return nil
	}
	return fault
}
