// Package lab runs Maxwell's experiments — the baseline, the demo, the
// comparison — each on an economy of its own (package economy: the same
// assembly `maxwell daemon` serves), with the agents spawned, funded and
// watched through the economy's operations (package experiment).
//
// The economy runs in this process rather than as a daemon on private
// sockets: it is the same code either way, an in-process one needs no
// /run paths, cannot collide with the host's own daemon, and lets the
// demo's dashboard read the very state the control API serves, without
// a socket in between. Each run gets a cgroup parent, an agent socket and a
// ledger of its own.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/experiment"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// CellKind says what the agents of a run are contained in.
type CellKind string

// The cell kinds.
const (
	Process CellKind = "process" // a process in its own cgroups
	OCI     CellKind = "oci"     // a runc container
	VM      CellKind = "vm"      // a QEMU microVM (KVM, else TCG)
)

// ParseCellKind parses a --cell flag.
func ParseCellKind(s string) (CellKind, error) {
	switch k := CellKind(s); k {
	case Process, OCI, VM:
		return k, nil
	}
	return "", fmt.Errorf("cell kind %q: want %s, %s or %s", s, Process, OCI, VM)
}

// Env is where experiments run: the host, its configuration, and the
// maxwell binary the agents are.
type Env struct {
	Config     config.Config
	Roots      sensors.Roots
	CgroupRoot string
	// CPUs are the CPUs the runs' economies sell and the agents share.
	CPUs []int
	Cell CellKind
	// VMImage is the directory of the guest image VM cells boot (as
	// `maxwell vm image` builds it); "" builds one for each run from Exe
	// and the newest /boot kernel.
	VMImage string
	// ProfilePath is the host profile the runs' economies tune their
	// price controller with, where it exists (economy.Options).
	ProfilePath string
	// Exe is the maxwell binary the agents run (`maxwell agent …`).
	Exe   string
	Clock clock.Clock
	Log   *slog.Logger
}

// runSeq numbers the runs of this process, for their cgroup parents.
var runSeq atomic.Int64

// Session is one run in progress: its economy, for whoever wants to watch
// it (the demo's dashboard).
type Session struct {
	Economy *economy.Economy
}

// runSpec is one run to make.
type runSpec struct {
	kind   string
	policy engine.Policy
	// parasites are the cells engine.PolicyOracle never runs.
	parasites []string
	agents    []api.SpawnRequest
	duration  time.Duration
	dir       string
	// show, if set, runs beside the run with its session and ends it
	// early by returning.
	show    func(ctx context.Context, s Session) error
	onEvent func(record.Event)
}

// result is what a run leaves besides its directory.
type result struct {
	summary record.Summary
	ledger  ledger.Report
	meter   string
}

// run makes one run on an economy of its own.
func (env Env) run(ctx context.Context, spec runSpec) (result, error) {
	var res result
	if env.Clock == nil {
		env.Clock = clock.System()
	}
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(spec.dir, 0o755); err != nil {
		return res, err
	}
	// The agent socket lives in a short private directory: a Unix socket's
	// path may not exceed 107 bytes, and a run directory may be deep.
	sockDir, err := os.MkdirTemp("", "maxwell-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(sockDir)
	agents := spec.agents
	switch env.Cell {
	case OCI:
		if agents, err = env.inContainers(ctx, sockDir, agents); err != nil {
			return res, err
		}
	case VM:
		if agents, err = env.inVMs(ctx, sockDir, agents); err != nil {
			return res, err
		}
	}
	opts := economy.Options{
		Config: env.Config, Roots: env.Roots, CgroupRoot: env.CgroupRoot,
		CellParent:  "maxwell-run-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(runSeq.Add(1), 10),
		AgentSocket: filepath.Join(sockDir, "agent.sock"), StateDir: sockDir,
		LedgerPath: filepath.Join(spec.dir, "ledger.db"), LogDir: spec.dir,
		CPUs: env.CPUs, Policy: spec.policy, Parasites: spec.parasites, Clock: env.Clock, Log: env.Log, ProfilePath: env.ProfilePath,
	}
	if spec.policy == engine.PolicyMaxwell {
		opts.JournalPath = filepath.Join(spec.dir, "engine.jsonl")
	}
	econ, err := economy.Open(ctx, opts)
	if err != nil {
		return res, err
	}
	if m := econ.Sources().Meter; m.Kind != "" {
		res.meter = m.Kind + " (" + m.Label() + ")"
	}
	econCtx, stopEcon := context.WithCancel(context.WithoutCancel(ctx))
	econDone := make(chan error, 1)
	go func() { econDone <- econ.Run(econCtx) }()

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	showDone := make(chan error, 1)
	if spec.show != nil {
		go func() {
			err := spec.show(runCtx, Session{Economy: econ})
			stopRun() // quitting the dashboard ends the run
			showDone <- err
		}()
	}
	r := &experiment.Run{
		Kind: spec.kind, Duration: spec.duration, Interval: env.Config.SampleInterval, CPUs: env.CPUs,
		Agents: agents, ConnectTimeout: env.Config.Baseline.ConnectTimeout, Dir: spec.dir,
		Clock: env.Clock, Log: env.Log, OnEvent: spec.onEvent,
	}
	res.summary, err = r.Execute(runCtx, econ)
	stopRun()
	if spec.show != nil {
		if serr := <-showDone; serr != nil && !errors.Is(serr, context.Canceled) {
			err = errors.Join(err, fmt.Errorf("dashboard: %w", serr))
		}
	}
	stopEcon()
	if eerr := <-econDone; eerr != nil {
		err = errors.Join(err, eerr)
	}
	res.ledger, err = verify(ctx, opts.LedgerPath, err)
	return res, err
}

// CreateLog creates the log file of a run in its directory, dir/maxwell.log,
// for when the terminal belongs to the dashboard.
func CreateLog(dir string) (io.WriteCloser, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	p := filepath.Join(dir, "maxwell.log")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	return f, p, err
}

// verify checks the run's ledger once its economy has stopped.
func verify(ctx context.Context, path string, err error) (ledger.Report, error) {
	l, lerr := ledger.Open(context.WithoutCancel(ctx), path, ledger.Options{ReadOnly: true})
	if lerr != nil {
		return ledger.Report{}, errors.Join(err, lerr)
	}
	defer l.Close()
	rep, verr := l.Verify(context.WithoutCancel(ctx))
	return rep, errors.Join(err, verr)
}

// inContainers builds a root file system holding busybox and the maxwell
// binary and moves the agents into runc containers on it.
func (env Env) inContainers(ctx context.Context, dir string, agents []api.SpawnRequest) ([]api.SpawnRequest, error) {
	root := filepath.Join(dir, "rootfs")
	rfs := oci.RootFS{Busybox: oci.DefaultBusybox, Binaries: map[string]string{"/bin/maxwell": env.Exe}}
	if err := rfs.Build(ctx, root); err != nil {
		return nil, fmt.Errorf("OCI root file system: %w", err)
	}
	out := make([]api.SpawnRequest, len(agents))
	for i, a := range agents {
		a.OCIRootfs = root
		if len(a.Argv) > 0 && a.Argv[0] == env.Exe {
			a.Argv = append([]string{"/bin/maxwell"}, a.Argv[1:]...)
		}
		out[i] = a
	}
	return out, nil
}

// inVMs moves the agents into QEMU microVMs booting the guest image of
// env.VMImage, or one built in dir from env.Exe: the maxwell binary in the
// guest runs them, on as many vCPUs as the run sells CPUs.
func (env Env) inVMs(ctx context.Context, dir string, agents []api.SpawnRequest) ([]api.SpawnRequest, error) {
	var img vmimage.Image
	var err error
	if env.VMImage != "" {
		img, err = vmimage.Load(env.VMImage)
	} else {
		img, err = vmimage.Build(ctx, vmimage.Options{Maxwell: env.Exe, Out: filepath.Join(dir, "vm-image")})
	}
	if err != nil {
		return nil, fmt.Errorf("guest image for VM cells: %w", err)
	}
	if img.Maxwell == "" {
		return nil, fmt.Errorf("guest image for VM cells: %s holds no maxwell binary to run the agents", img.Initrd)
	}
	out := make([]api.SpawnRequest, len(agents))
	for i, a := range agents {
		a.VM = &api.VMRequest{Kernel: img.Kernel, Initrd: img.Initrd, VCPUs: len(env.CPUs)}
		if len(a.Argv) > 0 && a.Argv[0] == env.Exe {
			a.Argv = append([]string{img.Maxwell}, a.Argv[1:]...)
		}
		out[i] = a
	}
	return out, nil
}
