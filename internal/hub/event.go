package hub

import (
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
)

// EventKind says what happened to a connection.
type EventKind int

// The kinds of Event.
const (
	// EventConnected: an agent completed the handshake and was welcomed.
	EventConnected EventKind = iota + 1
	// EventDisconnected: a welcomed agent's connection ended. Code is set
	// when the host ended it for a protocol reason, or with
	// proto.CodeSuperseded when a newer connection of the same cell said
	// hello and took over.
	EventDisconnected
	// EventRefused: a connection was closed before the handshake completed
	// (no cell, busy, the cell at its connection limit, bad or missing
	// hello).
	EventRefused
	// EventProtocolError: a welcomed agent sent a message the host
	// rejected. Code says why.
	EventProtocolError
)

// String returns the kind's lower-case name.
func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	case EventRefused:
		return "refused"
	case EventProtocolError:
		return "protocol_error"
	}
	return "unknown"
}

// Event is something the recorder may want to log.
type Event struct {
	Kind   EventKind
	Cell   string     // "" when the peer has no cell
	PID    int        // peer PID from SO_PEERCRED; 0 when unknown
	Code   proto.Code // the error sent, if any
	Detail string     // human-readable; starts with "Code: " when Code is set
	At     time.Time  // Options.Now when the event happened

	// Count is how many events this one stands for: 1, or, for a summary
	// of events the hub held back to keep a flood from flooding its
	// callback (see Options.EventBurst), how many were held back in the
	// last EventWindow. A summary has the Kind, Code, Cell and PID of the
	// events it sums up, the At of the last of them, and a Detail that
	// says how many there were and quotes the last.
	Count int
}
