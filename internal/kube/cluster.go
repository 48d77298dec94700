package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig returns how to reach the API server: the kubeconfig file at
// path if given; else $KUBECONFIG or ~/.kube/config; else, inside a pod,
// its service account (client-go's usual order).
func RESTConfig(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		where := "$KUBECONFIG, ~/.kube/config or a pod's service account"
		if path != "" {
			where = path
		}
		return nil, fmt.Errorf("kube: no API server to talk to (from %s): %w", where, err)
	}
	cfg.UserAgent = "maxwell"
	return cfg, nil
}

// NodeView is one node as the cluster sees it: what its agent published
// on the Node object.
type NodeView struct {
	Node string
	// Band and Hot are the node's label and taint, as the scheduler sees
	// them.
	Band Band
	Hot  bool
	// Published is the agent's last NodeAnnotation; nil where the node
	// has none (no Maxwell agent) or it cannot be read (Problem says
	// why).
	Published *NodeAnnotation
	Problem   string
}

// ClusterView reads every node's published price and cells: the cluster
// view of `maxwell ps --kubernetes`, without any service of Maxwell's own
// (each node's agent wrote its Node object).
func ClusterView(ctx context.Context, client kubernetes.Interface) ([]NodeView, error) {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("kube: listing nodes: %w", err)
	}
	out := make([]NodeView, 0, len(nodes.Items))
	for _, n := range nodes.Items {
		v := NodeView{Node: n.Name, Band: Band(n.Labels[LabelPriceBand])}
		v.Hot = slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == TaintHot })
		switch js, ok := n.Annotations[AnnotationNode]; {
		case !ok:
			v.Problem = "no " + AnnotationNode + " annotation: no Maxwell node agent publishes here"
		default:
			var a NodeAnnotation
			if err := json.Unmarshal([]byte(js), &a); err != nil {
				v.Problem = fmt.Sprintf("%s is not Maxwell's JSON: %v", AnnotationNode, err)
				break
			}
			v.Published = &a
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b NodeView) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// WriteClusterTable prints the nodes (band, hot taint, price, temperature
// and its source, when published, relative to now) and then every node's
// cells. A temperature marked ~ is a model's estimate.
func WriteClusterTable(w io.Writer, nodes []NodeView, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tBAND\tHOT\tPRICE\tCEILING\t×\tTEMP\tSETPOINT\tSOURCE\tPUBLISHED")
	cells := 0
	for _, n := range nodes {
		hot := "-"
		if n.Hot {
			hot = "hot"
		}
		a := n.Published
		if a == nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t%s\t-\n", n.Node, orDash(string(n.Band)), hot, n.Problem)
			continue
		}
		cells += len(a.Cells)
		tilde := ""
		if strings.HasPrefix(a.Source, "estimated") {
			tilde = "~"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.2f\t%s%.1f °C\t%.1f °C\t%s\t%s ago\n", n.Node, orDash(string(n.Band)), hot,
			a.Reserve, a.Ceiling, a.Multiplier, tilde, a.Celsius, a.Setpoint, a.Source, now.Sub(a.At).Round(time.Second))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cells == 0 {
		_, err := fmt.Fprintln(w, "no cells")
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCELL\tSTATE\tBALANCE")
	for _, n := range nodes {
		if n.Published == nil {
			continue
		}
		for _, c := range n.Published.Cells {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", n.Node, c.Name, c.State, c.Balance)
		}
		if k := n.Published.CellsOmitted; k > 0 {
			fmt.Fprintf(tw, "%s\t(%d more not published)\t\t\n", n.Node, k)
		}
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
