// Package hub is the host side of the Maxwell agent protocol (see
// docs/PROTOCOL.md and package agent/proto). It accepts agents on a Unix
// stream socket, identifies each by the kernel credentials of the connecting
// process (SO_PEERCRED), maps its PID to a cell through a Resolver, and keeps
// the latest counters each cell reported. It also runs the agents' side of
// the CPU-time auction: OpenAuction sends each bidding agent a tick and
// CloseAuction collects their bids (see auction.go); what the auction does
// with them is the engine's business, not the hub's.
//
// A name sent by an agent is never trusted: the cell is what the Resolver
// says the peer's PID belongs to, looked up when the connection is
// accepted.
//
// Floods do not crowd cells out. A peer is placed at accept, before it
// takes one of the MaxConns slots: a process outside every cell never
// holds a slot (it is refused at once, or, the first connection of each
// process, waits outside the slots for its cell to be registered; see
// Options.ResolveWait); one cell holds at most MaxConnsPerCell
// connections; and the events a flood causes are summed up rather than
// delivered one by one (Options.EventBurst). A cell's newest connection
// wins: its hello supersedes the cell's older connection, which is told
// so (proto.CodeSuperseded) and closed.
package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/clock"
)

// Resolver maps a process to the cell it runs in. The cell manager
// implements it. CellForPID must be safe for concurrent use and fast: the
// hub calls it on the goroutine that accepts connections, once for every
// connection, and again every 20 ms for a connection waiting for its cell
// (see Options.ResolveWait).
type Resolver interface {
	CellForPID(pid int) (name string, ok bool)
}

// ErrServed is returned by a second call to Serve.
var ErrServed = errors.New("hub: Serve already called")

// Default values of Options fields left zero.
const (
	DefaultMaxConns         = 64
	DefaultMaxConnsPerCell  = 4
	DefaultMaxPending       = 8
	DefaultResolveWait      = time.Second
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultIdleTimeout      = 30 * time.Second
	DefaultWriteTimeout     = 5 * time.Second
	DefaultMaxErrors        = 16
	DefaultEventBurst       = 5
	DefaultMaxEvents        = 100
)

// Options tunes a Hub. The zero value is usable.
type Options struct {
	// Clock times the windows of the event limit (see EventBurst).
	// Default clock.System(). Socket deadlines and ResolveWait always use
	// the real clock, as the kernel does.
	Clock clock.Clock

	// Now stamps reports and events. Default Clock.Now.
	Now func() time.Time

	// SocketMode is the permission Listen gives the socket file; 0 means
	// SocketMode. A host whose cells run as many users needs 0666: the
	// peer's cell, checked at accept, is the boundary, not the file.
	SocketMode fs.FileMode

	// OnEvent, if set, receives connection, disconnection and error events.
	// It is called from many goroutines at once and must not block.
	OnEvent func(Event)

	// EventBurst bounds the events of one kind and code about one peer (a
	// cell, or a process outside every cell) that reach OnEvent as they
	// happen in each EventWindow, and MaxEvents the events of all peers.
	// The hub holds back the rest and, when the window ends, delivers one
	// summary per peer, kind and code (Event.Count says how many it
	// stands for; at most 64 peers are named, the others are summed up
	// per kind and code). Defaults DefaultEventBurst, DefaultMaxEvents.
	EventBurst, MaxEvents int

	// MaxConns bounds the connections of cells served at once; more are
	// refused with proto.CodeBusy. A connection takes a slot once its
	// peer is placed in a cell, so processes outside every cell never
	// hold one. Default DefaultMaxConns.
	MaxConns int

	// MaxConnsPerCell bounds the connections one cell holds at once,
	// those still in their handshake included; more are refused with
	// proto.CodeBusy. A reconnect holds two for the moment it takes the
	// new connection to supersede the old. Default
	// DefaultMaxConnsPerCell.
	MaxConnsPerCell int

	// ResolveWait bounds how long a connection whose process is in no
	// known cell waits for its cell to be registered: a cell's first
	// process may connect before the call that started the cell has
	// returned. Such a connection waits outside the MaxConns slots, one
	// per process and at most MaxPending in all; a process's other
	// connections, and every connection beyond MaxPending, are refused
	// with proto.CodeNotACell at once. Defaults DefaultResolveWait and
	// DefaultMaxPending.
	ResolveWait time.Duration
	MaxPending  int

	// HandshakeTimeout bounds the wait for an agent's hello.
	// Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// IdleTimeout bounds the wait for each message after the hello: an agent
	// silent for longer is sent proto.CodeTimeout and disconnected.
	// Default DefaultIdleTimeout.
	IdleTimeout time.Duration

	// WriteTimeout bounds each write to an agent. Default DefaultWriteTimeout.
	WriteTimeout time.Duration

	// Auctions tells that this host runs the CPU-time auction (see
	// OpenAuction): agents whose hello asks for ticks are welcomed with
	// "bidding": true and get them. Without it they are told the host
	// does not bid, and get none.
	Auctions bool

	// MaxErrors bounds rejected messages per connection: the MaxErrors-th
	// is answered with proto.CodeTooManyErrors and the connection closed.
	// Bids refused with proto.CodeOutOfTurn do not count. Default
	// DefaultMaxErrors.
	MaxErrors int
}

// Sample is the latest state of one cell.
type Sample struct {
	Counters  map[string]uint64 // nil until the first accepted report
	At        time.Time         // when the last report was accepted (Options.Now)
	Seq       uint64            // seq of the last accepted report
	Connected bool              // whether an agent of the cell is connected now
	// Useful is the useful-work counter the cell's agent declared in its
	// hello, nil if it declared none.
	Useful *proto.Useful

	// TicksDropped counts tick messages replaced by a newer one before they
	// could be sent, because the agent read too slowly.
	TicksDropped uint64
}

type cellState struct {
	Sample
	owner *holder // the connected agent's link; nil when none
}

// Hub serves agents on one listener. Create it with New or Listen and run
// it with Serve.
type Hub struct {
	ln   net.Listener
	res  Resolver
	opts Options
	path string // socket file to remove when Serve returns; "" if none

	slots  chan struct{} // one per connection of a cell served, up to MaxConns
	events *limiter      // nil without OnEvent

	mu      sync.Mutex
	cells   map[string]*cellState
	conns   map[net.Conn]struct{}
	perCell map[string]int     // connections per cell, handshakes included
	pending map[int]struct{}   // processes with a connection waiting for their cell
	bidders map[string]*outbox // connected agents that asked for ticks, by cell
	auction auction
	closed  bool // no new connections are tracked
	served  bool
}

// New returns a Hub serving agents that connect to ln, which should be a
// Unix stream listener: connections without peer credentials are refused.
// Serve closes ln when it returns.
func New(ln net.Listener, r Resolver, opts Options) *Hub {
	if opts.Clock == nil {
		opts.Clock = clock.System()
	}
	if opts.Now == nil {
		opts.Now = opts.Clock.Now
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.MaxConns, DefaultMaxConns)
	def(&opts.MaxConnsPerCell, DefaultMaxConnsPerCell)
	def(&opts.MaxPending, DefaultMaxPending)
	def(&opts.EventBurst, DefaultEventBurst)
	def(&opts.MaxEvents, DefaultMaxEvents)
	if opts.ResolveWait <= 0 {
		opts.ResolveWait = DefaultResolveWait
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	def(&opts.MaxErrors, DefaultMaxErrors)
	h := &Hub{
		ln:      ln,
		res:     r,
		opts:    opts,
		slots:   make(chan struct{}, opts.MaxConns),
		cells:   make(map[string]*cellState),
		conns:   make(map[net.Conn]struct{}),
		perCell: make(map[string]int),
		pending: make(map[int]struct{}),
		bidders: make(map[string]*outbox),
	}
	if opts.OnEvent != nil {
		h.events = newLimiter(opts.OnEvent, opts.Clock, opts.EventBurst, opts.MaxEvents)
	}
	return h
}

// Addr returns the address agents connect to.
func (h *Hub) Addr() net.Addr {
	if h.path != "" {
		return &net.UnixAddr{Name: h.path, Net: "unix"}
	}
	return h.ln.Addr()
}

// Serve accepts and serves agents until ctx is done or the listener fails.
// On return the listener and every connection are closed, every goroutine
// Serve started has exited, and the socket file Listen created is removed.
// It returns nil after ctx is done, and the accept error otherwise.
func (h *Hub) Serve(ctx context.Context) error {
	h.mu.Lock()
	if h.served {
		h.mu.Unlock()
		return ErrServed
	}
	h.served = true
	h.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, h.shutdown)
	defer stop()

	var wg sync.WaitGroup
	var err error
	var backoff time.Duration
	for {
		conn, aerr := h.ln.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			if temporary(aerr) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				if sleep(ctx, backoff) != nil {
					break
				}
				continue
			}
			err = fmt.Errorf("hub: accept: %w", aerr)
			break
		}
		backoff = 0
		if !h.admit(ctx, conn, &wg) {
			break
		}
	}
	h.shutdown()
	wg.Wait()
	return err
}

// Close closes the listener and every connection and removes the socket
// file Listen created, whether or not Serve ran; a Serve in progress
// returns. It is idempotent.
func (h *Hub) Close() error {
	h.shutdown()
	return nil
}

// shutdown closes the listener and every tracked connection. It is
// idempotent.
func (h *Hub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	if h.events != nil {
		h.events.close()
	}
	h.ln.Close()
	if h.path != "" {
		removeSocket(h.path)
	}
	for c := range h.conns {
		c.Close()
	}
}

func (h *Hub) track(c net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *Hub) untrack(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
}

// Counters returns a copy of the latest counters of cell, when they were
// reported, and whether the cell has reported at all.
func (h *Hub) Counters(cell string) (map[string]uint64, time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs, ok := h.cells[cell]
	if !ok || cs.Counters == nil {
		return nil, time.Time{}, false
	}
	return maps.Clone(cs.Counters), cs.At, true
}

// Snapshot returns the state of every cell that has connected since it was
// last forgotten, keyed by cell name. The maps are copies.
func (h *Hub) Snapshot() map[string]Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]Sample, len(h.cells))
	for name, cs := range h.cells {
		s := cs.Sample
		s.Counters = maps.Clone(s.Counters)
		if s.Useful != nil {
			u := *s.Useful
			s.Useful = &u
		}
		out[name] = s
	}
	return out
}

// Forget drops what the hub knows of cell, once the cell is gone. A cell
// with a live connection is kept.
func (h *Hub) Forget(cell string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cs, ok := h.cells[cell]; ok && !cs.Connected {
		delete(h.cells, cell)
	}
}

// claim makes hd the link of cell's connected agent. A link the cell
// already had is superseded (see holder.supersede), unless it is an
// attached one and hd is not: then claim reports false and changes
// nothing.
func (h *Hub) claim(cell string, hd *holder) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs, ok := h.cells[cell]
	if !ok {
		cs = &cellState{}
		h.cells[cell] = cs
	}
	if old := cs.owner; old != nil {
		if old.attached && !hd.attached {
			return false
		}
		old.supersede(hd.pid)
	}
	cs.owner = hd
	cs.Connected = true
	return true
}

// release ends hd's claim on cell, if a newer link has not taken it over.
func (h *Hub) release(cell string, hd *holder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cs, ok := h.cells[cell]; ok && cs.owner == hd {
		cs.owner = nil
		cs.Connected = false
	}
}

// ownsLocked reports whether hd is cell's connected agent's link; h.mu is held.
func (h *Hub) ownsLocked(cell string, hd *holder) bool {
	cs, ok := h.cells[cell]
	return ok && cs.owner == hd
}

// setBidder registers the tick outbox of the connection of cell that hd
// holds, if it still holds it.
func (h *Hub) setBidder(cell string, hd *holder, ob *outbox) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ownsLocked(cell, hd) {
		h.bidders[cell] = ob
	}
}

// dropBidder removes ob, if it is still cell's tick outbox.
func (h *Hub) dropBidder(cell string, ob *outbox) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bidders[cell] == ob {
		delete(h.bidders, cell)
	}
}

// declare records the useful-work counter a cell's agent declared.
func (h *Hub) declare(cell string, hd *holder, u *proto.Useful) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ownsLocked(cell, hd) {
		if u != nil {
			c := *u
			u = &c
		}
		h.cells[cell].Useful = u
	}
}

// publish records an accepted report of the session on hd, and reports
// false, recording nothing, if a newer link of the cell has superseded it.
func (h *Hub) publish(cell string, hd *holder, counters map[string]uint64, seq uint64, at time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ownsLocked(cell, hd) {
		return false
	}
	cs := h.cells[cell]
	cs.Counters = maps.Clone(counters)
	cs.Seq = seq
	cs.At = at
	return true
}

// emit stamps e and hands it to the event limit, which passes it on to
// OnEvent now or in a summary.
func (h *Hub) emit(e Event) {
	if h.events == nil {
		return
	}
	e.At = h.opts.Now()
	if e.Code != "" {
		e.Detail = string(e.Code) + ": " + e.Detail
	}
	if e.Count == 0 {
		e.Count = 1
	}
	h.events.emit(e)
}

// peerPID returns the PID of the process at the other end of a Unix
// socket, as the kernel recorded it at connect time, in the host's PID
// namespace.
func peerPID(conn net.Conn) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("%T has no file descriptor", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return int(cred.Pid), nil
}

func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sortedKeys returns m's keys in order, for deterministic messages.
func sortedKeys(m map[string]uint64) []string {
	return slices.Sorted(maps.Keys(m))
}
