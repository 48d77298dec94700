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
// says the peer's PID belongs to, looked up once, when the connection is
// accepted.
package hub

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/agent/proto"
)

// Resolver maps a process to the cell it runs in. The cell manager
// implements it. CellForPID must be safe for concurrent use and must not
// block for long.
type Resolver interface {
	CellForPID(pid int) (name string, ok bool)
}

// ErrServed is returned by a second call to Serve.
var ErrServed = errors.New("hub: Serve already called")

// Default values of Options fields left zero.
const (
	DefaultMaxConns         = 64
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultIdleTimeout      = 30 * time.Second
	DefaultWriteTimeout     = 5 * time.Second
	DefaultMaxErrors        = 16
)

// Options tunes a Hub. The zero value is usable.
type Options struct {
	// Now stamps reports and events. Default time.Now. Socket deadlines
	// always use the real clock, as the kernel does.
	Now func() time.Time

	// OnEvent, if set, receives connection, disconnection and error events.
	// It is called from many goroutines at once and must not block.
	OnEvent func(Event)

	// MaxConns bounds the connections served at once; more are refused with
	// proto.CodeBusy. Default DefaultMaxConns.
	MaxConns int

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
}

// Hub serves agents on one listener. Create it with New or Listen and run
// it with Serve.
type Hub struct {
	ln   net.Listener
	res  Resolver
	opts Options
	path string // socket file to remove when Serve returns; "" if none

	mu      sync.Mutex
	cells   map[string]*cellState
	conns   map[net.Conn]struct{}
	bidders map[string]*outbox // connected agents that asked for ticks, by cell
	auction auction
	closed  bool // no new connections are tracked
	served  bool
}

// New returns a Hub serving agents that connect to ln, which should be a
// Unix stream listener: connections without peer credentials are refused.
// Serve closes ln when it returns.
func New(ln net.Listener, r Resolver, opts Options) *Hub {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
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
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = DefaultMaxErrors
	}
	return &Hub{
		ln:      ln,
		res:     r,
		opts:    opts,
		cells:   make(map[string]*cellState),
		conns:   make(map[net.Conn]struct{}),
		bidders: make(map[string]*outbox),
	}
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
	sem := make(chan struct{}, h.opts.MaxConns)
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
		select {
		case sem <- struct{}{}:
		default:
			ev := h.refuse(conn, 0, "", &proto.Error{Code: proto.CodeBusy,
				Message: fmt.Sprintf("host serves at most %d agents", h.opts.MaxConns)})
			conn.Close()
			h.emit(ev)
			continue
		}
		if !h.track(conn) {
			conn.Close()
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := h.handle(ctx, conn)
			conn.Close()
			h.untrack(conn)
			<-sem
			h.emit(ev)
		}()
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

// claim marks cell as connected, or reports that it already is.
func (h *Hub) claim(cell string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs, ok := h.cells[cell]
	if !ok {
		cs = &cellState{}
		h.cells[cell] = cs
	}
	if cs.Connected {
		return false
	}
	cs.Connected = true
	return true
}

func (h *Hub) release(cell string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cs, ok := h.cells[cell]; ok {
		cs.Connected = false
	}
}

// setBidder registers (ob non-nil) or removes the tick outbox of cell's
// connection.
func (h *Hub) setBidder(cell string, ob *outbox) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ob == nil {
		delete(h.bidders, cell)
	} else {
		h.bidders[cell] = ob
	}
}

// declare records the useful-work counter a cell's agent declared.
func (h *Hub) declare(cell string, u *proto.Useful) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cs, ok := h.cells[cell]; ok {
		if u != nil {
			c := *u
			u = &c
		}
		cs.Useful = u
	}
}

// publish records an accepted report of cell's current session.
func (h *Hub) publish(cell string, counters map[string]uint64, seq uint64, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs, ok := h.cells[cell]
	if !ok { // forgotten: cannot happen while connected, but stay safe
		cs = &cellState{Sample: Sample{Connected: true}}
		h.cells[cell] = cs
	}
	cs.Counters = maps.Clone(counters)
	cs.Seq = seq
	cs.At = at
}

func (h *Hub) emit(e Event) {
	if h.opts.OnEvent == nil {
		return
	}
	e.At = h.opts.Now()
	if e.Code != "" {
		e.Detail = string(e.Code) + ": " + e.Detail
	}
	h.opts.OnEvent(e)
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
