package vm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/firecracker"
)

// VMM is a virtual machine monitor a Manager can run.
type VMM string

// The VMMs.
const (
	// VMMQEMU is QEMU's microvm machine, driven over QMP.
	VMMQEMU VMM = "qemu"
	// VMMFirecracker is Firecracker, through package cell/firecracker.
	VMMFirecracker VMM = "firecracker"
)

// Accel is how QEMU runs guest code.
type Accel string

// The accelerators.
const (
	// AccelAuto is KVM where a probe guest boots under it, else TCG.
	AccelAuto Accel = "auto"
	// AccelKVM is hardware virtualization (/dev/kvm).
	AccelKVM Accel = "kvm"
	// AccelTCG is QEMU's emulator: works everywhere, many times slower.
	AccelTCG Accel = "tcg"
)

// AgentPort is the name of the virtio-serial port of the guest's agent:
// /dev/virtio-ports/maxwell.agent in the guest.
const AgentPort = "maxwell.agent"

// GuestAgentDevice is the agent's port as the guest's init names it.
const GuestAgentDevice = "/dev/virtio-ports/" + AgentPort

// BackendQEMU prefixes what Cell.Backend returns for a QEMU microVM cell:
// "qemu-microvm/kvm" or "qemu-microvm/tcg".
const BackendQEMU = "qemu-microvm"

// closeTimeout bounds Close and the cleanup after a failure.
const closeTimeout = 10 * time.Second

// CellStarter starts the cell the VMM process runs in (*cell.Manager is
// one).
type CellStarter interface {
	Start(ctx context.Context, spec cell.Spec) (cell.Cell, error)
	Layout() cell.Layout
}

// Options configure a Manager.
type Options struct {
	// VMM is the monitor to run; "" means VMMQEMU.
	VMM VMM
	// QEMU is the QEMU binary: a name looked up in PATH, or a path.
	// Default "qemu-system-x86_64".
	QEMU string
	// Kernel and Initrd are the guest's kernel and initramfs (see
	// package vmimage). Both are needed for QEMU.
	Kernel string
	Initrd string
	// RootFS, if set, is a root file system image (raw, e.g. ext4 made
	// with mkfs.ext4 -d) attached read-only as virtio-blk /dev/vda: the
	// guest command runs chrooted in it (see vmimage.Command.RootDevice)
	// instead of in the initramfs.
	RootFS string
	// KernelArgs are the guest kernel's base arguments; the command's
	// words are appended. Default DefaultKernelArgs.
	KernelArgs string
	// MemMiB and VCPUs size each VM (defaults 256 and 1).
	MemMiB int
	VCPUs  int
	// Accel is the accelerator; "" means AccelAuto.
	Accel Accel
	// NoBalloon leaves out the virtio-balloon with free page reporting
	// (then a guest's freed memory is never taxed).
	NoBalloon bool
	// StateDir holds each VM's sockets until the Manager has connected
	// to them. It must be private to this Manager: NewManager removes
	// whatever it finds there. Default /run/maxwell/vm.
	StateDir string
	// BootTimeout bounds a guest's boot, from the VMM's start until init
	// says it runs the command. Default 60 s (TCG on a loaded host).
	BootTimeout time.Duration
	// ProbeTimeout bounds the KVM probe guest. Default 20 s.
	ProbeTimeout time.Duration
	// StartTimeout bounds the VMM's sockets coming up. Default 10 s.
	StartTimeout time.Duration
	// HelloTimeout bounds how long a booted guest may run before its
	// agent first writes to its port (ServeAgent); time paused does not
	// count. Default 5 s.
	HelloTimeout time.Duration
	// DevRoot is where /dev is ("/dev" by default): /dev/kvm and
	// /dev/vhost-vsock are looked for there.
	DevRoot string
	// ProcRoot is where procfs is ("/proc" by default): the host's TSC
	// frequency for TCG guests is read from its cpuinfo.
	ProcRoot string
	// Firecracker configures the Firecracker VMM (VMM ==
	// VMMFirecracker).
	Firecracker firecracker.Options
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
}

// DefaultKernelArgs are the guest kernel's base arguments: the console on
// the microvm's serial port (the VMM's stdout), quiet, a panic reboots
// at once (which ends QEMU, run with -no-reboot), by a triple fault
// (reboot=t: microvm has no ACPI and no keyboard controller; with the
// kernel's default methods a panicked guest under TCG once stayed up for
// over two minutes in CI), no PCI bus to probe.
const DefaultKernelArgs = "console=ttyS0 quiet panic=-1 reboot=t pci=off"

// DefaultOptions returns the defaults; Kernel and Initrd must still be
// set.
func DefaultOptions() Options {
	return Options{
		VMM:          VMMQEMU,
		QEMU:         "qemu-system-x86_64",
		KernelArgs:   DefaultKernelArgs,
		MemMiB:       256,
		VCPUs:        1,
		Accel:        AccelAuto,
		StateDir:     "/run/maxwell/vm",
		BootTimeout:  60 * time.Second,
		ProbeTimeout: 20 * time.Second,
		StartTimeout: 10 * time.Second,
		HelloTimeout: 5 * time.Second,
		DevRoot:      "/dev",
		ProcRoot:     "/proc",
	}
}

// AccelInfo says which accelerator a Manager's VMs run under, and why.
type AccelInfo struct {
	Accel  Accel  `json:"accel"`
	Reason string `json:"reason"`
}

// Emulated reports whether guests are emulated (TCG), and so slower.
func (a AccelInfo) Emulated() bool { return a.Accel == AccelTCG }

// Manager starts microVM cells. It is safe for concurrent use, as are its
// cells.
type Manager struct {
	cells CellStarter
	opts  Options
	log   *slog.Logger
	qemu  string // absolute path
	accel AccelInfo
	fc    *firecracker.Manager

	mu       sync.Mutex
	machines map[string]*Machine            // nil value: reserved while starting
	fcs      map[Guest]*firecracker.Manager // Firecracker managers of other guests
	closed   bool
}

// NewManager checks opts and returns a Manager whose VMs run in cells of
// cells. For QEMU with Accel auto it probes KVM (bounded by
// ProbeTimeout and ctx), which may take a few seconds where KVM hangs.
func NewManager(ctx context.Context, cells CellStarter, opts Options) (*Manager, error) {
	def := DefaultOptions()
	if opts.VMM == "" {
		opts.VMM = def.VMM
	}
	if opts.QEMU == "" {
		opts.QEMU = def.QEMU
	}
	if opts.KernelArgs == "" {
		opts.KernelArgs = def.KernelArgs
	}
	if opts.MemMiB <= 0 {
		opts.MemMiB = def.MemMiB
	}
	if opts.VCPUs <= 0 {
		opts.VCPUs = def.VCPUs
	}
	if opts.Accel == "" {
		opts.Accel = def.Accel
	}
	if opts.StateDir == "" {
		opts.StateDir = def.StateDir
	}
	if opts.BootTimeout <= 0 {
		opts.BootTimeout = def.BootTimeout
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = def.ProbeTimeout
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = def.StartTimeout
	}
	if opts.HelloTimeout <= 0 {
		opts.HelloTimeout = def.HelloTimeout
	}
	if opts.DevRoot == "" {
		opts.DevRoot = def.DevRoot
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = def.ProcRoot
	}
	m := &Manager{cells: cells, opts: opts, log: opts.Logger, machines: make(map[string]*Machine)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	switch opts.VMM {
	case VMMFirecracker:
		fo := opts.Firecracker
		if fo.Logger == nil {
			fo.Logger = m.log
		}
		if err := CheckFirecracker(fo.Firecracker, opts.DevRoot); err != nil {
			return nil, fmt.Errorf("vm: %w", err)
		}
		fc, err := firecracker.NewManager(cells, fo)
		if err != nil {
			return nil, fmt.Errorf("vm: %w", err)
		}
		m.fc = fc
		m.opts.Firecracker = fo
		m.accel = AccelInfo{Accel: AccelKVM, Reason: "Firecracker always runs under KVM"}
		return m, nil
	case VMMQEMU:
	default:
		return nil, fmt.Errorf("%w: VMM %q (want %q or %q)", ErrConfig, opts.VMM, VMMQEMU, VMMFirecracker)
	}
	p, err := exec.LookPath(opts.QEMU)
	if err != nil {
		return nil, fmt.Errorf("vm: %w: %s: %w (Debian: apt-get install qemu-system-x86)", ErrNoVMM, opts.QEMU, err)
	}
	if m.qemu, err = filepath.Abs(p); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	if opts.Kernel == "" || opts.Initrd == "" {
		return nil, fmt.Errorf("%w: a kernel and an initramfs are needed (build them with vmimage.Build: maxwell vm image)", ErrConfig)
	}
	for _, f := range []string{opts.Kernel, opts.Initrd, opts.RootFS} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("vm: %w", err)
		}
	}
	switch opts.Accel {
	case AccelAuto:
		m.accel = ProbeAccel(ctx, ProbeOptions{
			QEMU: m.qemu, Kernel: opts.Kernel, Initrd: opts.Initrd,
			KernelArgs: opts.KernelArgs, DevRoot: opts.DevRoot, Timeout: opts.ProbeTimeout,
		})
	case AccelKVM:
		m.accel = AccelInfo{Accel: AccelKVM, Reason: "KVM as configured"}
	case AccelTCG:
		m.accel = AccelInfo{Accel: AccelTCG, Reason: "TCG (emulation) as configured"}
	default:
		return nil, fmt.Errorf("%w: accelerator %q (want auto, kvm or tcg)", ErrConfig, opts.Accel)
	}
	if m.accel.Accel == AccelTCG && !strings.Contains(opts.KernelArgs, "tsc_early_khz=") {
		// microvm has neither HPET nor ACPI PM timer, so a guest
		// calibrates its TSC against the PIT alone, which under
		// emulation on a busy host fails often enough to hang boots
		// ("tsc: Unable to calibrate against PIT"). A TCG guest's TSC
		// runs at the host's rate: tell it.
		if khz, err := hostTSCkHz(opts.ProcRoot); err == nil {
			m.opts.KernelArgs += " tsc_early_khz=" + strconv.Itoa(khz)
		} else {
			m.log.Warn("host TSC frequency unknown; TCG guests calibrate against the PIT", "err", err)
		}
	}
	if err := os.MkdirAll(opts.StateDir, stateDirMode); err != nil {
		return nil, fmt.Errorf("vm: state directory: %w", err)
	}
	// Each VM's own directory is 0700 and its QEMU's user's: the state
	// directory itself lets them through, and lists nothing.
	if err := os.Chmod(opts.StateDir, stateDirMode); err != nil {
		return nil, fmt.Errorf("vm: state directory: %w", err)
	}
	if names, err := m.sweepStateDir(); err != nil {
		return nil, fmt.Errorf("vm: removing leftover state: %w", err)
	} else if len(names) > 0 {
		m.log.Info("removed leftover microVM state", "names", names)
	}
	m.log.Debug("microVM manager ready", "qemu", m.qemu, "accel", m.accel.Accel, "reason", m.accel.Reason)
	return m, nil
}

// Accel returns the accelerator the Manager's VMs run under and why.
func (m *Manager) Accel() AccelInfo { return m.accel }

// VMM returns the monitor the Manager runs.
func (m *Manager) VMM() VMM { return m.opts.VMM }

// Layout returns the cgroup layout of the cells the VMMs run in.
func (m *Manager) Layout() cell.Layout { return m.cells.Layout() }

// stateDirMode is the mode of Options.StateDir: the VMMs, which may run
// as other users (cell.Spec.Credential), pass through it to their own
// directories.
const stateDirMode = 0o711

// Guest overrides, for one VM, the guest settings of a Manager's Options;
// a zero field keeps the Options' value.
type Guest struct {
	// Kernel and Initrd are the guest's kernel and initramfs (QEMU), or
	// Kernel the uncompressed vmlinux (Firecracker, which has no
	// initramfs).
	Kernel, Initrd string
	// RootFS is a root file system image: the command runs chrooted in
	// it (QEMU), or it is the root device (Firecracker).
	RootFS string
	// MemMiB and VCPUs size the VM.
	MemMiB, VCPUs int
}

// Start boots a microVM running spec's command (see Machine) with the
// Manager's guest settings: Start(ctx, spec) is StartGuest(ctx, spec,
// Guest{}).
func (m *Manager) Start(ctx context.Context, spec cell.Spec) (cell.Cell, error) {
	return m.StartGuest(ctx, spec, Guest{})
}

// StartGuest boots a microVM running spec's command with g over the
// Manager's guest settings, and returns once the VMM runs and its
// sockets are connected; the guest boots on, and a QEMU guest that has
// not booted within BootTimeout is killed. With spec.Credential the VMM
// runs as that user: the guest's files must be readable by them (and,
// under KVM, /dev/kvm theirs to open). On error nothing is left behind.
func (m *Manager) StartGuest(ctx context.Context, spec cell.Spec, g Guest) (cell.Cell, error) {
	if g.MemMiB < 0 || g.VCPUs < 0 {
		return nil, fmt.Errorf("%w: %d MiB, %d vCPUs", ErrConfig, g.MemMiB, g.VCPUs)
	}
	for _, f := range []string{g.Kernel, g.Initrd, g.RootFS} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("starting microVM cell %q: %w", spec.Name, err)
		}
	}
	if m.opts.VMM == VMMFirecracker {
		fc, err := m.firecracker(g)
		if err != nil {
			return nil, fmt.Errorf("starting microVM cell %q: %w", spec.Name, err)
		}
		return fc.Start(ctx, spec)
	}
	return m.startQEMU(ctx, spec, m.qemuGuest(g))
}

// qemuGuest fills g's zero fields from the Options.
func (m *Manager) qemuGuest(g Guest) Guest {
	o := m.opts
	if g.Kernel == "" {
		g.Kernel = o.Kernel
	}
	if g.Initrd == "" {
		g.Initrd = o.Initrd
	}
	if g.RootFS == "" {
		g.RootFS = o.RootFS
	}
	if g.MemMiB == 0 {
		g.MemMiB = o.MemMiB
	}
	if g.VCPUs == 0 {
		g.VCPUs = o.VCPUs
	}
	return g
}

// firecracker returns the Firecracker manager of guest g: the Manager's
// own for the zero Guest, else one made on first use.
func (m *Manager) firecracker(g Guest) (*firecracker.Manager, error) {
	if g.Initrd != "" {
		return nil, fmt.Errorf("%w: Firecracker boots a kernel and a root file system, no initramfs", ErrConfig)
	}
	if g == (Guest{}) {
		return m.fc, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("vm manager: %w", cell.ErrClosed)
	}
	if fc, ok := m.fcs[g]; ok {
		return fc, nil
	}
	fo := m.opts.Firecracker
	if g.Kernel != "" {
		fo.Kernel = g.Kernel
	}
	if g.RootFS != "" {
		fo.RootFS = g.RootFS
	}
	if g.MemMiB > 0 {
		fo.MemMiB = int64(g.MemMiB)
	}
	if g.VCPUs > 0 {
		fo.VCPUs = int64(g.VCPUs)
	}
	fc, err := firecracker.NewManager(m.cells, fo)
	if err != nil {
		return nil, err
	}
	if m.fcs == nil {
		m.fcs = make(map[Guest]*firecracker.Manager)
	}
	m.fcs[g] = fc
	return fc, nil
}

// CheckFirecracker reports whether Firecracker can run here: the binary
// (a name in PATH or a path; "" means "firecracker") and a usable
// <devRoot>/kvm, and if not, what is missing (ErrNoVMM, ErrNoKVM).
func CheckFirecracker(binary, devRoot string) error {
	if binary == "" {
		binary = "firecracker"
	}
	if _, err := exec.LookPath(binary); err != nil {
		return fmt.Errorf("%w: no %s in PATH (no Debian package; a release binary from the Firecracker project)", ErrNoVMM, binary)
	}
	if err := CheckKVM(devRoot); err != nil {
		return fmt.Errorf("%w: Firecracker runs only under KVM: %w", ErrNoKVM, err)
	}
	return nil
}

// reserve claims name for a VM being started.
func (m *Manager) reserve(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("vm manager: %w", cell.ErrClosed)
	}
	if _, dup := m.machines[name]; dup {
		return fmt.Errorf("cell %q: %w", name, cell.ErrExists)
	}
	m.machines[name] = nil
	return nil
}

func (m *Manager) release(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.machines, name)
}

// sweepStateDir removes every directory in StateDir that is not one of
// m's VMs: sockets a host left when it was killed between starting a VMM
// and connecting to it (the cell guard killed the VMM itself).
func (m *Manager) sweepStateDir() ([]string, error) {
	ents, err := os.ReadDir(m.opts.StateDir)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	own := make(map[string]bool, len(m.machines))
	for n := range m.machines {
		own[n] = true
	}
	m.mu.Unlock()
	var names []string
	var errs []error
	for _, e := range ents {
		if own[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(m.opts.StateDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, errors.Join(errs...)
}

// Close closes every VM. It is idempotent. The cell manager the VMMs run
// in is the caller's to close.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var ms []*Machine
	for _, v := range m.machines {
		if v != nil {
			ms = append(ms, v)
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, v := range ms {
		errs = append(errs, v.Close())
	}
	return errors.Join(errs...)
}

// hostTSCkHz returns the host CPU's frequency in kHz from
// <procRoot>/cpuinfo ("cpu MHz" of the first CPU): on hosts with a
// constant TSC, the TSC's rate.
func hostTSCkHz(procRoot string) (int, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "cpuinfo"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || mhz <= 0 {
			return 0, fmt.Errorf("cpuinfo: cpu MHz %q", strings.TrimSpace(v))
		}
		return int(mhz*1000 + 0.5), nil
	}
	return 0, errors.New("cpuinfo has no \"cpu MHz\"")
}
