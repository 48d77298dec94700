package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/cell"
)

// Attacher serves one agent link whose cell is known (*hub.Hub is one).
type Attacher interface {
	Attach(ctx context.Context, conn net.Conn, cell string) error
}

// faultGrace is how long ServeAgent waits, after the hub ended a session
// for the agent's fault, for the VM to end by itself: a write that failed
// because QEMU just died is QEMU's end, not the agent's.
const faultGrace = time.Second

// ServeAgent hands the agent link of microVM cell c to the hub once the
// guest has booted and its agent has written its first bytes, and serves
// it until the VM or ctx ends. A guest whose agent has written nothing
// after Options.HelloTimeout of running (time the VM spends paused, by
// Pause or a QMP stop, does not count: an economy may hold a new cell
// frozen until it wins a slot) is cut off with a proto.CodeTimeout
// error; from its first bytes on, the hub's own deadlines apply. When
// the hub cuts the agent off for a fault of its own (no hello in time, a
// flood, garbage, an agent that stopped reading), ServeAgent kills the
// VM with an *AgentError naming the hub's reason, which Wait then
// returns; the error is also returned. It returns nil when the VM ended
// first or ctx ended.
func ServeAgent(ctx context.Context, c cell.Cell, a Attacher) error {
	return serveAgent(ctx, c, a, true)
}

// ServeAgentOnceSpoken is ServeAgent for a guest whose command need not
// speak the agent protocol (a program an economy bids for by a standing
// policy): the link is handed to the hub whenever the guest first
// writes to it, however long that takes, and silence is no fault. From
// the first bytes on, as for ServeAgent, the hub's deadlines and limits
// apply and a fault ends the VM.
func ServeAgentOnceSpoken(ctx context.Context, c cell.Cell, a Attacher) error {
	return serveAgent(ctx, c, a, false)
}

func serveAgent(ctx context.Context, c cell.Cell, a Attacher, deadline bool) error {
	v, ok := c.(*Machine)
	if !ok {
		return fmt.Errorf("%w: cell %q is not a QEMU microVM", ErrConfig, c.Name())
	}
	if err := v.WaitBooted(ctx); err != nil {
		if ctx.Err() != nil || isClosed(v.done) {
			return nil
		}
		return err
	}
	conn, err := v.AgentConn()
	if err != nil {
		return err
	}
	budget := v.m.opts.HelloTimeout
	if !deadline {
		budget = 0
	}
	first, err := v.awaitAgent(ctx, conn, budget)
	if err == nil {
		err = a.Attach(ctx, &prefixedConn{Conn: conn, pre: first}, v.name)
	}
	if err == nil || ctx.Err() != nil || errors.Is(err, cell.ErrExited) {
		return nil
	}
	t := time.NewTimer(faultGrace)
	defer t.Stop()
	select {
	case <-v.done:
		return nil
	case <-v.inner.Done():
		return nil
	case <-t.C:
	}
	ae := &AgentError{Err: err}
	v.fail(ae)
	return ae
}

// agentPoll is how often awaitAgent checks whether the VM runs.
const agentPoll = 20 * time.Millisecond

// awaitAgent waits for the guest's first bytes on conn, for at most
// budget of the VM's running time (0: for as long as it takes). It closes conn when it returns an
// error: cell.ErrExited when the VM ended, ctx's error, or a
// *proto.Error with CodeTimeout.
func (v *Machine) awaitAgent(ctx context.Context, conn net.Conn, budget time.Duration) ([]byte, error) {
	type read struct {
		b   []byte
		err error
	}
	got := make(chan read, 1)
	go func() {
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		got <- read{buf[:n], err}
	}()
	giveUp := func(err error) ([]byte, error) {
		conn.Close()
		<-got
		return nil, err
	}
	t := time.NewTicker(agentPoll)
	defer t.Stop()
	last := time.Now()
	var ran time.Duration
	for {
		select {
		case r := <-got:
			if len(r.b) == 0 {
				conn.Close()
				return nil, fmt.Errorf("microVM cell %q: agent link: %w", v.name, errors.Join(cell.ErrExited, r.err))
			}
			return r.b, nil
		case <-ctx.Done():
			return giveUp(ctx.Err())
		case <-v.done:
			return giveUp(cell.ErrExited)
		case now := <-t.C:
			if !v.isPaused() {
				ran += now.Sub(last)
			}
			last = now
			if budget > 0 && ran >= budget {
				return giveUp(&proto.Error{Code: proto.CodeTimeout, Message: fmt.Sprintf("the guest's agent wrote nothing in %v of running", budget)})
			}
		}
	}
}

// prefixedConn is a connection whose first bytes were already read.
type prefixedConn struct {
	net.Conn
	pre []byte
}

func (c *prefixedConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
