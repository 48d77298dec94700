// Package daemon is `maxwell daemon`: Maxwell's economy (package economy)
// served for as long as the host lives — the agent protocol on the agent
// socket, the control API on the control socket, and Prometheus metrics
// over TCP; with Options.Kubernetes, the node agent (package kube) beside
// the economy, which adopts the node's opted-in pods as cells and
// publishes the node's price on its Node object.
//
// Lifecycle. A daemon takes a lock beside its control socket, so a second
// one refuses to start. At start its economy sweeps the cells a crashed
// predecessor left (thawed, killed, cgroups removed — the cell guard has
// usually done so already) and settles their wallets in the ledger, then
// continues the ledger's tick numbering. On stop it kills its cells and
// settles their wallets; a crash leaves that to the cell guard and the
// next start. It never leaves a cell frozen.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/maxwellhq/maxwell/internal/access"
	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/identity"
	"github.com/maxwellhq/maxwell/internal/kube"
	"github.com/maxwellhq/maxwell/internal/metrics"
)

// Options configure a daemon.
type Options struct {
	// Economy is what the daemon serves.
	Economy economy.Options
	// ControlSocket serves the control API.
	ControlSocket string
	// Group, if set, may connect to the control socket besides root;
	// what its members may do there is the policy's.
	Group string
	// PolicyFile is the access policy (package access); "" or a missing
	// file means none: root may do anything, and Group's members may
	// spawn and act on their own cells, as themselves, without limits.
	PolicyFile string
	// MetricsAddr, if set, serves Prometheus metrics over TCP at
	// /metrics, and the tick loop's liveness at /healthz (package
	// metrics; docs/METRICS.md).
	MetricsAddr string
	// MetricsDeadGrace is how long a dead cell's series stay in the
	// metrics; 0 means metrics.DefaultDeadGrace.
	MetricsDeadGrace time.Duration
	// Adopt lets root adopt cgroups that someone else made through the
	// control API (`maxwell adopt`); without it the API answers that this
	// daemon does not adopt. The node agent adopts its pods either way.
	Adopt bool
	// Kubernetes, if set, runs the node agent (package kube) beside the
	// economy: the opted-in pods of the node become adopted cells, and
	// the node's price is published on its Node object.
	Kubernetes *KubeOptions
	Log        *slog.Logger
	// Reload, if set, makes the daemon read its configuration (by
	// LoadConfig) and its policy file again at every receive, as on
	// SIGHUP: each is validated first; a bad one is refused with an
	// event and the old one kept (economy.Reconfigure says what applies
	// at once and what waits for a restart).
	Reload     <-chan struct{}
	LoadConfig func() (config.Config, error)
	// Ready, if set, is called once every socket is serving.
	Ready func()
}

// Run runs a daemon until ctx ends. Every check that can fail at start —
// the socket group, the policy, the Kubernetes node and configuration,
// the single-daemon lock, the metrics address — runs before anything is
// created; if one fails, nothing is left behind.
func Run(ctx context.Context, opts Options) error {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Economy.Log = opts.Log
	opts.Economy.SocketGID = -1
	if opts.Group != "" {
		gid, err := identity.LookupGroup(opts.Group)
		if err != nil {
			return err
		}
		opts.Economy.SocketGID = gid
	}
	policy := access.Default(opts.Economy.SocketGID)
	if opts.PolicyFile != "" {
		var err error
		if policy, err = access.Load(opts.PolicyFile, opts.Economy.SocketGID); err != nil {
			return err
		}
	}
	var client kubernetes.Interface
	if opts.Kubernetes != nil {
		var err error
		if client, err = kubeClient(*opts.Kubernetes); err != nil {
			return err
		}
	}
	lock, err := api.Lock(opts.ControlSocket)
	if err != nil {
		return err
	}
	defer lock.Release()
	var ln net.Listener
	var exp *metrics.Exporter
	var econ *economy.Economy
	if opts.MetricsAddr != "" {
		if ln, err = net.Listen("tcp", opts.MetricsAddr); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		defer ln.Close()
		// The exporter reads econ, opened below, only once it serves.
		if exp, err = metrics.New(metrics.Options{State: func(ctx context.Context) (api.State, error) { return econ.State(ctx) },
			DeadGrace: opts.MetricsDeadGrace, Tick: opts.Economy.Config.Engine.Tick}); err != nil {
			return err
		}
		if prev := opts.Economy.OnStep; prev != nil {
			opts.Economy.OnStep = func(s engine.Step) { exp.ObserveStep(s); prev(s) }
		} else {
			opts.Economy.OnStep = exp.ObserveStep
		}
	}
	econ, err = economy.Open(ctx, opts.Economy)
	if err != nil {
		return err
	}
	var agent *kube.Agent
	if opts.Kubernetes != nil {
		if agent, err = newAgent(*opts.Kubernetes, client, econ, opts.Log); err != nil {
			return errors.Join(err, econ.Close())
		}
	}
	// With a policy of rules, anyone may connect and the policy decides.
	ctl, err := api.Listen(opts.ControlSocket, api.Access{Group: opts.Group, Anyone: policy.Delegates()})
	if err != nil {
		return errors.Join(err, econ.Close())
	}

	// The economy outlives the agent: on the way out the agent releases
	// its pods (settling their wallets) before the economy stops.
	ectx, stopEconomy := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEconomy()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg, econWG sync.WaitGroup
	errc := make(chan error, 6)
	start := func(wg *sync.WaitGroup, name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	start(&econWG, "economy", func() error {
		err := econ.Run(ectx)
		cancel() // an economy that stopped on its own stops the daemon
		return err
	})
	control := access.New(econ, policy, opts.Log)
	var ctlBackend api.Backend = control
	if opts.Reload != nil {
		r := reloader{econ: econ, ctl: control, load: opts.LoadConfig, policyFile: opts.PolicyFile, socketGID: opts.Economy.SocketGID, log: opts.Log}
		start(&wg, "reload", func() error { return r.run(ctx, opts.Reload) })
	}
	if !opts.Adopt {
		// Only the Backend's methods: the API answers adopt with
		// unsupported.
		ctlBackend = struct{ api.Backend }{ctlBackend}
	}
	start(&wg, "control API", func() error {
		return api.NewServer(ctlBackend, api.Options{Log: opts.Log, CellOf: econ.CellForPID}).Serve(ctx, ctl)
	})
	if agent != nil {
		start(&wg, "kubernetes node agent", func() error { return agent.Run(ctx) })
	}
	if ln != nil {
		var err error
		if agent != nil {
			err = exp.Register(agent.Collector())
		}
		if err != nil {
			cancel()
			errc <- err
		} else {
			srv := &http.Server{Handler: exp.Handler(), ReadHeaderTimeout: 10 * time.Second}
			start(&wg, "metrics", func() error {
				go func() { <-ctx.Done(); srv.Close() }()
				if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			})
		}
	}
	kubeNode := ""
	if opts.Kubernetes != nil {
		kubeNode = opts.Kubernetes.Node
	}
	opts.Log.Info("daemon ready", "control", opts.ControlSocket, "agents", opts.Economy.AgentSocket,
		"ledger", opts.Economy.LedgerPath, "cpus", opts.Economy.CPUs, "policy", policy.Describe(),
		"adopt", opts.Adopt, "kubernetes_node", kubeNode)
	if opts.Ready != nil {
		opts.Ready()
	}
	<-ctx.Done()
	wg.Wait()
	stopEconomy()
	econWG.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
