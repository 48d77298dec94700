package main

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/experiment"
	"github.com/maxwellhq/maxwell/internal/hub"
	"github.com/maxwellhq/maxwell/internal/model"
	"github.com/maxwellhq/maxwell/internal/telemetry"
)

// runEnv is what every experiment command sets up: telemetry, a cell
// manager, an agent hub on a private socket, and the run to fill in.
type runEnv struct {
	cfg  config.Config
	tel  *telemetry.Telemetry
	mgr  *cell.Manager
	hub  *hub.Hub
	sock string
	run  *experiment.Run
	log  *slog.Logger
	exe  string
	// oci, when the agents run in OCI containers, is their manager; the
	// agent socket's directory is mounted at ociSockDir inside them.
	oci *oci.Manager

	stop func()
}

// The cell backends an experiment can run its agents in.
const (
	cellProcess = "process"
	cellOCI     = "oci"
)

// ociSockDir is where the agent socket's directory appears in containers.
const ociSockDir = "/run/maxwell"

// newRunEnv prepares a run of kind on cpus for d, writing to dir, with the
// agents in cells of kind cellKind (process or oci).
func newRunEnv(ctx context.Context, a *app, stderr io.Writer, cfg config.Config, kind, cellKind string, cpus []int, d time.Duration, dir string) (*runEnv, error) {
	if cellKind != cellProcess && cellKind != cellOCI {
		return nil, fmt.Errorf("--cell %q: want %s or %s", cellKind, cellProcess, cellOCI)
	}
	log, err := a.logger(stderr)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the maxwell binary to run the agents: %w", err)
	}
	tel, err := telemetry.Open(a.roots(), cfg, clock.System())
	if err != nil {
		return nil, err
	}
	util, err := model.NewCPUSampler(a.procRoot, cpus...)
	if err != nil {
		return nil, err
	}
	opts := cell.DefaultOptions()
	opts.CgroupRoot, opts.ProcRoot, opts.Logger = a.cgroupRoot, a.procRoot, log
	// A run's cells live under a parent of their own, so that runs (and a
	// daemon, under "maxwell") never collide over a cell's name.
	opts.Parent = "maxwell-run-" + strconv.Itoa(os.Getpid())
	mgr, err := cell.NewManager(opts)
	if err != nil {
		return nil, err
	}
	log.Info("cells", "layout", mgr.Layout().String())
	sockDir, err := os.MkdirTemp("", "maxwell-")
	if err != nil {
		mgr.Close()
		return nil, err
	}
	env := &runEnv{cfg: cfg, tel: tel, mgr: mgr, log: log, exe: exe, sock: filepath.Join(sockDir, "agent.sock")}
	if cellKind == cellOCI {
		if env.oci, err = newOCI(ctx, a, log, exe, sockDir); err != nil {
			mgr.Close()
			os.RemoveAll(sockDir)
			return nil, err
		}
	}
	env.run = &experiment.Run{
		Kind: kind, Duration: d, Interval: cfg.SampleInterval, CPUs: cpus,
		ConnectTimeout: cfg.Baseline.ConnectTimeout, Dir: dir,
		Cells: mgr, Energy: tel.Energy, Temp: tel.Temp, Util: util, IdlePower: tel.IdlePower,
		Clock: clock.System(), Log: log,
	}
	h, err := hub.Listen(env.sock, env.run, hub.Options{
		OnEvent: func(e hub.Event) {
			if e.Code == proto.CodeOutOfTurn {
				return // a bid that raced the tick: harmless, and many
			}
			env.run.Note("agent_"+e.Kind.String(), e.Cell, e.Detail)
		},
		Auctions: true,
		// A cell the economy has frozen cannot talk: it must not lose its
		// connection for its silence. Hung peers still cannot block the
		// host (every write and the handshake keep their deadlines).
		IdleTimeout: 24 * time.Hour,
	})
	if err != nil {
		if env.oci != nil {
			env.oci.Close()
		}
		mgr.Close()
		os.RemoveAll(sockDir)
		return nil, err
	}
	env.hub = h
	env.run.Counters = h
	if env.oci != nil {
		env.run.Cells = env.oci
	}
	hubCtx, stopHub := context.WithCancel(ctx)
	hubDone := make(chan error, 1)
	go func() { hubDone <- h.Serve(hubCtx) }()
	env.stop = func() {
		stopHub()
		<-hubDone
		if env.oci != nil {
			env.oci.Close()
		}
		mgr.Close()
		os.RemoveAll(sockDir)
	}
	return env, nil
}

// Close stops the hub and the cell manager.
func (e *runEnv) Close() { e.stop() }

// agents returns the Scientist and the Miner as the configuration says,
// bidding in the host's auction when bidding is set.
func (e *runEnv) agents(bidding bool) []experiment.AgentSpec {
	b := e.cfg.Baseline
	env := append(os.Environ(), "MAXWELL_AGENT_SOCKET="+e.sock)
	sci := []string{"agent", "scientist", "--threads", strconv.Itoa(b.Scientist.Threads)}
	min := []string{"agent", "miner",
		"--threads", strconv.Itoa(b.Miner.Threads),
		"--churn-mib-per-sec", strconv.FormatFloat(b.Miner.ChurnMiBPerSec, 'f', -1, 64),
		"--chunk-mib", strconv.Itoa(b.Miner.ChunkMiB)}
	if bidding {
		sci = append(sci, "--bidding", "--valuation", strconv.FormatFloat(e.cfg.Demo.ScientistValuation, 'f', -1, 64))
		min = append(min, "--bidding", "--greed", strconv.FormatFloat(e.cfg.Demo.MinerGreed, 'f', -1, 64))
	}
	path := e.exe
	if e.oci != nil {
		// Inside a container: the binary the root file system carries,
		// and the socket where its directory is mounted.
		path = "/bin/maxwell"
		env = []string{"PATH=/bin", "MAXWELL_AGENT_SOCKET=" + filepath.Join(ociSockDir, filepath.Base(e.sock))}
	}
	return []experiment.AgentSpec{
		{Name: "scientist", Path: path, Env: env, Args: sci},
		{Name: "miner", Path: path, Env: env, Args: min},
	}
}

// newOCI builds a root file system holding busybox and this maxwell binary
// and returns a runc manager whose containers see the agent socket's
// directory at ociSockDir.
// With exe "" the root file system holds busybox alone.
func newOCI(ctx context.Context, a *app, log *slog.Logger, exe, sockDir string) (*oci.Manager, error) {
	root := filepath.Join(sockDir, "rootfs")
	rfs := oci.RootFS{Busybox: oci.DefaultBusybox}
	if exe != "" {
		rfs.Binaries = map[string]string{"/bin/maxwell": exe}
	}
	if err := rfs.Build(ctx, root); err != nil {
		return nil, fmt.Errorf("OCI root file system: %w", err)
	}
	o := oci.DefaultOptions()
	o.RootFS, o.CgroupRoot, o.ProcRoot, o.Logger = root, a.cgroupRoot, a.procRoot, log
	o.StateDir = filepath.Join(sockDir, "oci")
	o.Parent = "maxwell-oci-run-" + strconv.Itoa(os.Getpid())
	o.Mounts = []oci.Mount{{Source: sockDir, Destination: ociSockDir}}
	return oci.NewManager(ctx, o)
}
