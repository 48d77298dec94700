package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"k8s.io/client-go/kubernetes"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/kube"
	"github.com/maxwellhq/maxwell/internal/kube/podcgroup"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"
)

// KubeOptions configure the Kubernetes node agent a daemon runs beside
// its economy (`maxwell daemon --kubernetes`).
type KubeOptions struct {
	// Node is this node's name, as its pods' spec.nodeName says.
	Node string
	// Kubeconfig is the kubeconfig file; "" means $KUBECONFIG,
	// ~/.kube/config, else the pod's service account (kube.RESTConfig).
	Kubeconfig string
	// KubeletCgroupRoot is the kubelet's --cgroup-root; "" is its
	// default, the hierarchies' root. Pods are looked for with both
	// cgroup drivers below it.
	KubeletCgroupRoot string
	// Agent, if set, tunes the agent (publishing rate, band hysteresis,
	// hot taint); Node, Client, Economy, Finder and Logger are the
	// daemon's.
	Agent kube.Options
}

// kubeClient checks the options and makes the agent's client: before
// anything else is created, so that a daemon that cannot reach Kubernetes
// leaves nothing behind.
func kubeClient(opts KubeOptions) (kubernetes.Interface, error) {
	if opts.Node == "" {
		return nil, errors.New("--kubernetes needs the node's name (--node; the DaemonSet passes spec.nodeName)")
	}
	cfg, err := kube.RESTConfig(opts.Kubeconfig)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	return client, nil
}

// newAgent builds the node agent over econ.
func newAgent(opts KubeOptions, client kubernetes.Interface, econ *economy.Economy, log *slog.Logger) (*kube.Agent, error) {
	a := opts.Agent
	a.Node, a.Client, a.Economy, a.Logger = opts.Node, client, nodeEconomy{econ}, log
	a.Finder = podcgroup.Finder{Layout: econ.CgroupLayout(), Namings: []podcgroup.Naming{
		{Driver: podcgroup.Systemd, Root: opts.KubeletCgroupRoot},
		{Driver: podcgroup.Cgroupfs, Root: opts.KubeletCgroupRoot},
	}}
	return kube.New(a)
}

// nodeEconomy is the economy as the node agent sees it (kube.Economy): an
// adapter, so that package economy does not depend on client-go.
type nodeEconomy struct{ e *economy.Economy }

var _ kube.Economy = nodeEconomy{}

// insolvency maps a pod's policy to an adopted cell's.
var insolvency = map[kube.Insolvency]api.Insolvency{kube.Evict: api.InsolvencyStop, kube.Hibernate: api.InsolvencyFreeze}

// Adopt implements kube.Economy: the pod's cgroup becomes a cell, named
// "namespace/pod" (or namespace/pod/N for a later incarnation).
func (n nodeEconomy) Adopt(ctx context.Context, req kube.AdoptRequest) (string, error) {
	t := req.Terms
	info, err := n.e.AdoptCell(ctx, economy.AdoptSpec{
		Name: req.Name, Incarnate: true, Cgroup: req.Cgroup,
		Wallet: t.Wallet, TapRate: t.Tap, MaxBid: t.MaxBid, Units: t.Units,
		OnInsolvency: insolvency[t.OnInsolvency], Owner: req.Owner,
	})
	switch {
	case errors.Is(err, api.ErrExists):
		return "", fmt.Errorf("%w: %w", cell.ErrExists, err)
	case errors.Is(err, api.ErrBadRequest):
		return "", fmt.Errorf("%w: %w", kube.ErrRefused, err)
	case err != nil:
		return "", err
	}
	return info.Name, nil
}

// Release implements kube.Economy.
func (n nodeEconomy) Release(ctx context.Context, name string) (units.Credits, error) {
	left, err := n.e.Release(ctx, name)
	if errors.Is(err, api.ErrNotFound) {
		return 0, fmt.Errorf("%w: %w", kube.ErrUnknownCell, err)
	}
	return left, err
}

// Report implements kube.Economy, from the economy's last decision.
func (n nodeEconomy) Report(ctx context.Context) (kube.NodeReport, error) {
	st, err := n.e.State(ctx)
	if err != nil {
		return kube.NodeReport{}, err
	}
	if st.Tick == 0 {
		return kube.NodeReport{}, kube.ErrNotReady
	}
	ceiling, maxMult := n.e.PriceCeiling()
	r := kube.NodeReport{
		Reserve: st.Reserve, Ceiling: ceiling, Multiplier: st.Multiplier, MaxMultiplier: maxMult,
		Temperature: units.Celsius(st.Temperature.Celsius), Setpoint: units.Celsius(st.Temperature.Setpoint),
		Source: source(st.Temperature),
	}
	for _, c := range st.Cells {
		if c.State != life.Dead {
			r.Cells = append(r.Cells, kube.CellReport{Name: c.Name, State: string(c.State), Balance: c.Balance})
		}
	}
	return r, nil
}

// source says where the temperature came from, in a few words: "measured:
// KIND NAME" from a sensor, "estimated: model NAME" from a model (its
// parameters are in the daemon's state and log).
func source(t api.Temperature) string {
	s := t.Source
	switch {
	case t.Error != "":
		return "unreadable (fail-safe, price at its ceiling): " + t.Error
	case s.Estimated:
		return "estimated: " + s.Kind + " " + s.Name
	}
	return "measured: " + s.Kind + " " + s.Name
}
