package vm

import (
	"context"
	"fmt"
	"net"
	"time"

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
// guest has booted, and serves it until the VM or ctx ends. When the hub
// cuts the agent off for a fault of its own (no hello in time, a flood,
// garbage, an agent that stopped reading), ServeAgent kills the VM with
// an *AgentError naming the hub's reason, which Wait then returns; the
// error is also returned. It returns nil when the VM ended first or ctx
// ended.
func ServeAgent(ctx context.Context, c cell.Cell, a Attacher) error {
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
	err = a.Attach(ctx, conn, v.name)
	if err == nil || ctx.Err() != nil {
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
