package economy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/firecracker"
	"github.com/maxwellhq/maxwell/internal/cell/vm"
	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// vmCells is the economy's microVM machinery, made on first use: one
// vm.Manager per VMM, whose VMMs run in cells of the economy's own cell
// manager, and the goroutines that serve the guests' agent links on the
// economy's hub. Its zero value is ready; close ends it.
type vmCells struct {
	mu     sync.Mutex
	mgrs   map[vm.VMM]*vm.Manager
	ctx    context.Context // the agent links', until close
	cancel context.CancelFunc
	links  sync.WaitGroup
	closed bool
}

// vmCloseTimeout bounds close's wait for the agent links to end.
const vmCloseTimeout = 10 * time.Second

// vmStarter starts the microVM cells of one spawn request: through the
// manager of its VMM, with its guest, and returns a cell only once its
// guest has booted and its agent link is served.
type vmStarter struct {
	e     *Economy
	m     *vm.Manager
	guest vm.Guest
	// budgeted: the economy bids for the program (a standing bid), which
	// need not speak the agent protocol.
	budgeted bool
}

// vmSpawn returns what Spawn starts a microVM cell with: the starter of
// req's VMM and guest, and the guest command's environment (the guest's
// own PATH and HOME, then req.Env; nothing of the host's).
func (e *Economy) vmSpawn(ctx context.Context, req api.SpawnRequest) (*vmStarter, []string, error) {
	r := *req.VM
	if r.VMM == "" {
		r.VMM = vm.VMMQEMU
	}
	g := vm.Guest{Kernel: r.Kernel, Initrd: r.Initrd, RootFS: r.RootFS, MemMiB: r.MemoryMiB, VCPUs: r.VCPUs}
	if r.VMM == vm.VMMQEMU && (g.Kernel == "" || g.Initrd == "") {
		img, err := vmimage.Load(vmimage.DefaultDir())
		if err != nil {
			return nil, nil, api.Classify(api.ErrBadRequest, fmt.Errorf("no kernel or initramfs given, and %w", err))
		}
		if g.Kernel == "" {
			g.Kernel = img.Kernel
		}
		if g.Initrd == "" {
			g.Initrd = img.Initrd
		}
	}
	m, err := e.vmManager(ctx, r.VMM, g)
	if err != nil {
		if errors.Is(err, vm.ErrNoVMM) || errors.Is(err, vm.ErrNoKVM) {
			return nil, nil, api.Classify(api.ErrUnsupported, err)
		}
		return nil, nil, api.Classify(api.ErrBadRequest, err)
	}
	return &vmStarter{e: e, m: m, guest: g, budgeted: req.MaxBid > 0}, append(vm.GuestEnv(), req.Env...), nil
}

// vmManager returns the economy's manager of VMM kind, creating it on
// first use. A QEMU manager probes KVM once, booting guest g under it
// (bounded by the probe's own deadline, not by the request that
// happened to come first), and runs every later guest under what it
// found.
func (e *Economy) vmManager(ctx context.Context, kind vm.VMM, g vm.Guest) (*vm.Manager, error) {
	v := &e.vms
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil, fmt.Errorf("microVM cells: %w", cell.ErrClosed)
	}
	if m, ok := v.mgrs[kind]; ok {
		return m, nil
	}
	o := vm.DefaultOptions()
	o.VMM, o.Logger, o.DevRoot, o.ProcRoot = kind, e.log, e.opts.Roots.Dev, e.opts.Roots.Proc
	o.StateDir = filepath.Join(e.stateDir, "vm")
	switch kind {
	case vm.VMMQEMU:
		o.Kernel, o.Initrd = g.Kernel, g.Initrd
	case vm.VMMFirecracker:
		fo := firecracker.DefaultOptions()
		fo.Kernel, fo.RootFS, fo.Logger = g.Kernel, g.RootFS, e.log
		fo.StateDir = filepath.Join(e.stateDir, "firecracker")
		o.Firecracker = fo
	}
	m, err := vm.NewManager(context.WithoutCancel(ctx), e.mgr, o)
	if err != nil {
		return nil, err
	}
	if kind == vm.VMMQEMU {
		a := m.Accel()
		e.log.Info("microVM cells", "vmm", kind, "accel", a.Accel, "reason", a.Reason)
	}
	if v.mgrs == nil {
		v.mgrs = map[vm.VMM]*vm.Manager{}
	}
	v.mgrs[kind] = m
	return m, nil
}

// Start boots the microVM, hands its agent link to the economy's hub,
// and returns once the guest's init runs the command: a guest that does
// not boot (its deadline, a panic, a VMM that dies) is an error of the
// spawn, and leaves nothing behind. The boot itself is not charged: the
// engine counts a cell's CPU time from its admission.
func (s *vmStarter) Start(ctx context.Context, spec cell.Spec) (cell.Cell, error) {
	c, err := s.m.StartGuest(ctx, spec, s.guest)
	if err != nil {
		return nil, err
	}
	if err := s.e.vms.serve(s.e, c, s.budgeted); err != nil {
		c.Close()
		return nil, err
	}
	if b, ok := c.(interface{ WaitBooted(context.Context) error }); ok {
		if err := b.WaitBooted(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// serve connects the agent of microVM cell c to e's hub: a QEMU guest's
// virtio-serial link is served by vm.ServeAgent until the VM or the
// economy ends (an agent the hub cuts off ends its VM, with the hub's
// reason as the cell's cause; a guest that has written nothing after
// vm.Options.HelloTimeout of running is cut off too, unless budgeted: a
// program the economy bids for need not speak, and is served once it
// does); a Firecracker guest's vsock connections reach the hub's socket
// through a link beside the VM's vsock socket, and the hub knows them
// by the VMM's PID, as any process's.
func (v *vmCells) serve(e *Economy, c cell.Cell, budgeted bool) error {
	if p, ok := firecracker.VsockPath(c); ok {
		return firecracker.LinkVsock(e.opts.AgentSocket, p, firecracker.DefaultOptions().AgentPort)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return fmt.Errorf("microVM cells: %w", cell.ErrClosed)
	}
	if v.ctx == nil {
		v.ctx, v.cancel = context.WithCancel(context.Background())
	}
	ctx := v.ctx
	serve := vm.ServeAgent
	if budgeted {
		serve = vm.ServeAgentOnceSpoken
	}
	v.links.Go(func() {
		if err := serve(ctx, c, e.hub); err != nil {
			e.log.Warn("microVM agent cut off; its VM is ended", "cell", c.Name(), "err", err)
		}
	})
	return nil
}

// close ends the agent links and closes the managers (killing any VM
// still running; Economy.shutdown has closed the cells before). It is
// idempotent.
func (v *vmCells) close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	mgrs := v.mgrs
	if v.cancel != nil {
		v.cancel()
	}
	v.mu.Unlock()
	var errs []error
	for _, m := range mgrs {
		errs = append(errs, m.Close())
	}
	done := make(chan struct{})
	go func() { v.links.Wait(); close(done) }()
	t := time.NewTimer(vmCloseTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		errs = append(errs, fmt.Errorf("microVM cells: agent links still served after %v", vmCloseTimeout))
	}
	return errors.Join(errs...)
}
