package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/access"
	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/calibrate"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/daemon"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/metrics"
)

func newDaemonCmd(a *app) *cobra.Command {
	var (
		control, agents, group, ledgerPath, metricsAddr, cpus, parent, policy, logDir, profile string
		adopt, kubernetes                                                                      bool
		deadGrace                                                                              time.Duration
		kubeOpts                                                                               daemon.KubeOptions
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run Maxwell's economy for as long as the host lives",
		Long: `Run the engine: every tick, price CPU time from the temperature, sell the
CPUs in an auction, charge winners and memory churners in the ledger, and kill
(or hibernate) whoever cannot pay. Programs join with ` + "`maxwell spawn`" + `; agents
that speak the protocol find it at the agent socket; operators use ` + "`maxwell ps`" + `,
` + "`fund`, `kill` and `top`" + ` over the control socket (root, or --group).

The daemon knows each caller from the kernel (SO_PEERCRED). Root may do
anything; members of --group, or the users and groups of the --policy file,
act on their own cells only, and their cells run as themselves, never as
root. A process inside a cell may only read its own wallet. See
docs/SECURITY.md.

Only one daemon runs per control socket, and one per cgroup parent
(--cgroup-parent): a second on either refuses to start. Stopping it (SIGINT,
SIGTERM) kills its cells and settles their wallets; after a crash the cell
guard thaws and kills them and the next start settles the wallets. No cell
is left frozen.

With --adopt, root may also put cgroups that someone else made under the
economy (` + "`maxwell adopt`" + `); Maxwell never starts or kills their processes.

With --kubernetes the daemon is also the node agent of a Kubernetes node
(--node): the pods of that node that opt in with maxwell.dev/ annotations
become adopted cells named namespace/pod (` + "`maxwell fund default/web-0`" + `),
and the node's price is published on its Node object (annotations, the
maxwell.dev/price-band label, the maxwell.dev/hot taint) and in the metrics.
It reaches the API server through --kubeconfig, else $KUBECONFIG or
~/.kube/config, else its pod's service account. See docs/DEPLOY.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			cpuList, err := runCPUs(cpus)
			if err != nil {
				return err
			}
			log, err := a.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if logDir == "" {
				logDir = filepath.Join(filepath.Dir(ledgerPath), "logs")
			}
			if agents == "" {
				agents = filepath.Join(filepath.Dir(control), "agent.sock")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer func() { signal.Stop(hup); close(hup) }()
			reload := make(chan struct{}, 1)
			go func() {
				for range hup {
					select {
					case reload <- struct{}{}:
					default: // one is pending already
					}
				}
			}()
			if err := os.MkdirAll(filepath.Dir(control), 0o755); err != nil {
				return fmt.Errorf("control socket directory: %w", err)
			}
			opts := daemon.Options{
				Economy: economy.Options{Config: cfg, Roots: a.roots(), CgroupRoot: a.cgroupRoot, CellParent: parent,
					AgentSocket: agents, LedgerPath: ledgerPath, LogDir: logDir, CPUs: cpuList, ProfilePath: profile},
				ControlSocket: control, Group: group, PolicyFile: policy, MetricsAddr: metricsAddr, MetricsDeadGrace: deadGrace, Log: log,
				Adopt: adopt, Reload: reload, LoadConfig: a.config,
			}
			if kubernetes {
				opts.Kubernetes = &kubeOpts
			} else if f := cmd.Flags(); f.Changed("node") || f.Changed("kubeconfig") || f.Changed("kubelet-cgroup-root") {
				return fmt.Errorf("--node, --kubeconfig and --kubelet-cgroup-root are for --kubernetes")
			}
			return daemon.Run(ctx, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&control, "socket", api.DefaultSocket(), "control API socket")
	f.StringVar(&agents, "agent-socket", "", "agent protocol socket (default: agent.sock beside the control socket)")
	f.StringVar(&group, "group", "", "group allowed to connect to the control socket besides root")
	f.StringVar(&policy, "policy", access.DefaultPolicyPath, "who may spawn, with what limits (a missing file: root, and --group without limits)")
	f.StringVar(&ledgerPath, "ledger", ledger.DefaultPath(), "ledger database")
	f.StringVar(&profile, "profile", calibrate.DefaultProfilePath(), `host profile from maxwell calibrate, used where it exists ("" for none)`)
	f.StringVar(&logDir, "log-dir", "", "where each cell's standard output and error are kept, rotated (default: logs/ beside the ledger; maxwell logs NAME)")
	f.StringVar(&metricsAddr, "metrics-addr", "", `serve Prometheus metrics (/metrics) and liveness (/healthz) on this TCP address, e.g. "127.0.0.1:9464"`)
	f.DurationVar(&deadGrace, "metrics-dead-grace", metrics.DefaultDeadGrace, "how long a dead cell's series stay in the metrics (0: the default; negative: none at all)")
	f.StringVar(&cpus, "cpus", "", "CPUs to sell (default: every CPU Maxwell may use)")
	f.StringVar(&parent, "cgroup-parent", cell.DefaultOptions().Parent, "cgroup that holds this daemon's cells: one daemon per parent (it sweeps it at start)")
	f.BoolVar(&adopt, "adopt", false, "let root adopt existing cgroups over the control API (maxwell adopt)")
	f.BoolVar(&kubernetes, "kubernetes", false, "also be this Kubernetes node's agent: adopt its opted-in pods, publish its price")
	f.StringVar(&kubeOpts.Node, "node", "", "with --kubernetes: this node's name (the DaemonSet passes spec.nodeName)")
	f.StringVar(&kubeOpts.Kubeconfig, "kubeconfig", "", "with --kubernetes: kubeconfig file (default $KUBECONFIG, ~/.kube/config, else the pod's service account)")
	f.StringVar(&kubeOpts.KubeletCgroupRoot, "kubelet-cgroup-root", "", "with --kubernetes: the kubelet's --cgroup-root, if not the default (pods are found with either cgroup driver)")
	return cmd
}
