package firecracker

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/firecracker-microvm/firecracker-go-sdk"
	"github.com/firecracker-microvm/firecracker-go-sdk/client/models"
	ops "github.com/firecracker-microvm/firecracker-go-sdk/client/operations"
	"github.com/firecracker-microvm/firecracker-go-sdk/fctesting"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// fakeCell stands in for the cell the VMM process runs in.
type fakeCell struct {
	cell.Cell // methods the tests do not expect panic
	name      string
	done      chan struct{}
	closed    bool
}

func (c *fakeCell) Name() string               { return c.name }
func (c *fakeCell) Done() <-chan struct{}      { return c.done }
func (c *fakeCell) Wait(context.Context) error { return errors.New("exit status 1") }
func (c *fakeCell) Stats() (cell.Stats, error) {
	return cell.Stats{CPUTime: time.Second, MemoryBytes: 1 << 20, PIDs: 3}, nil
}
func (c *fakeCell) Close() error { c.closed = true; return nil }

// fakeStarter "starts" the VMM: it records the spec and creates the API
// socket file the VMM would.
type fakeStarter struct {
	specs []cell.Spec
	cells []*fakeCell
}

func (s *fakeStarter) Start(_ context.Context, spec cell.Spec) (cell.Cell, error) {
	s.specs = append(s.specs, spec)
	for i, a := range spec.Args {
		if a == "--api-sock" {
			if err := os.WriteFile(spec.Args[i+1], nil, 0o600); err != nil {
				return nil, err
			}
		}
	}
	c := &fakeCell{name: spec.Name, done: make(chan struct{})}
	s.cells = append(s.cells, c)
	return c, nil
}

func (s *fakeStarter) Layout() cell.Layout { return cell.Layout{Kind: cell.LayoutHybrid} }

// fakeVMM is the SDK's mock API client with a VM state machine behind
// it, recording every request.
type fakeVMM struct {
	mu       sync.Mutex
	calls    []string
	state    string
	stuck    bool // PATCH /vm succeeds but the state never changes
	bootArgs string
	failBoot error
}

func (f *fakeVMM) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeVMM) client() *fctesting.MockClient {
	return &fctesting.MockClient{
		GetMachineConfigurationFn: func(*ops.GetMachineConfigurationParams) (*ops.GetMachineConfigurationOK, error) {
			return &ops.GetMachineConfigurationOK{Payload: &models.MachineConfiguration{VcpuCount: sdk.Int64(1), MemSizeMib: sdk.Int64(256)}}, nil
		},
		PutMachineConfigurationFn: func(p *ops.PutMachineConfigurationParams) (*ops.PutMachineConfigurationNoContent, error) {
			f.record("PUT /machine-config")
			return nil, nil
		},
		PutGuestBootSourceFn: func(p *ops.PutGuestBootSourceParams) (*ops.PutGuestBootSourceNoContent, error) {
			f.record("PUT /boot-source")
			f.bootArgs = p.Body.BootArgs
			return nil, f.failBoot
		},
		PutGuestDriveByIDFn: func(p *ops.PutGuestDriveByIDParams) (*ops.PutGuestDriveByIDNoContent, error) {
			f.record("PUT /drives/" + p.DriveID)
			return nil, nil
		},
		PutGuestVsockFn: func(p *ops.PutGuestVsockParams) (*ops.PutGuestVsockNoContent, error) {
			f.record("PUT /vsock " + *p.Body.UdsPath)
			return nil, nil
		},
		PutMetricsFn: func(p *ops.PutMetricsParams) (*ops.PutMetricsNoContent, error) {
			f.record("PUT /metrics")
			return nil, nil
		},
		PutBalloonFn: func(p *ops.PutBalloonParams) (*ops.PutBalloonNoContent, error) {
			f.record("PUT /balloon")
			return nil, nil
		},
		CreateSyncActionFn: func(p *ops.CreateSyncActionParams) (*ops.CreateSyncActionNoContent, error) {
			f.record("PUT /actions " + *p.Info.ActionType)
			f.mu.Lock()
			defer f.mu.Unlock()
			if *p.Info.ActionType == "InstanceStart" {
				f.state = "Running"
			}
			return nil, nil
		},
		PatchVMFn: func(p *ops.PatchVMParams) (*ops.PatchVMNoContent, error) {
			f.record("PATCH /vm " + *p.Body.State)
			f.mu.Lock()
			defer f.mu.Unlock()
			if !f.stuck {
				f.state = map[string]string{"Paused": "Paused", "Resumed": "Running"}[*p.Body.State]
			}
			return nil, nil
		},
		DescribeInstanceFn: func(*ops.DescribeInstanceParams) (*ops.DescribeInstanceOK, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			s := f.state
			return &ops.DescribeInstanceOK{Payload: &models.InstanceInfo{State: &s}}, nil
		},
	}
}

func newMockManager(t *testing.T, f *fakeVMM, balloon int64) (*Manager, *fakeStarter) {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"vmlinux", "rootfs.ext4"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st := &fakeStarter{}
	opts := DefaultOptions()
	opts.Firecracker = "/bin/true" // never run: the fake starter stands in
	opts.Kernel = filepath.Join(dir, "vmlinux")
	opts.RootFS = filepath.Join(dir, "rootfs.ext4")
	opts.StateDir = filepath.Join(dir, "state")
	opts.BalloonMiB = balloon
	m, err := NewManager(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	m.newClient = func(socket string) *sdk.Client {
		return sdk.NewClient(socket, discardLogrus(), false, sdk.WithOpsClient(f.client()))
	}
	return m, st
}

func TestBootPauseResume(t *testing.T) {
	f := &fakeVMM{}
	m, st := newMockManager(t, f, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := m.Start(ctx, cell.Spec{Name: "vm1", Path: "/bin/maxwell", Args: []string{"agent", "scientist"}, CPUs: []int{1}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if c.Backend() != Backend || c.Name() != "vm1" {
		t.Errorf("Backend, Name = %q, %q", c.Backend(), c.Name())
	}
	spec := st.specs[0]
	if spec.Path != "/bin/true" || !strings.Contains(strings.Join(spec.Args, " "), "--api-sock") || len(spec.CPUs) != 1 {
		t.Errorf("VMM cell spec = %+v", spec)
	}
	wantArgs := "console=ttyS0 reboot=k panic=1 pci=off init=/bin/maxwell MAXWELL_AGENT_VSOCK=2:1024 -- agent scientist"
	if f.bootArgs != wantArgs {
		t.Errorf("boot args = %q; want %q", f.bootArgs, wantArgs)
	}
	for _, want := range []string{"PUT /machine-config", "PUT /boot-source", "PUT /drives/rootfs", "PUT /vsock", "PUT /metrics", "PUT /balloon", "PUT /actions InstanceStart"} {
		found := false
		for _, call := range f.calls {
			found = found || strings.HasPrefix(call, want)
		}
		if !found {
			t.Errorf("boot made no %s request; calls: %v", want, f.calls)
		}
	}
	if f.calls[len(f.calls)-1] != "PUT /actions InstanceStart" {
		t.Errorf("last boot request %q; want InstanceStart", f.calls[len(f.calls)-1])
	}

	f.calls = nil
	if err := c.Pause(ctx); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if st, err := c.Stats(); err != nil || !st.Frozen || st.CPUTime != time.Second {
		t.Errorf("Stats after Pause = %+v, %v; want the cell's figures, frozen", st, err)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if got := strings.Join(f.calls, ", "); got != "PATCH /vm Paused, PATCH /vm Resumed" {
		t.Errorf("requests = %s; want PATCH /vm Paused then Resumed", got)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !st.cells[0].closed {
		t.Error("VMM cell not closed")
	}
	if _, err := os.Stat(filepath.Join(m.opts.StateDir, "vm1")); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
}

// TestCredential: the VMM's cell runs as the spec's user, who owns the
// VM's directory (where the VMM makes its sockets) and metrics file; the
// state directory lets them through and lists nothing.
func TestCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the VM's directory to another user")
	}
	f := &fakeVMM{}
	m, st := newMockManager(t, f, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cred := &syscall.Credential{Uid: 65534, Gid: 65534}
	c, err := m.Start(ctx, cell.Spec{Name: "asuser", Path: "/bin/sh", Credential: cred})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	if got := st.specs[0].Credential; got != cred {
		t.Errorf("VMM cell credential = %+v, want %+v", got, cred)
	}
	for _, p := range []string{filepath.Join(m.opts.StateDir, "asuser"), filepath.Join(m.opts.StateDir, "asuser", "metrics.json")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := fi.Sys().(*syscall.Stat_t); s.Uid != cred.Uid || s.Gid != cred.Gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, s.Uid, s.Gid, cred.Uid, cred.Gid)
		}
	}
	if fi, err := os.Stat(m.opts.StateDir); err != nil || fi.Mode().Perm() != 0o711 {
		t.Errorf("state directory mode %v, %v; want 0711", fi.Mode().Perm(), err)
	}
}

// TestPauseIgnored: the VMM accepts PATCH /vm but stays Running. Pause
// must fail clearly and leave the VM resumed, not half paused.
func TestPauseIgnored(t *testing.T) {
	f := &fakeVMM{}
	m, _ := newMockManager(t, f, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := m.Start(ctx, cell.Spec{Name: "vm2", Path: "/init"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f.stuck = true
	f.calls = nil
	if err := c.Pause(ctx); !errors.Is(err, ErrVMState) {
		t.Errorf("Pause = %v; want ErrVMState", err)
	}
	if got := strings.Join(f.calls, ", "); got != "PATCH /vm Paused, PATCH /vm Resumed" {
		t.Errorf("requests = %s; want the pause undone", got)
	}
}

func TestBootFailureLeavesNothing(t *testing.T) {
	f := &fakeVMM{failBoot: errors.New("kernel not found")}
	m, st := newMockManager(t, f, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := m.Start(ctx, cell.Spec{Name: "vm3", Path: "/init"}); err == nil || !strings.Contains(err.Error(), "kernel not found") {
		t.Fatalf("Start = %v; want the boot error", err)
	}
	if !st.cells[0].closed {
		t.Error("VMM cell left running after a failed boot")
	}
	if _, err := os.Stat(filepath.Join(m.opts.StateDir, "vm3")); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
}

// TestVMMDiesBeforeAPI: a VMM that exits at once (bad binary, no KVM)
// fails Start with its exit error instead of waiting for a socket.
func TestVMMDiesBeforeAPI(t *testing.T) {
	f := &fakeVMM{}
	m, _ := newMockManager(t, f, 0)
	dead := &deadStarter{}
	m.cells = dead
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := m.Start(ctx, cell.Spec{Name: "vm4", Path: "/init"})
	if err == nil || !strings.Contains(err.Error(), "exited before its API came up") {
		t.Errorf("Start = %v; want the VMM's exit", err)
	}
	if ctx.Err() != nil {
		t.Error("Start waited for its whole context")
	}
}

type deadStarter struct{ fakeStarter }

func (s *deadStarter) Start(_ context.Context, spec cell.Spec) (cell.Cell, error) {
	c := &fakeCell{name: spec.Name, done: make(chan struct{})}
	close(c.done)
	s.cells = append(s.cells, c)
	return c, nil
}

func TestBootArgs(t *testing.T) {
	tests := []struct {
		name string
		spec cell.Spec
		want string // "" means an error
	}{
		{"plain", cell.Spec{Path: "/init"}, "base init=/init MAXWELL_AGENT_VSOCK=2:7"},
		{"env and args", cell.Spec{Path: "/bin/a", Env: []string{"A=1"}, Args: []string{"x", "-y"}}, "base init=/bin/a MAXWELL_AGENT_VSOCK=2:7 A=1 -- x -y"},
		{"relative path", cell.Spec{Path: "init"}, ""},
		{"space in arg", cell.Spec{Path: "/a", Args: []string{"two words"}}, ""},
		{"quote in env", cell.Spec{Path: "/a", Env: []string{`A="x"`}}, ""},
		{"dotted env key", cell.Spec{Path: "/a", Env: []string{"a.b=1"}}, ""},
		{"env without =", cell.Spec{Path: "/a", Env: []string{"A"}}, ""},
	}
	for _, tt := range tests {
		got, err := bootArgs("base", tt.spec, 7)
		if tt.want == "" {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%s: bootArgs = %q, %v; want ErrConfig", tt.name, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: bootArgs = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestLastLatencies(t *testing.T) {
	f, err := os.Open("testdata/metrics.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, r, err := lastLatencies(f)
	if err != nil || p != 37*time.Microsecond || r != 19*time.Microsecond {
		t.Errorf("lastLatencies = %v, %v, %v; want 37µs, 19µs", p, r, err)
	}
	if _, _, err := lastLatencies(strings.NewReader("")); !errors.Is(err, ErrNoMetrics) {
		t.Errorf("empty metrics: %v; want ErrNoMetrics", err)
	}
	if _, _, err := lastLatencies(strings.NewReader("{garbage\n")); err == nil {
		t.Error("garbage metrics accepted")
	}
}

// TestRealVM boots a real microVM where this host can: a firecracker
// binary in PATH, a usable /dev/kvm, and a guest kernel and root file
// system named by MAXWELL_FC_KERNEL and MAXWELL_FC_ROOTFS.
func TestRealVM(t *testing.T) {
	fc, err := exec.LookPath("firecracker")
	if err != nil {
		t.Skip("no firecracker binary in PATH (Debian ships none; see docs/DEPLOY.md)")
	}
	kvm, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("/dev/kvm missing or unusable: %v", err)
	}
	kvm.Close()
	kernel, rootfs := os.Getenv("MAXWELL_FC_KERNEL"), os.Getenv("MAXWELL_FC_ROOTFS")
	if kernel == "" || rootfs == "" {
		t.Skip("MAXWELL_FC_KERNEL and MAXWELL_FC_ROOTFS name no guest kernel and root file system")
	}
	cm, err := cell.NewManager(cell.Options{Parent: "mxfc-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	opts := DefaultOptions()
	opts.Firecracker, opts.Kernel, opts.RootFS, opts.StateDir = fc, kernel, rootfs, t.TempDir()
	m, err := NewManager(cm, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := m.Start(ctx, cell.Spec{Name: "realvm", Path: "/bin/sh", Args: []string{"-c", "while :; do :; done"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := c.Stats()
	time.Sleep(100 * time.Millisecond)
	after, _ := c.Stats()
	if !after.Frozen || after.CPUTime-before.CPUTime > 20*time.Millisecond {
		t.Errorf("paused VM: %+v -> %+v", before, after)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if p, r, err := c.(*vm).RuntimeLatencies(ctx); err != nil {
		t.Errorf("RuntimeLatencies: %v", err)
	} else {
		t.Logf("vmm_pause_vm %v vmm_resume_vm %v", p, r)
	}
}
