package kube_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/celltest"
	"github.com/maxwellhq/maxwell/internal/cgroupfs"
	"github.com/maxwellhq/maxwell/internal/kube"
	"github.com/maxwellhq/maxwell/internal/kube/kubetest"
	"github.com/maxwellhq/maxwell/internal/kube/podcgroup"
	"github.com/maxwellhq/maxwell/internal/units"
)

// One control plane for the package, started by the first test that needs
// it and stopped after the last.
var (
	sharedOnce sync.Once
	shared     *kubetest.Cluster
	sharedErr  error
)

func TestMain(m *testing.M) {
	cell.RunShimIfRequested()
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

// cluster returns the package's control plane (API server, etcd,
// scheduler), with the agent's RBAC from deploy/kubernetes applied,
// skipping the test with the reason where the binaries are missing.
func cluster(t *testing.T) *kubetest.Cluster {
	t.Helper()
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		shared, sharedErr = kubetest.New(ctx, kubetest.Options{Scheduler: true})
		if sharedErr == nil {
			rbac, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", "rbac.yaml"))
			if err == nil {
				err = shared.Create(ctx, rbac, false)
			}
			sharedErr = err
		}
	})
	kubetest.SkipIfMissing(t, sharedErr)
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// economy is a small fake of the node's economy (Maxwell's side of the
// kube.Economy interface) over REAL adopted cells: Adopt adopts the pod's
// cgroup with cell.Manager.Adopt, Bankrupt applies the pod's insolvency
// policy to the real cell (Kill asks the agent's Owner to evict; Pause
// freezes the cgroup), Fund thaws a hibernating one, Release closes the
// cell and settles the wallet.
type economy struct {
	m *cell.Manager

	mu       sync.Mutex
	report   kube.NodeReport
	cells    map[string]*ecell
	released map[string]units.Credits
	reports  int
}

type ecell struct {
	c       cell.Cell
	terms   kube.Terms
	balance units.Credits
	frozen  bool
	cgroup  string
}

func newEconomy(t *testing.T, multiplier float64) *economy {
	t.Helper()
	m, err := cell.NewManager(cell.Options{Parent: celltest.UniqueName("mxkubeecon")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	e := &economy{m: m, cells: map[string]*ecell{}, released: map[string]units.Credits{}}
	e.setMultiplier(multiplier)
	return e
}

func (e *economy) setMultiplier(mult float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// A twin-like node: setpoint 70 °C, each 0.1 of multiplier a degree
	// hotter (a made-up figure of this fake, not a measurement).
	e.report = kube.NodeReport{
		Reserve: units.Credits(1000 * mult), Ceiling: 4000, Multiplier: mult, MaxMultiplier: 4,
		Temperature: units.Celsius(60 + 10*(mult-1)), Setpoint: 70, Source: "estimated: kube_test fake economy",
	}
}

func (e *economy) Adopt(ctx context.Context, req kube.AdoptRequest) (string, error) {
	c, err := e.m.Adopt(ctx, cell.AdoptSpec{Name: req.Name, Cgroup: req.Cgroup, Owner: req.Owner})
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cells[req.Name] = &ecell{c: c, terms: req.Terms, balance: req.Terms.Wallet, cgroup: req.Cgroup}
	return req.Name, nil
}

func (e *economy) Release(_ context.Context, name string) (units.Credits, error) {
	e.mu.Lock()
	ec, ok := e.cells[name]
	delete(e.cells, name)
	e.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("%w: %s", kube.ErrUnknownCell, name)
	}
	err := ec.c.Close()
	e.mu.Lock()
	e.released[name] = ec.balance
	e.mu.Unlock()
	return ec.balance, err
}

func (e *economy) Report(context.Context) (kube.NodeReport, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reports++
	r := e.report
	for n, c := range e.cells {
		st := "running"
		if c.frozen {
			st = "hibernating"
		}
		r.Cells = append(r.Cells, kube.CellReport{Name: n, State: st, Balance: c.balance})
	}
	sort.Slice(r.Cells, func(i, j int) bool { return r.Cells[i].Name < r.Cells[j].Name })
	return r, nil
}

// Bankrupt empties a cell's wallet and applies its policy, as the engine
// does on insolvency: Kill (the Owner evicts) or Pause (hibernate).
func (e *economy) Bankrupt(ctx context.Context, name string) error {
	e.mu.Lock()
	ec := e.cells[name]
	e.mu.Unlock()
	if ec == nil {
		return fmt.Errorf("no cell %s", name)
	}
	ec.balance = -1
	if ec.terms.OnInsolvency == kube.Hibernate {
		ec.frozen = true
		return ec.c.Pause(ctx)
	}
	return ec.c.Kill(ctx)
}

// Fund credits a wallet and wakes a hibernating cell that can pay again.
func (e *economy) Fund(ctx context.Context, name string, n units.Credits) error {
	e.mu.Lock()
	ec := e.cells[name]
	e.mu.Unlock()
	if ec == nil {
		return fmt.Errorf("no cell %s", name)
	}
	ec.balance += n
	if ec.frozen && ec.balance >= 0 {
		ec.frozen = false
		return ec.c.Resume(ctx)
	}
	return nil
}

func (e *economy) cell(name string) *ecell {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cells[name]
}

func (e *economy) settled(name string) (units.Credits, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.released[name]
	return b, ok
}

// node is one simulated node: the kubelet's part, a fake economy, and the
// real agent under test, with the agent's own least-privileged client.
type node struct {
	name    string
	kubelet *kubetest.Kubelet
	econ    *economy
	agent   *kube.Agent
	done    chan error
}

// agentClient returns a clientset as the agent's service account (RBAC
// from deploy/kubernetes/rbac.yaml).
func agentClient(t *testing.T, c *kubetest.Cluster) kubernetes.Interface {
	t.Helper()
	cfg, err := c.ServiceAccountConfig(testCtx(t, time.Minute), "maxwell-system", "maxwell-node-agent")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// groupLabel marks the nodes of one test, so that its pods can be kept
// off other tests' nodes (which the scheduler may still see).
const groupLabel = "maxwell.dev/test-group"

func startNode(t *testing.T, c *kubetest.Cluster, name string, multiplier float64, opts kube.Options) *node {
	t.Helper()
	layout := celltest.HostLayout(t)
	naming := podcgroup.Naming{Driver: podcgroup.Systemd, Root: "/" + celltest.UniqueName("mxkubelet")}
	n := &node{name: name, econ: newEconomy(t, multiplier), done: make(chan error, 1)}
	n.kubelet = kubetest.StartKubelet(t, c.Client, kubetest.KubeletOptions{Node: name, Layout: layout, Naming: naming, Labels: map[string]string{groupLabel: t.Name()}})
	opts.Node = name
	opts.Client = agentClient(t, c)
	opts.Economy = n.econ
	opts.Finder = podcgroup.Finder{Layout: layout, Namings: []podcgroup.Naming{naming, {Driver: podcgroup.Cgroupfs, Root: naming.Root}}}
	if opts.PublishEvery == 0 {
		opts.PublishEvery = time.Second
	}
	if opts.Bands == (kube.BandPolicy{}) {
		opts.Bands = kube.BandPolicy{MidAt: 1.0 / 3, HighAt: 2.0 / 3, Margin: 0.05, Dwell: time.Second}
	}
	if opts.Hot == (kube.HotPolicy{}) {
		opts.Hot = kube.HotPolicy{AtCeiling: 0.99, OnAfter: time.Second, OffAfter: 2 * time.Second}
	}
	a, err := kube.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	n.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	go func() { n.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-n.done:
			if err != nil {
				t.Errorf("agent %s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent %s did not stop", name)
		}
		_ = c.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return n
}

// busyPod is a pod whose container burns CPU, opted in with annotations.
func busyPod(name string, ann map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: ann, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "work", Image: "busybox", Command: []string{"sh", "-c", "while :; do :; done"}}},
		},
	}
}

// poll calls cond every 50 ms until it holds or ctx ends.
func poll(ctx context.Context, what string, cond func() bool) error {
	err := cgroupfs.Poll(ctx, func() (bool, error) {
		if cond() {
			return true, nil
		}
		time.Sleep(50 * time.Millisecond)
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

func events(t *testing.T, ctx context.Context, c *kubetest.Cluster, pod *corev1.Pod) []corev1.Event {
	t.Helper()
	l, err := c.Client.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.name": pod.Name, "involvedObject.uid": string(pod.UID)}.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func hasEvent(evs []corev1.Event, reason, contains string) bool {
	return slices.ContainsFunc(evs, func(e corev1.Event) bool {
		return e.Reason == reason && strings.Contains(e.Message, contains)
	})
}

func bindTo(p *corev1.Pod, node string) *corev1.Pod {
	p.Spec.NodeName = node
	return p
}

func createPod(t *testing.T, ctx context.Context, c *kubetest.Cluster, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	p, err := c.Client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		_ = c.Client.CoreV1().Pods(p.Namespace).Delete(context.Background(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	return p
}

// TestAgentOnePod: a pod bound to the node is adopted (its real cgroup, as
// the kubelet laid it out), hibernates when bankrupt (its processes
// really frozen) and wakes when funded; garbage annotations give a
// Warning Event and no adoption; deleting the pod releases it and settles
// its wallet.
func TestAgentOnePod(t *testing.T) {
	c := cluster(t)
	ctx := testCtx(t, 90*time.Second)
	n := startNode(t, c, "node-one", 1, kube.Options{})

	good := createPod(t, ctx, c, bindTo(busyPod("hibernator", map[string]string{
		kube.AnnotationWallet: "5000", kube.AnnotationMaxBid: "20", kube.AnnotationOnInsolvency: "hibernate",
	}), n.name))
	bad := createPod(t, ctx, c, bindTo(busyPod("garbage", map[string]string{
		kube.AnnotationWallet: "lots", kube.AnnotationOnInsolvency: "explode",
	}), n.name))
	createPod(t, ctx, c, bindTo(busyPod("plain", nil), n.name))

	name := "default/hibernator"
	if err := poll(ctx, "adoption", func() bool { return n.econ.cell(name) != nil }); err != nil {
		t.Fatal(err)
	}
	ec := n.econ.cell(name)
	tree := n.kubelet.PodCgroup(good.UID)
	if tree == nil || ec.cgroup != tree.Path() {
		t.Fatalf("adopted cgroup %q; the kubelet laid the pod out at %v", ec.cgroup, tree)
	}
	if ec.terms != (kube.Terms{Wallet: 5000, MaxBid: 20, Units: 1, OnInsolvency: kube.Hibernate}) {
		t.Errorf("terms = %+v", ec.terms)
	}
	pid := n.kubelet.PID(good.UID, "work")
	if !ec.c.Contains(pid) {
		t.Errorf("the adopted cell does not contain the container's pid %d", pid)
	}
	if err := poll(ctx, "the adoption event", func() bool { return hasEvent(events(t, ctx, c, good), "MaxwellAdopted", tree.Path()) }); err != nil {
		t.Error(err)
	}
	if err := poll(ctx, "the bad-annotation event", func() bool {
		return hasEvent(events(t, ctx, c, bad), "MaxwellBadAnnotation", `maxwell.dev/wallet="lots"`)
	}); err != nil {
		t.Error(err)
	}
	if ev := events(t, ctx, c, bad); !hasEvent(ev, "MaxwellBadAnnotation", "want evict or hibernate") {
		t.Errorf("the event does not name every bad annotation: %+v", ev)
	}
	if n.econ.cell("default/garbage") != nil || n.econ.cell("default/plain") != nil {
		t.Error("a pod with bad or no annotations was adopted")
	}

	// Bankrupt: hibernate freezes the real cgroup; funding thaws it.
	if err := n.econ.Bankrupt(ctx, name); err != nil {
		t.Fatal(err)
	}
	if st, err := ec.c.Stats(); err != nil || !st.Frozen {
		t.Fatalf("after bankruptcy: %+v, %v; want frozen", st, err)
	}
	if err := n.econ.Fund(ctx, name, 100); err != nil {
		t.Fatal(err)
	}
	if st, err := ec.c.Stats(); err != nil || st.Frozen {
		t.Fatalf("after funding: %+v, %v; want running", st, err)
	}

	// Deleting the pod: released, wallet settled.
	if err := c.Client.CoreV1().Pods("default").Delete(ctx, good.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, "release", func() bool { _, ok := n.econ.settled(name); return ok }); err != nil {
		t.Fatal(err)
	}
	if b, _ := n.econ.settled(name); b != 99 {
		t.Errorf("settled with %d credits; want 99", b)
	}
}

// TestThreeNodes: three nodes at three temperatures; their agents publish
// bands and the hot taint; the stock kube-scheduler, by preferred node
// affinity on the band and the taint, puts new pods on the coolest node;
// a bankrupt pod set to evict is evicted through the Eviction API (held
// back while a PodDisruptionBudget forbids it), and the others keep
// running.
func TestThreeNodes(t *testing.T) {
	c := cluster(t)
	ctx := testCtx(t, 2*time.Minute)
	cool := startNode(t, c, "node-cool", 1.0, kube.Options{})
	warm := startNode(t, c, "node-warm", 2.5, kube.Options{})
	hot := startNode(t, c, "node-hot", 4.0, kube.Options{})
	want := map[string]string{cool.name: "low", warm.name: "mid", hot.name: "high"}
	if err := poll(ctx, "bands and the hot taint", func() bool {
		for name, band := range want {
			nd, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || nd.Labels[kube.LabelPriceBand] != band {
				return false
			}
			tainted := slices.ContainsFunc(nd.Spec.Taints, func(t corev1.Taint) bool {
				return t.Key == kube.TaintHot && t.Effect == corev1.TaintEffectNoSchedule
			})
			if tainted != (name == hot.name) {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}

	// New pods, placed by the scheduler: affinity as in
	// deploy/kubernetes/example-pod.yaml.
	affinity := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: groupLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{t.Name()}}},
		}}},
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
			{Weight: 100, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: kube.LabelPriceBand, Operator: corev1.NodeSelectorOpIn, Values: []string{"low"}}}}},
			{Weight: 30, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: kube.LabelPriceBand, Operator: corev1.NodeSelectorOpIn, Values: []string{"mid"}}}}},
		}}}
	var pods []*corev1.Pod
	for i := range 3 {
		p := busyPod(fmt.Sprintf("placed-%d", i), map[string]string{kube.AnnotationWallet: "100000", kube.AnnotationMaxBid: "10"})
		p.Spec.Affinity = affinity
		pods = append(pods, createPod(t, ctx, c, p))
	}
	for _, p := range pods {
		if err := poll(ctx, p.Name+" running", func() bool {
			got, err := c.Client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			return err == nil && got.Status.Phase == corev1.PodRunning
		}); err != nil {
			got, _ := c.Client.CoreV1().Pods("default").Get(context.Background(), p.Name, metav1.GetOptions{})
			t.Fatalf("%v; pod: node %q, status %+v", err, got.Spec.NodeName, got.Status)
		}
		got, _ := c.Client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
		if got.Spec.NodeName != cool.name {
			t.Errorf("%s scheduled on %s; want the coolest node %s", p.Name, got.Spec.NodeName, cool.name)
		}
		if err := poll(ctx, p.Name+" adopted", func() bool { return cool.econ.cell("default/"+p.Name) != nil }); err != nil {
			t.Fatal(err)
		}
	}

	// Bankruptcy of placed-0 while a PDB forbids any disruption: held.
	victim := pods[0]
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "keep-victim", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &intstr.IntOrString{Type: intstr.Int, IntVal: 1},
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": victim.Name}},
		},
	}
	created, err := c.Client.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// There is no controller manager: play the disruption controller's
	// part and say what it would (one pod, healthy, none may go).
	created.Status = policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: created.Generation, DisruptionsAllowed: 0, CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1,
	}
	if _, err := c.Client.PolicyV1().PodDisruptionBudgets("default").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cool.econ.Bankrupt(ctx, "default/"+victim.Name); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, "the eviction-blocked event", func() bool {
		return hasEvent(events(t, ctx, c, victim), "MaxwellEvictionBlocked", "")
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Client.CoreV1().Pods("default").Get(ctx, victim.Name, metav1.GetOptions{}); err != nil || got.DeletionTimestamp != nil {
		t.Fatalf("the PDB did not hold the eviction back: %v", err)
	}
	if err := c.Client.PolicyV1().PodDisruptionBudgets("default").Delete(ctx, pdb.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, "the eviction", func() bool {
		_, err := c.Client.CoreV1().Pods("default").Get(ctx, victim.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, "the victim's release", func() bool { _, ok := cool.econ.settled("default/" + victim.Name); return ok }); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods[1:] {
		got, err := c.Client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.PodRunning || got.DeletionTimestamp != nil {
			t.Errorf("%s after the eviction: %v; want still running", p.Name, err)
		}
		if pid := cool.kubelet.PID(p.UID, "work"); pid == 0 || !cgroupfs.Exists(fmt.Sprintf("/proc/%d", pid)) {
			t.Errorf("%s's process is gone", p.Name)
		}
		if cool.econ.cell("default/"+p.Name) == nil {
			t.Errorf("%s no longer governed", p.Name)
		}
	}
}

// TestAgentAPIServerOutage: with the API server stopped the economy goes
// on (the agent keeps reading it, its cells stay governed), and publishing
// resumes once the server is back. Node writes stay bounded by
// PublishEvery.
func TestAgentAPIServerOutage(t *testing.T) {
	c := cluster(t)
	ctx := testCtx(t, 2*time.Minute)
	n := startNode(t, c, "node-outage", 1, kube.Options{PublishEvery: 2 * time.Second})
	temp := func() string {
		nd, err := c.Client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return nd.Annotations[kube.AnnotationTemperature]
	}
	if err := poll(ctx, "the first publication", func() bool { return temp() == "60.0" }); err != nil {
		t.Fatal(err)
	}

	// Bounded rate: watch the node for 6 s.
	w, err := c.Client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + n.name})
	if err != nil {
		t.Fatal(err)
	}
	writes := 0
	end := time.After(6 * time.Second)
count:
	for {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Modified {
				writes++
			}
		case <-end:
			break count
		}
	}
	w.Stop()
	if writes > 4 {
		t.Errorf("%d node writes in 6 s with PublishEvery 2 s; want at most 4", writes)
	}
	if writes == 0 {
		t.Error("no node write in 6 s")
	}

	c.StopAPIServer()
	n.econ.setMultiplier(2.5)
	n.econ.mu.Lock()
	before := n.econ.reports
	n.econ.mu.Unlock()
	time.Sleep(3 * time.Second)
	n.econ.mu.Lock()
	during := n.econ.reports - before
	n.econ.mu.Unlock()
	if during < 2 {
		t.Errorf("the agent read the economy %d times in 3 s of outage; want it to go on", during)
	}
	if err := c.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, "publishing to resume", func() bool { return temp() == "75.0" }); err != nil {
		t.Fatal(err)
	}
}
