// Package daemon is `maxwell daemon`: Maxwell's economy (package economy)
// served for as long as the host lives — the agent protocol on the agent
// socket, the control API on the control socket, and Prometheus metrics
// over TCP.
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

	"github.com/maxwellhq/maxwell/internal/access"
	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/identity"
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
	// MetricsAddr, if set, serves Prometheus metrics over TCP.
	MetricsAddr string
	Log         *slog.Logger
	// Ready, if set, is called once every socket is serving.
	Ready func()
}

// Run runs a daemon until ctx ends. Every check that can fail at start —
// the socket group, the policy, the single-daemon lock, the metrics
// address — runs
// before anything is created; if one fails, nothing is left behind.
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
	lock, err := api.Lock(opts.ControlSocket)
	if err != nil {
		return err
	}
	defer lock.Release()
	var ln net.Listener
	if opts.MetricsAddr != "" {
		if ln, err = net.Listen("tcp", opts.MetricsAddr); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		defer ln.Close()
	}
	econ, err := economy.Open(ctx, opts.Economy)
	if err != nil {
		return err
	}
	// With a policy of rules, anyone may connect and the policy decides.
	ctl, err := api.Listen(opts.ControlSocket, api.Access{Group: opts.Group, Anyone: policy.Delegates()})
	if err != nil {
		return errors.Join(err, econ.Close())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	run("economy", func() error { return econ.Run(ctx) })
	ctlBackend := access.New(econ, policy, opts.Log)
	run("control API", func() error {
		return api.NewServer(ctlBackend, api.Options{Log: opts.Log, CellOf: econ.CellForPID}).Serve(ctx, ctl)
	})
	if ln != nil {
		srv := &http.Server{Handler: metrics.Handler(econ.State), ReadHeaderTimeout: 10 * time.Second}
		run("metrics", func() error {
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	opts.Log.Info("daemon ready", "control", opts.ControlSocket, "agents", opts.Economy.AgentSocket,
		"ledger", opts.Economy.LedgerPath, "cpus", opts.Economy.CPUs, "policy", policy.Describe())
	if opts.Ready != nil {
		opts.Ready()
	}
	<-ctx.Done()
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
