package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/celltest"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/kube"
	"github.com/maxwellhq/maxwell/internal/kube/kubetest"
	"github.com/maxwellhq/maxwell/internal/kube/podcgroup"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/life"
)

// kubeNode is one simulated Kubernetes node: the kubelet's part played by
// kubetest on this host's cgroups, and Maxwell's node daemon as its own
// process (this test binary as `maxwell daemon --kubernetes`), with its own
// sockets, ledger, cgroup parent and thermal twin.
type kubeNode struct {
	name string
	// ambient is the twin's ambient temperature: the node's heat load.
	ambient float64
	driver  podcgroup.Driver

	kubelet *kubetest.Kubelet
	dir     string
	sock    string
	agents  string
	ledger  string
	metrics string
	log     string
	cmd     *exec.Cmd
	exited  chan struct{}
	client  *api.Client
}

// nodeConfig is each node's configuration on top of the defaults: its twin
// in a room at ambient °C, cooled through 0.5 K/W so that the host's load
// (which every node's twin sees: they share this host's CPUs) moves it by
// at most 7.6 K, and a proportional controller (kp 0.4 per K, no
// integral), so that a node above its setpoint settles at a price that
// says how far above it is rather than winding up to the ceiling. These
// are the test's settings, not measurements.
func nodeConfig(ambient float64) string {
	return fmt.Sprintf(`thermal_twin:
  ambient_celsius: %g
  resistance_kelvin_per_watt: 0.5
engine:
  gains: {kp: 0.4, ki: 0, kd: 0}
`, ambient)
}

// start lays out the node's kubelet and starts its daemon.
func (n *kubeNode) start(t *testing.T, c *kubetest.Cluster, layout cell.Layout, exe, kubeconfig string) {
	t.Helper()
	naming := podcgroup.Naming{Driver: n.driver, Root: "/" + celltest.UniqueName("mxk8s")}
	n.kubelet = kubetest.StartKubelet(t, c.Client, kubetest.KubeletOptions{Node: n.name, Layout: layout, Naming: naming})
	n.dir = t.TempDir()
	n.sock, n.agents, n.ledger = filepath.Join(n.dir, "control.sock"), filepath.Join(n.dir, "agent.sock"), filepath.Join(n.dir, "ledger.db")
	n.log = filepath.Join(n.dir, "daemon.log")
	cfg := filepath.Join(n.dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(nodeConfig(n.ambient)), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.metrics = ln.Addr().String()
	ln.Close()
	logf, err := os.Create(n.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	n.cmd = exec.Command(exe, "--config", cfg, "daemon", "--kubernetes", "--node", n.name, "--kubeconfig", kubeconfig,
		"--kubelet-cgroup-root", naming.Root, "--socket", n.sock, "--agent-socket", n.agents, "--ledger", n.ledger,
		"--cgroup-parent", celltest.UniqueName("mxk8sd"), "--cpus", "0-1", "--metrics-addr", n.metrics,
		"--policy", filepath.Join(n.dir, "no-policy.yaml"))
	n.cmd.Env = append(os.Environ(), envAsMain+"=1")
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	// A test binary killed by its timeout leaves no daemon behind.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() {
			t.Logf("daemon of %s, its log ends:\n%s", n.name, tail(n.log, 4000))
		}
	})
	if n.client, err = api.Dial(n.sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.client.Close() })
	celltest.WaitFor(t, 30*time.Second, n.name+"'s daemon to answer", func() bool {
		select {
		case <-n.exited:
			t.Fatalf("the daemon of %s exited; its log ends:\n%s", n.name, tail(n.log, 4000))
		default:
		}
		_, err := n.client.Ping(context.Background())
		return err == nil
	})
}

// stop stops the daemon as a DaemonSet's pod is stopped (SIGTERM) and
// waits for it.
func (n *kubeNode) stop(t *testing.T) {
	t.Helper()
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(40 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
		t.Errorf("the daemon of %s did not stop within 40 s of SIGTERM", n.name)
	}
}

func (n *kubeNode) state(t *testing.T) api.State {
	t.Helper()
	st, err := n.client.State(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	return st
}

func (n *kubeNode) row(t *testing.T, name string) (api.Cell, bool) {
	t.Helper()
	for _, c := range n.state(t).Cells {
		if c.Name == name {
			return c, true
		}
	}
	return api.Cell{}, false
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// published reads a node's maxwell.dev/node annotation.
func published(ctx context.Context, c *kubetest.Cluster, node string) (kube.NodeAnnotation, *corev1.Node, bool) {
	nd, err := c.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return kube.NodeAnnotation{}, nil, false
	}
	var a kube.NodeAnnotation
	if json.Unmarshal([]byte(nd.Annotations[kube.AnnotationNode]), &a) != nil {
		return kube.NodeAnnotation{}, nd, false
	}
	return a, nd, true
}

func hasHotTaint(nd *corev1.Node) bool {
	return slices.ContainsFunc(nd.Spec.Taints, func(t corev1.Taint) bool {
		return t.Key == kube.TaintHot && t.Effect == corev1.TaintEffectNoSchedule
	})
}

// opted is a pod that opts in, running cmd (a busy loop by default).
func opted(name string, ann map[string]string, cmd ...string) *corev1.Pod {
	if len(cmd) == 0 {
		cmd = []string{"/bin/sh", "-c", "while :; do :; done"}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: ann, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "work", Image: "busybox", Command: cmd}}},
	}
}

// preferCheap is the affinity of deploy/kubernetes/example-pod.yaml.
var preferCheap = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
	PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
		{Weight: 100, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: kube.LabelPriceBand, Operator: corev1.NodeSelectorOpIn, Values: []string{"low"}}}}},
		{Weight: 30, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: kube.LabelPriceBand, Operator: corev1.NodeSelectorOpIn, Values: []string{"mid"}}}}},
	}}}

func podEvents(ctx context.Context, c *kubetest.Cluster, name string) []corev1.Event {
	l, err := c.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{"involvedObject.name": name}.String()})
	if err != nil {
		return nil
	}
	return l.Items
}

func hasPodEvent(ctx context.Context, c *kubetest.Cluster, pod, reason, contains string) bool {
	return slices.ContainsFunc(podEvents(ctx, c, pod), func(e corev1.Event) bool {
		return e.Reason == reason && strings.Contains(e.Message, contains)
	})
}

// TestKubernetesThreeNodes runs Maxwell on a Kubernetes cluster of three
// nodes against a real API server and scheduler (kubetest): three node
// daemons as separate processes, each with its own thermal twin in a
// room of a different temperature (30, 62 and 80 °C). It shows that
//
//   - each node publishes its band (low, mid, high) and the hottest its
//     hot taint, on its Node object and in its metrics;
//   - new pods that prefer cheap nodes land on the coolest, and its daemon
//     adopts them as cells named namespace/pod (one of them a Maxwell
//     agent, known on the agent socket by its PID), listed cluster-wide by
//     `ps --kubernetes` and funded by `fund namespace/pod`;
//   - a pod that goes bankrupt is evicted through the Eviction API while
//     the others keep running, governed;
//   - garbage annotations give a Warning Event and no adoption;
//   - with the API server down the economy goes on, and publishing
//     resumes when it is back;
//   - a pod deleted mid-tick has its wallet settled, the books balanced;
//   - when the node's daemon stops, nothing it governed is left frozen.
//
// The run, with its figures, is in docs/BENCHMARKS.md.
func TestKubernetesThreeNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the nodes' pods are laid out in real cgroups")
	}
	layout := celltest.HostLayout(t)
	begin := time.Now()
	c := kubetest.Start(t, kubetest.Options{Scheduler: true})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	rbac, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, rbac, false); err != nil {
		t.Fatal(err)
	}
	sa, err := c.ServiceAccountConfig(ctx, "maxwell-system", "maxwell-node-agent")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	agentKubeconfig, adminKubeconfig := filepath.Join(dir, "agent.kubeconfig"), filepath.Join(dir, "admin.kubeconfig")
	for f, cfg := range map[string]string{agentKubeconfig: c.Kubeconfig(sa), adminKubeconfig: c.Kubeconfig(c.Admin)} {
		if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cool := &kubeNode{name: "node-cool", ambient: 30, driver: podcgroup.Systemd}
	warm := &kubeNode{name: "node-warm", ambient: 62, driver: podcgroup.Cgroupfs}
	hot := &kubeNode{name: "node-hot", ambient: 80, driver: podcgroup.Systemd}
	nodes := []*kubeNode{cool, warm, hot}
	for _, n := range nodes {
		n.start(t, c, layout, exe, agentKubeconfig)
	}
	t.Logf("control plane and three node daemons up in %v", time.Since(begin).Round(100*time.Millisecond))

	// Bands and the hot taint, published by each node's agent.
	started := time.Now()
	want := map[string]kube.Band{cool.name: kube.BandLow, warm.name: kube.BandMid, hot.name: kube.BandHigh}
	celltest.WaitFor(t, 60*time.Second, "bands low, mid, high and the hot taint on the hottest", func() bool {
		for name, band := range want {
			_, nd, ok := published(ctx, c, name)
			if !ok || kube.Band(nd.Labels[kube.LabelPriceBand]) != band || hasHotTaint(nd) != (name == hot.name) {
				return false
			}
		}
		return true
	})
	t.Logf("bands and taint in place %v after the daemons answered", time.Since(started).Round(100*time.Millisecond))
	for _, n := range nodes {
		a, nd, _ := published(ctx, c, n.name)
		t.Logf("%s: band %s, hot taint %t, %.1f °C (setpoint %.0f), ×%.2f, reserve %d credits/slot (ceiling %d), source %s",
			n.name, nd.Labels[kube.LabelPriceBand], hasHotTaint(nd), a.Celsius, a.Setpoint, a.Multiplier, a.Reserve, a.Ceiling, a.Source)
		if a.Source != "estimated: model rc-twin" {
			t.Errorf("%s: temperature source %q; want the twin, marked estimated", n.name, a.Source)
		}
		if nd.Annotations[kube.AnnotationPrice] != strconv.FormatInt(int64(a.Reserve), 10) {
			t.Errorf("%s: price annotation %q, node annotation's reserve %d", n.name, nd.Annotations[kube.AnnotationPrice], a.Reserve)
		}
	}
	scrapeNodeSeries(t, cool)

	// New pods prefer cheap nodes: the scheduler puts them on the coolest.
	rich := map[string]string{kube.AnnotationWallet: "10000000000000", kube.AnnotationMaxBid: "2000000"}
	var placed []*corev1.Pod
	for i := range 2 {
		p := opted(fmt.Sprintf("placed-%d", i), rich)
		p.Spec.Affinity = preferCheap
		placed = append(placed, p)
	}
	// A Maxwell agent in a pod, reaching its node's agent socket (the
	// hostPath of example-pod.yaml); it waits a moment, as a container
	// that restarts until its pod is adopted would.
	sci := opted("scientist", rich, "/bin/sh", "-c", fmt.Sprintf("sleep 2; exec %s agent scientist --threads 1 --socket %s", exe, cool.agents))
	sci.Spec.Affinity = preferCheap
	placed = append(placed, sci)
	for i, p := range placed {
		if placed[i], err = c.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	scheduled := time.Now()
	for _, p := range placed {
		celltest.WaitFor(t, 60*time.Second, p.Name+" running and adopted", func() bool {
			got, err := c.Client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil || got.Status.Phase != corev1.PodRunning {
				return false
			}
			if got.Spec.NodeName != cool.name {
				t.Fatalf("%s scheduled on %s; want the coolest node, %s", p.Name, got.Spec.NodeName, cool.name)
			}
			_, ok := cool.row(t, "default/"+p.Name)
			return ok
		})
		r, _ := cool.row(t, "default/"+p.Name)
		tree := cool.kubelet.PodCgroup(p.UID)
		if r.OwnerUID != -1 || tree == nil || r.Cgroup != tree.Path() || !strings.HasPrefix(r.Backend, "adopted-") {
			t.Errorf("%s's cell: %+v; want owner -1, the pod's cgroup %v, an adopted backend", p.Name, r, tree)
		}
	}
	t.Logf("3 pods scheduled on %s and adopted %v after creation", cool.name, time.Since(scheduled).Round(100*time.Millisecond))
	celltest.WaitFor(t, 60*time.Second, "the scientist's counters, from its pod's agent", func() bool {
		r, _ := cool.row(t, "default/scientist")
		return r.Useful != nil && r.Useful.Work > 0
	})
	for _, n := range []*kubeNode{warm, hot} {
		if cells := n.state(t).Cells; len(cells) != 0 {
			t.Errorf("%s governs %d cells; want none (no pod preferred it)", n.name, len(cells))
		}
	}
	out, _, err := run(t, "fund", "--socket", cool.sock, "default/placed-0", "1000")
	if err != nil || !strings.Contains(out, "funded default/placed-0 with 1000 credits") {
		t.Errorf("fund default/placed-0: %q, %v", out, err)
	}
	celltest.WaitFor(t, 20*time.Second, "the coolest node's annotation to list its cells", func() bool {
		a, _, _ := published(ctx, c, cool.name)
		return len(a.Cells) == len(placed)
	})
	out, _, err = run(t, "ps", "--kubernetes", "--kubeconfig", adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"node-cool  low", "node-hot   high  hot", "node-cool  default/placed-0", "node-cool  default/scientist"} {
		if !strings.Contains(out, want) {
			t.Errorf("ps --kubernetes lacks %q:\n%s", want, out)
		}
	}
	t.Logf("maxwell ps --kubernetes:\n%s", out)

	// Bankruptcy: a pod with a few ticks' worth, evicted through the
	// Eviction API; the others keep running.
	bankrupt, err := c.Client.CoreV1().Pods("default").Create(ctx, func() *corev1.Pod {
		p := opted("bankrupt", map[string]string{kube.AnnotationWallet: "3000000", kube.AnnotationMaxBid: "2000000", kube.AnnotationOnInsolvency: "evict"})
		p.Spec.NodeName = cool.name
		return p
	}(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	celltest.WaitFor(t, 60*time.Second, "the bankrupt pod's eviction", func() bool {
		_, err := c.Client.CoreV1().Pods("default").Get(ctx, bankrupt.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	evicted := time.Now()
	if !hasPodEvent(ctx, c, bankrupt.Name, "MaxwellEvicted", "Eviction API") {
		t.Errorf("no MaxwellEvicted event on the bankrupt pod: %+v", podEvents(ctx, c, bankrupt.Name))
	}
	celltest.WaitFor(t, 20*time.Second, "the bankrupt pod's release", func() bool {
		return slices.ContainsFunc(cool.state(t).Events, func(e event.Event) bool { return e.Kind == event.Released && e.Cell == "default/bankrupt" })
	})
	st := cool.state(t)
	var bankruptcy time.Time
	for _, e := range st.Events {
		if e.Cell == "default/bankrupt" && e.Kind == event.Apoptosis {
			bankruptcy = e.Time
		}
	}
	if bankruptcy.IsZero() {
		t.Errorf("no apoptosis event for default/bankrupt in %+v", st.Events)
	} else {
		t.Logf("bankrupt pod: apoptosis at tick-time %s, pod gone %v later", bankruptcy.Format(time.TimeOnly), evicted.Sub(bankruptcy).Round(100*time.Millisecond))
	}
	for _, p := range placed {
		got, err := c.Client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.PodRunning || got.DeletionTimestamp != nil {
			t.Errorf("%s after the eviction: %v; want running", p.Name, err)
		}
		if pid := cool.kubelet.PID(p.UID, "work"); !celltest.Alive(pid) {
			t.Errorf("%s's process %d is gone", p.Name, pid)
		}
		if r, _ := cool.row(t, "default/"+p.Name); r.State == life.Dead {
			t.Errorf("%s's cell is dead", p.Name)
		}
	}

	// Garbage annotations: a Warning Event, no adoption.
	garbage, err := c.Client.CoreV1().Pods("default").Create(ctx, func() *corev1.Pod {
		p := opted("garbage", map[string]string{kube.AnnotationWallet: "lots", kube.AnnotationOnInsolvency: "explode"})
		p.Spec.NodeName = cool.name
		return p
	}(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	celltest.WaitFor(t, 30*time.Second, "the bad-annotation event", func() bool {
		return hasPodEvent(ctx, c, garbage.Name, "MaxwellBadAnnotation", `maxwell.dev/wallet="lots"`) &&
			hasPodEvent(ctx, c, garbage.Name, "MaxwellBadAnnotation", "want evict or hibernate")
	})
	celltest.WaitFor(t, 30*time.Second, "the garbage pod running", func() bool {
		got, err := c.Client.CoreV1().Pods("default").Get(ctx, garbage.Name, metav1.GetOptions{})
		return err == nil && got.Status.Phase == corev1.PodRunning
	})
	time.Sleep(time.Second) // time for an adoption, were one coming
	if _, ok := cool.row(t, "default/garbage"); ok {
		t.Error("a pod with garbage annotations was adopted")
	}

	// The API server away: the economy goes on; publishing resumes.
	before := cool.state(t)
	c.StopAPIServer()
	time.Sleep(3 * time.Second)
	during := cool.state(t)
	if ticks, want := during.Tick-before.Tick, uint64(during.Time.Sub(before.Time)/(200*time.Millisecond)); ticks < want {
		t.Errorf("%d ticks in the %v from before the API server stopped until 3 s after; want at least %d (half the tick rate): the economy goes on",
			ticks, during.Time.Sub(before.Time), want)
	}
	paid := func(st api.State, name string) float64 {
		for _, c := range st.Cells {
			if c.Name == name {
				return float64(c.Paid)
			}
		}
		return -1
	}
	if paid(during, "default/placed-0")+paid(during, "default/placed-1") <= paid(before, "default/placed-0")+paid(before, "default/placed-1") {
		t.Error("the pods paid nothing while the API server was away: not governed")
	}
	if err := c.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	celltest.WaitFor(t, 60*time.Second, "publishing to resume", func() bool {
		a, _, ok := published(ctx, c, cool.name)
		return ok && a.At.After(back)
	})
	t.Logf("API server stopped and started again: the economy ticked %d times in the %v from before the stop until 3 s after it; publishing resumed %v after the server answered again",
		during.Tick-before.Tick, during.Time.Sub(before.Time).Round(100*time.Millisecond), time.Since(back).Round(100*time.Millisecond))

	// A pod deleted mid-tick: its wallet settled, the books balanced.
	gone := placed[1]
	zero := int64(0)
	if err := c.Client.CoreV1().Pods("default").Delete(ctx, gone.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	celltest.WaitFor(t, 30*time.Second, "the deleted pod's release", func() bool {
		return slices.ContainsFunc(cool.state(t).Events, func(e event.Event) bool { return e.Kind == event.Released && e.Cell == "default/"+gone.Name })
	})
	checkBooks(t, cool.ledger, map[string]string{"default/" + gone.Name: "closed", "default/bankrupt": "closed", "default/placed-0": "open"})

	// The node's daemon stops: nothing it governed stays frozen, nothing
	// is killed, every wallet is settled.
	cool.stop(t)
	for _, p := range []*corev1.Pod{placed[0], placed[2]} {
		if tree := cool.kubelet.PodCgroup(p.UID); tree == nil || tree.Frozen() {
			t.Errorf("%s after its node's daemon stopped: cgroup %v frozen", p.Name, tree)
		}
	}
	// The scientist's agent ends when its host goes (as agents do); the
	// busy loop knows no host and runs on.
	if !celltest.Alive(cool.kubelet.PID(placed[0].UID, "work")) {
		t.Errorf("%s's process is gone after its node's daemon stopped", placed[0].Name)
	}
	checkBooks(t, cool.ledger, map[string]string{"default/placed-0": "closed", "default/scientist": "closed"})
}

// scrapeNodeSeries checks the node series beside the economy's metrics.
func scrapeNodeSeries(t *testing.T, n *kubeNode) {
	t.Helper()
	resp, err := http.Get("http://" + n.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`maxwell_node_reserve_price_credits{node="` + n.name + `"}`, `maxwell_node_thermal_headroom_celsius{node="` + n.name + `"}`,
		`maxwell_node_price_band{band="low",node="` + n.name + `"} 1`, "maxwell_reserve_price_credits"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s's metrics lack %s", n.name, want)
		}
	}
}

// checkBooks verifies a node's ledger (read-only, beside a running
// daemon) and the state of some wallets.
func checkBooks(t *testing.T, path string, wallets map[string]string) {
	t.Helper()
	ctx := context.Background()
	l, err := ledger.Open(ctx, path, ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK {
		t.Errorf("ledger %s: %+v, %v; want it to balance", path, rep, err)
	}
	for name, state := range wallets {
		a, err := l.Account(ctx, name)
		if err != nil || a.State != state {
			t.Errorf("wallet %s: %+v, %v; want %s", name, a, err, state)
			continue
		}
		if state == "closed" && a.FinalBalance == nil {
			t.Errorf("wallet %s closed without a final balance", name)
		}
	}
}
