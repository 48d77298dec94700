package firecracker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	sdk "github.com/firecracker-microvm/firecracker-go-sdk"
	"github.com/firecracker-microvm/firecracker-go-sdk/client/models"
	"github.com/sirupsen/logrus"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// Backend is what Cell.Backend returns for a microVM cell.
const Backend = "firecracker"

// Errors of this package besides those of the vsock tunnel.
var (
	// ErrConfig means Options or a Spec cannot describe a microVM.
	ErrConfig = errors.New("invalid microVM configuration")
	// ErrVMState means the VMM did not report the state Maxwell asked
	// for.
	ErrVMState = errors.New("microVM in unexpected state")
	// ErrNoMetrics means the VMM has flushed no latency metrics yet.
	ErrNoMetrics = errors.New("no firecracker metrics")
)

// CellStarter starts the cell the VMM process runs in (*cell.Manager is
// one).
type CellStarter interface {
	Start(ctx context.Context, spec cell.Spec) (cell.Cell, error)
	Layout() cell.Layout
}

// Jailer configures Firecracker's jailer, for production: the VMM then
// runs chrooted under ChrootBase, as UID:GID, in new namespaces.
type Jailer struct {
	// Path is the jailer binary.
	Path string
	// UID and GID the VMM runs as.
	UID, GID int
	// ChrootBase is the jailer's --chroot-base-dir (default /srv/jailer).
	ChrootBase string
	// ParentCgroup is the jailer's --parent-cgroup: it must be the cell
	// manager's Parent, so that the jailer's cgroup <parent>/<cell name>
	// is the cell's own cgroup.
	ParentCgroup string
	// CgroupVersion is 1 or 2: the hierarchy the jailer writes.
	CgroupVersion int
}

// Options configure a Manager.
type Options struct {
	// Firecracker is the VMM binary ("firecracker" in PATH by default).
	Firecracker string
	// Jailer, if set, runs the VMM under the jailer.
	Jailer *Jailer
	// Kernel is the uncompressed guest kernel (vmlinux).
	Kernel string
	// RootFS is the guest's root file system image (ext4), attached
	// read-only as the root device. It must hold the agent binary.
	RootFS string
	// KernelArgs are the guest kernel's base arguments; the cell's
	// command is appended (see Manager.Start). Default
	// "console=ttyS0 reboot=k panic=1 pci=off".
	KernelArgs string
	// VCPUs and MemMiB size the VM (defaults 1 and 256).
	VCPUs  int64
	MemMiB int64
	// BalloonMiB, if positive, adds a balloon device inflated to that
	// many MiB, which deflates on guest OOM.
	BalloonMiB int64
	// StateDir holds each VM's API socket, vsock socket and metrics file.
	// Default /run/maxwell/firecracker.
	StateDir string
	// AgentPort is the host vsock port the guest's agent dials (at CID
	// 2); the host listens on "<vsock uds>_<AgentPort>". Default 1024.
	AgentPort uint32
	// BootTimeout bounds the VMM's API coming up and the boot requests.
	// Default 10 s.
	BootTimeout time.Duration
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
}

// DefaultOptions returns the defaults; Kernel and RootFS must still be
// set.
func DefaultOptions() Options {
	return Options{
		Firecracker: "firecracker",
		KernelArgs:  "console=ttyS0 reboot=k panic=1 pci=off",
		VCPUs:       1,
		MemMiB:      256,
		StateDir:    "/run/maxwell/firecracker",
		AgentPort:   1024,
		BootTimeout: 10 * time.Second,
	}
}

// Manager boots microVM cells.
type Manager struct {
	cells CellStarter
	opts  Options
	log   *slog.Logger
	fc    string // absolute path of the VMM (or jailer) binary

	// newClient returns the API client of a VM; tests replace it with
	// the SDK's mock.
	newClient func(socket string) *sdk.Client
}

// NewManager checks opts and returns a Manager whose VMs run in cells
// of cells.
func NewManager(cells CellStarter, opts Options) (*Manager, error) {
	def := DefaultOptions()
	if opts.Firecracker == "" {
		opts.Firecracker = def.Firecracker
	}
	if opts.KernelArgs == "" {
		opts.KernelArgs = def.KernelArgs
	}
	if opts.VCPUs <= 0 {
		opts.VCPUs = def.VCPUs
	}
	if opts.MemMiB <= 0 {
		opts.MemMiB = def.MemMiB
	}
	if opts.StateDir == "" {
		opts.StateDir = def.StateDir
	}
	if opts.AgentPort == 0 {
		opts.AgentPort = def.AgentPort
	}
	if opts.BootTimeout <= 0 {
		opts.BootTimeout = def.BootTimeout
	}
	m := &Manager{cells: cells, opts: opts, log: opts.Logger}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	bin := opts.Firecracker
	if opts.Jailer != nil {
		bin = opts.Jailer.Path
		if opts.Jailer.CgroupVersion != 1 && opts.Jailer.CgroupVersion != 2 {
			return nil, fmt.Errorf("%w: jailer cgroup version %d", ErrConfig, opts.Jailer.CgroupVersion)
		}
		if opts.Jailer.ChrootBase == "" {
			opts.Jailer.ChrootBase = "/srv/jailer"
		}
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("firecracker: %w", err)
	}
	if m.fc, err = filepath.Abs(p); err != nil {
		return nil, fmt.Errorf("firecracker: %w", err)
	}
	for _, f := range []string{opts.Kernel, opts.RootFS} {
		if f == "" {
			return nil, fmt.Errorf("%w: kernel and root file system must be set", ErrConfig)
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("firecracker: %w", err)
		}
	}
	// 0711: a VMM running as another user (cell.Spec.Credential) passes
	// through to its own directory, and lists nothing.
	if err := os.MkdirAll(opts.StateDir, 0o711); err != nil {
		return nil, fmt.Errorf("firecracker: state directory: %w", err)
	}
	if err := os.Chmod(opts.StateDir, 0o711); err != nil {
		return nil, fmt.Errorf("firecracker: state directory: %w", err)
	}
	m.newClient = func(socket string) *sdk.Client { return sdk.NewClient(socket, discardLogrus(), false) }
	return m, nil
}

func discardLogrus() *logrus.Entry {
	l := logrus.New()
	l.Out = io.Discard
	return logrus.NewEntry(l)
}

// bootArgs returns the guest kernel command line that runs spec's
// command as init: "init=PATH", the environment as KEY=VALUE words (the
// kernel hands those without a dot to init as its environment), and the
// arguments after "--". Words may hold no white space or quotes.
func bootArgs(base string, spec cell.Spec, agentPort uint32) (string, error) {
	if spec.Path == "" || !strings.HasPrefix(spec.Path, "/") {
		return "", fmt.Errorf("%w: the guest command %q must be an absolute path in the root file system", ErrConfig, spec.Path)
	}
	words := []string{base, "init=" + spec.Path, "MAXWELL_AGENT_VSOCK=" + strconv.Itoa(2) + ":" + strconv.FormatUint(uint64(agentPort), 10)}
	for _, e := range spec.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.Contains(k, ".") {
			return "", fmt.Errorf("%w: environment entry %q (want KEY=VALUE, no dot in KEY)", ErrConfig, e)
		}
		words = append(words, e)
	}
	if len(spec.Args) > 0 {
		words = append(words, "--")
		words = append(words, spec.Args...)
	}
	for _, w := range words[1:] {
		if w == "" || strings.ContainsAny(w, " \t\n\"'\x00") {
			return "", fmt.Errorf("%w: kernel command line word %q", ErrConfig, w)
		}
	}
	return strings.Join(words, " "), nil
}

// vmmCommand returns the command the VMM's cell runs, and the API socket
// and vsock socket paths as the host sees them.
func (m *Manager) vmmCommand(name, dir string) (path string, args []string, api, vsockUDS string) {
	if j := m.opts.Jailer; j != nil {
		// The jailer chroots to <base>/firecracker/<id>/root; paths given
		// to the VMM are inside it.
		root := filepath.Join(j.ChrootBase, filepath.Base(m.opts.Firecracker), name, "root")
		args = []string{
			"--id", name, "--exec-file", m.opts.Firecracker,
			"--uid", strconv.Itoa(j.UID), "--gid", strconv.Itoa(j.GID),
			"--chroot-base-dir", j.ChrootBase,
			"--parent-cgroup", j.ParentCgroup, "--cgroup-version", strconv.Itoa(j.CgroupVersion),
			"--", "--api-sock", "/api.sock",
		}
		return m.fc, args, filepath.Join(root, "api.sock"), filepath.Join(root, "vsock.sock")
	}
	api = filepath.Join(dir, "api.sock")
	return m.fc, []string{"--api-sock", api, "--id", name}, api, filepath.Join(dir, "vsock.sock")
}

// Start boots a microVM running spec's command as its init (see
// bootArgs): the VMM starts as the command of a cell named spec.Name
// (with spec's CPUs, freezer, credential and output: the guest console is
// the VMM's stdout), then is configured over its API and started. Under
// the jailer, the jailer's UID and GID apply instead of spec.Credential. On error the
// VMM's cell is closed: nothing is left running.
func (m *Manager) Start(ctx context.Context, spec cell.Spec) (cell.Cell, error) {
	fail := func(err error) (cell.Cell, error) {
		return nil, fmt.Errorf("starting microVM cell %q: %w", spec.Name, err)
	}
	args, err := bootArgs(m.opts.KernelArgs, spec, m.opts.AgentPort)
	if err != nil {
		return fail(err)
	}
	dir := filepath.Join(m.opts.StateDir, spec.Name)
	if filepath.Base(dir) != spec.Name || spec.Name == "" {
		return fail(fmt.Errorf("%w: %q", cell.ErrInvalidName, spec.Name))
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fail(err)
	}
	path, vargs, api, uds := m.vmmCommand(spec.Name, dir)
	metrics := filepath.Join(dir, "metrics.json")
	if m.opts.Jailer == nil {
		if err := os.WriteFile(metrics, nil, 0o600); err != nil {
			os.RemoveAll(dir)
			return fail(err)
		}
		if cr := spec.Credential; cr != nil {
			// The VMM, running as the user, creates its sockets here and
			// writes its metrics.
			for _, p := range []string{dir, metrics} {
				if err := os.Chown(p, int(cr.Uid), int(cr.Gid)); err != nil {
					os.RemoveAll(dir)
					return fail(err)
				}
			}
		}
	}
	cred := spec.Credential
	if m.opts.Jailer != nil {
		cred = nil // the jailer starts as root and drops to its --uid, --gid
	}
	inner, err := m.cells.Start(ctx, cell.Spec{
		Name: spec.Name, Path: path, Args: vargs, Env: []string{},
		CPUs: spec.CPUs, Stdout: spec.Stdout, Stderr: spec.Stderr, Freezer: spec.Freezer, Credential: cred,
	})
	if err != nil {
		os.RemoveAll(dir)
		return fail(err)
	}
	v := &vm{Cell: inner, m: m, dir: dir, api: api, vsock: uds, metrics: metrics}
	if err := v.boot(ctx, args); err != nil {
		v.Close()
		return fail(err)
	}
	return v, nil
}

// vm implements cell.Cell for a microVM: the inner cell runs the VMM.
type vm struct {
	cell.Cell
	m       *Manager
	dir     string
	api     string // API socket
	vsock   string // vsock device socket
	metrics string // metrics file
	machine *sdk.Machine

	mu        sync.Mutex // serialises Pause and Resume
	closeOnce sync.Once
	closeErr  error
}

var _ cell.Cell = (*vm)(nil)

func (v *vm) Backend() string { return Backend }

// boot configures the VMM over its API and starts the guest.
func (v *vm) boot(ctx context.Context, kernelArgs string) error {
	o := v.m.opts
	ctx, cancel := context.WithTimeout(ctx, o.BootTimeout)
	defer cancel()
	cfg := sdk.Config{
		SocketPath:      v.api,
		KernelImagePath: o.Kernel,
		KernelArgs:      kernelArgs,
		Drives: []models.Drive{{
			DriveID: sdk.String("rootfs"), PathOnHost: sdk.String(o.RootFS),
			IsRootDevice: sdk.Bool(true), IsReadOnly: sdk.Bool(true),
		}},
		MachineCfg:   models.MachineConfiguration{VcpuCount: sdk.Int64(o.VCPUs), MemSizeMib: sdk.Int64(o.MemMiB)},
		VsockDevices: []sdk.VsockDevice{{ID: "agent", Path: v.vsockInVMM(), CID: 3}},
		// The inner cell started the VMM; the SDK only talks to it.
		DisableValidation: true,
	}
	if o.Jailer == nil {
		cfg.MetricsPath = v.metrics
	}
	mach, err := sdk.NewMachine(ctx, cfg, sdk.WithClient(v.m.newClient(v.api)), sdk.WithLogger(discardLogrus()))
	if err != nil {
		return err
	}
	// The SDK re-serialises the kernel command line through a map (for
	// its network setup, which Maxwell does not use), which would
	// reorder init's "--" arguments: keep ours as written.
	mach.Handlers.FcInit = mach.Handlers.FcInit.Remove(sdk.SetupKernelArgsHandlerName)
	mach.Handlers.FcInit = mach.Handlers.FcInit.Swap(sdk.Handler{
		Name: sdk.StartVMMHandlerName,
		Fn:   func(ctx context.Context, _ *sdk.Machine) error { return v.waitAPI(ctx) },
	})
	if o.BalloonMiB > 0 {
		mach.Handlers.FcInit = mach.Handlers.FcInit.Append(sdk.Handler{
			Name: "maxwell.Balloon",
			Fn: func(ctx context.Context, m *sdk.Machine) error {
				return m.CreateBalloon(ctx, o.BalloonMiB, true, 1)
			},
		})
	}
	v.machine = mach
	if err := mach.Start(ctx); err != nil {
		return fmt.Errorf("booting: %w", err)
	}
	return nil
}

// vsockInVMM is the vsock socket path as the VMM names it (inside the
// jailer's chroot when jailed).
func (v *vm) vsockInVMM() string {
	if v.m.opts.Jailer != nil {
		return "/vsock.sock"
	}
	return v.vsock
}

// waitAPI waits until the VMM's API socket answers, the VMM exits, or
// ctx ends.
func (v *vm) waitAPI(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := os.Stat(v.api); err == nil {
			if _, err := v.m.newClient(v.api).GetMachineConfiguration(); err == nil {
				return nil
			}
		}
		select {
		case <-v.Done():
			return fmt.Errorf("VMM exited before its API came up: %w", v.Wait(context.WithoutCancel(ctx)))
		case <-ctx.Done():
			return fmt.Errorf("waiting for the VMM API at %s: %w", v.api, ctx.Err())
		case <-t.C:
		}
	}
}

// state returns the VMM's instance state ("Running", "Paused", ...).
func (v *vm) state(ctx context.Context) (string, error) {
	info, err := v.machine.DescribeInstanceInfo(ctx)
	if err != nil {
		return "", err
	}
	if info.State == nil {
		return "", fmt.Errorf("%w: no state in instance info", ErrVMState)
	}
	return *info.State, nil
}

// Pause sends PATCH /vm {"state": "Paused"} and confirms the instance
// state is Paused. On failure the VM is resumed again.
func (v *vm) Pause(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	err := v.setState(ctx, true)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := v.machine.ResumeVM(rctx); rerr != nil {
			v.m.log.Warn("resuming after failed pause", "cell", v.Name(), "err", rerr)
		}
		return fmt.Errorf("pausing microVM cell %q: %w", v.Name(), err)
	}
	return nil
}

// Resume sends PATCH /vm {"state": "Resumed"} and confirms the instance
// state is Running.
func (v *vm) Resume(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.setState(ctx, false); err != nil {
		return fmt.Errorf("resuming microVM cell %q: %w", v.Name(), err)
	}
	return nil
}

func (v *vm) setState(ctx context.Context, pause bool) error {
	select {
	case <-v.Done():
		return cell.ErrExited
	default:
	}
	var err error
	want := "Running"
	if pause {
		err, want = v.machine.PauseVM(ctx), "Paused"
	} else {
		err = v.machine.ResumeVM(ctx)
	}
	if err != nil {
		return err
	}
	got, err := v.state(ctx)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: %s, want %s", ErrVMState, got, want)
	}
	return nil
}

// Stats are the VMM cell's figures; Frozen is the VMM's own view (its
// vCPUs paused), or the cgroup freezer's if that froze the whole VMM.
func (v *vm) Stats() (cell.Stats, error) {
	st, err := v.Cell.Stats()
	if err != nil || st.Frozen || v.machine == nil {
		return st, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s, serr := v.state(ctx); serr == nil {
		st.Frozen = s == "Paused"
	}
	return st, nil
}

// RuntimeLatencies flushes the VMM's metrics and returns its own latency
// figures for the latest pause and resume (latencies_us.vmm_pause_vm and
// vmm_resume_vm, in microseconds). It implements bench.RuntimeLatencies.
func (v *vm) RuntimeLatencies(ctx context.Context) (pause, resume time.Duration, err error) {
	if _, err := v.m.newClient(v.api).CreateSyncAction(ctx, &models.InstanceActionInfo{ActionType: sdk.String("FlushMetrics")}); err != nil {
		return 0, 0, fmt.Errorf("flushing metrics: %w", err)
	}
	f, err := os.Open(v.metrics)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return lastLatencies(f)
}

// lastLatencies reads Firecracker's metrics (one JSON object per flush)
// and returns the last vmm_pause_vm and vmm_resume_vm latencies.
func lastLatencies(r io.Reader) (pause, resume time.Duration, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	found := false
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var mt struct {
			Latencies *struct {
				Pause  *uint64 `json:"vmm_pause_vm"`
				Resume *uint64 `json:"vmm_resume_vm"`
			} `json:"latencies_us"`
		}
		if err := json.Unmarshal(line, &mt); err != nil {
			return 0, 0, fmt.Errorf("firecracker metrics: %w", err)
		}
		if mt.Latencies != nil && mt.Latencies.Pause != nil && mt.Latencies.Resume != nil {
			pause = time.Duration(*mt.Latencies.Pause) * time.Microsecond
			resume = time.Duration(*mt.Latencies.Resume) * time.Microsecond
			found = true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("firecracker metrics: %w", err)
	}
	if !found {
		return 0, 0, ErrNoMetrics
	}
	return pause, resume, nil
}

// Close kills the VMM (its cell), and removes the VM's state directory.
func (v *vm) Close() error {
	v.closeOnce.Do(func() {
		err := v.Cell.Close()
		if rerr := os.RemoveAll(v.dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
		v.closeErr = err
	})
	return v.closeErr
}

// VsockPath returns the host path of the vsock device socket of a
// microVM cell started by a Manager, and false for any other cell. The
// hub serves the VM's agent on ListenVsock(path, Options.AgentPort);
// DialVsock(ctx, path, port) reaches a guest port.
func VsockPath(c cell.Cell) (string, bool) {
	v, ok := c.(*vm)
	if !ok {
		return "", false
	}
	return v.vsock, true
}
