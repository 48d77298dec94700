package api

import (
	"context"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Peer is the process at the other end of a control connection, as the
// kernel reported it (SO_PEERCRED) when that process connected. It cannot
// be forged by the caller: it is what the kernel knew of the connecting
// process, not anything it sent.
type Peer struct {
	PID int
	UID int
	GID int
	// Cell is the cell the process was in when its connection was
	// accepted (Options.CellOf), "" for none or when not asked. Asking at
	// accept, while the process still exists, closes the gap in which it
	// could exit and leave its PID to a process outside every cell.
	Cell string
}

// String names the peer for logs and errors.
func (p Peer) String() string { return fmt.Sprintf("pid %d (uid %d, gid %d)", p.PID, p.UID, p.GID) }

type peerKey struct{}

// WithPeer returns ctx carrying p, as the Server gives every request's
// context; for tests and in-process callers that act for a given peer.
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerOf returns the peer a request's context carries: ok is false when
// the request came over a connection without kernel credentials (TCP, an
// in-memory test listener), which an authorizer must refuse.
func PeerOf(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// connPeer reads the kernel's credentials of a Unix socket connection's
// peer.
func connPeer(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("api: %T carries no peer credentials", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if serr != nil {
		return Peer{}, fmt.Errorf("api: SO_PEERCRED: %w", serr)
	}
	return Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}
