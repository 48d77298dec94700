package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/kube"
	"github.com/maxwellhq/maxwell/internal/life"
)

// newPsCmd builds `maxwell ps`.
func newPsCmd(a *app) *cobra.Command {
	var all, asJSON, cluster bool
	var sock *string
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the daemon's cells: state, wallet, spending, bids",
		Long: `Ps lists the cells of the running daemon, with the host's temperature and
the current prices above them. Money is in credits (1 credit = 1 µJ); a
figure marked ~ is a model's estimate, not a measurement. Dead cells are
listed only with --all.

With --kubernetes it lists every node of the cluster instead, with its price
band, hot taint, price, temperature and cells, as each node's Maxwell agent
last published them on its Node object (no service of Maxwell's own is
asked); --kubeconfig, $KUBECONFIG or ~/.kube/config says where the API
server is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cluster {
				return psCluster(cmd, kubeconfig, asJSON)
			}
			c, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.State(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if !all {
					st.Cells = slices.DeleteFunc(st.Cells, func(c api.Cell) bool { return c.State == life.Dead })
				}
				st.Events, st.History = nil, nil
				return printJSON(cmd.OutOrStdout(), st)
			}
			return st.WriteTable(cmd.OutOrStdout(), all)
		},
	}
	sock = socketFlag(cmd)
	cmd.Flags().BoolVarP(&all, "all", "a", false, "list dead cells too")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the cells as JSON")
	cmd.Flags().BoolVar(&cluster, "kubernetes", false, "list every Kubernetes node's cells, from the nodes' maxwell.dev/node annotations")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "with --kubernetes: kubeconfig file (default $KUBECONFIG, ~/.kube/config)")
	return cmd
}

// psCluster prints the cluster view of `ps --kubernetes`.
func psCluster(cmd *cobra.Command, kubeconfig string, asJSON bool) error {
	cfg, err := kube.RESTConfig(kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("ps --kubernetes: %w", err)
	}
	nodes, err := kube.ClusterView(cmd.Context(), client)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), nodes)
	}
	return kube.WriteClusterTable(cmd.OutOrStdout(), nodes, time.Now())
}
