// Package kube is Maxwell's node agent on Kubernetes. It runs beside one
// node's economy (the daemon implements Economy), and:
//
//   - watches the pods of its own node through a client-go informer with
//     the field selector spec.nodeName=<node>;
//   - adopts the cgroup of every Running pod that opts in with maxwell.dev
//     annotations (ParseTerms) as a cell of the node's economy, found
//     from the pod's UID and QoS class (package podcgroup); malformed
//     annotations get a Warning Event on the pod and no adoption;
//   - releases a pod's cell, settling its wallet, when the pod is
//     deleted, finishes or opts out;
//   - evicts, through the Eviction API (which respects
//     PodDisruptionBudgets), the pods set to "evict" whose wallet ran dry
//     (the economy asks through AdoptRequest.Owner); "hibernate" pods the
//     economy freezes until funded;
//   - publishes the node's price where schedulers look: the
//     AnnotationPrice, AnnotationTemperature and AnnotationNode
//     annotations (at most once every Options.PublishEvery), the
//     LabelPriceBand label (with hysteresis, Bander) and the TaintHot
//     NoSchedule taint while the price stays at its ceiling (Hot).
//
// When the API server is unreachable the economy goes on untouched (the
// agent only reads it), and publishing resumes when the server returns.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/kube/podcgroup"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Economy is the node's economy as the agent uses it. Maxwell's daemon
// implements it; cells are named "namespace/pod".
type Economy interface {
	// Adopt puts the pod's cgroup under the economy as a cell (with
	// cell.Manager.Adopt), with a wallet of req.Terms.Wallet credits and
	// the standing bid, tap and insolvency policy of req.Terms, req.Owner
	// to ask when the pod must go. It returns the cell's name: req.Name,
	// or, where an earlier incarnation of the pod used that name (names
	// are never reused), req.Name/N. A cgroup the economy governs already
	// is an error wrapping cell.ErrExists; one the economy will never
	// adopt (an empty or frozen cgroup, a bad name) an error wrapping
	// ErrRefused.
	Adopt(ctx context.Context, req AdoptRequest) (string, error)
	// Release takes the cell out of the economy (thawed, the owner's CPU
	// limit back, its processes left alone), settles and closes its
	// wallet, and returns what was left in it. A cell the economy does
	// not know is an error wrapping ErrUnknownCell.
	Release(ctx context.Context, name string) (units.Credits, error)
	// Report reads the node's price, temperature and cells. It must not
	// block on anything but the economy's own lock. Before the economy's
	// first tick it is an error wrapping ErrNotReady.
	Report(ctx context.Context) (NodeReport, error)
}

// Errors of the Economy.
var (
	// ErrUnknownCell is what Economy.Release wraps for a cell it does
	// not know.
	ErrUnknownCell = errors.New("no such cell")
	// ErrRefused is what Economy.Adopt wraps for a pod it will not adopt
	// as it is: the agent says why on the pod and tries again only when
	// the pod changes.
	ErrRefused = errors.New("refused by the node's economy")
	// ErrNotReady is what Economy.Report wraps before there is anything
	// to report: nothing is published until there is.
	ErrNotReady = errors.New("the node's economy has not ticked yet")
)

// AdoptRequest asks the economy to govern a pod's cgroup.
type AdoptRequest struct {
	// Name is the cell's name: "namespace/pod" (the economy may add an
	// incarnation, see Economy.Adopt).
	Name string
	// Cgroup is the pod's cgroup path below each hierarchy's root, for
	// cell.AdoptSpec.Cgroup.
	Cgroup string
	// Terms are what the pod's annotations ask for.
	Terms Terms
	// Owner evicts the pod. The economy calls it when a pod set to Evict
	// runs dry (or an operator kills its cell); Stop only queues the
	// eviction and returns at once, so a tick never waits for the API
	// server.
	Owner cell.Owner
}

// NodeReport is the node's economy at one instant.
type NodeReport struct {
	// Reserve is the reserve price, credits per CPU slot; Ceiling is the
	// reserve at the controller's maximum multiplier.
	Reserve, Ceiling units.Credits
	// Multiplier is the thermal price multiplier (≥ 1), MaxMultiplier its
	// ceiling.
	Multiplier, MaxMultiplier float64
	// Temperature priced the last tick; Setpoint is the controller's
	// target.
	Temperature, Setpoint units.Celsius
	// Source says where Temperature came from: a sensor ("measured: …")
	// or a model ("estimated: …", naming it).
	Source string
	// Cells are the economy's cells, those of pods and others.
	Cells []CellReport
}

// CellReport is one cell in a NodeReport.
type CellReport struct {
	Name    string        `json:"name"`
	State   string        `json:"state"`
	Balance units.Credits `json:"balance_credits"`
}

// NodeAnnotation is the JSON of AnnotationNode: everything the agent
// publishes about its node, for `maxwell ps --kubernetes` and for people.
type NodeAnnotation struct {
	Node         string        `json:"node"`
	At           time.Time     `json:"at"`
	Reserve      units.Credits `json:"reserve_credits"`
	Ceiling      units.Credits `json:"ceiling_credits"`
	Multiplier   float64       `json:"multiplier"`
	Heat         float64       `json:"heat"`
	Celsius      float64       `json:"celsius"`
	Setpoint     float64       `json:"setpoint_celsius"`
	Headroom     float64       `json:"headroom_celsius"`
	Source       string        `json:"source"`
	Band         Band          `json:"band"`
	Hot          bool          `json:"hot"`
	Cells        []CellReport  `json:"cells,omitempty"`
	CellsOmitted int           `json:"cells_omitted,omitempty"`
}

// maxAnnotatedCells bounds the cells listed in AnnotationNode (the API
// server limits all of an object's annotations to 256 KiB together).
const maxAnnotatedCells = 200

// Options configure an Agent.
type Options struct {
	// Node is this node's name (spec.nodeName of its pods).
	Node string
	// Client talks to the API server, as the agent's service account.
	Client kubernetes.Interface
	// Economy is the node's economy.
	Economy Economy
	// Finder finds pods' cgroups on this node.
	Finder podcgroup.Finder
	// Clock drives publishing; nil means the system clock.
	Clock clock.Clock
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// PublishEvery is the least time between two writes of the node
	// object; 0 means 5 s. The economy is read once a second.
	PublishEvery time.Duration
	// Bands and Hot set the band hysteresis and the hot taint's hold;
	// zero values mean DefaultBandPolicy and DefaultHotPolicy.
	Bands BandPolicy
	Hot   HotPolicy
}

// podCell is an adopted pod: its UID and its cell's name.
type podCell struct {
	uid  types.UID
	cell string
}

// Agent is the node agent. Run runs it.
type Agent struct {
	opts   Options
	log    *slog.Logger
	clk    clock.Clock
	events record.EventRecorder
	bcast  record.EventBroadcaster
	pods   workqueue.TypedRateLimitingInterface[string]
	evicts workqueue.TypedRateLimitingInterface[string]
	lister listersv1.PodLister

	mu      sync.Mutex
	adopted map[string]podCell // pod key (namespace/name) → its cell
	warned  map[string]string  // pod key → the bad-annotation message last sent
	blocked map[string]bool    // pod key → an eviction-blocked event was sent
	last    NodeAnnotation     // the latest reading, published or not
	hasLast bool

	pubMu    sync.Mutex
	band     Bander
	hot      Hot
	limit    RateLimit
	pubErr   error // last publishing error, logged once
	lastBand Band
	lastHot  bool
}

// New checks the options and returns an agent.
func New(opts Options) (*Agent, error) {
	if opts.Node == "" || opts.Client == nil || opts.Economy == nil {
		return nil, errors.New("kube agent: Node, Client and Economy are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.System()
	}
	if opts.PublishEvery <= 0 {
		opts.PublishEvery = 5 * time.Second
	}
	if opts.Bands == (BandPolicy{}) {
		opts.Bands = DefaultBandPolicy()
	}
	if opts.Hot == (HotPolicy{}) {
		opts.Hot = DefaultHotPolicy()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{
		opts: opts, log: log.With("node", opts.Node), clk: opts.Clock,
		// Retries back off from 200 ms to 30 s: a cgroup the kubelet has
		// not made yet, an eviction a PodDisruptionBudget holds back, an
		// API server away.
		pods:    workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 30*time.Second), workqueue.TypedRateLimitingQueueConfig[string]{Name: "maxwell-pods"}),
		evicts:  workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 30*time.Second), workqueue.TypedRateLimitingQueueConfig[string]{Name: "maxwell-evictions"}),
		adopted: map[string]podCell{}, warned: map[string]string{}, blocked: map[string]bool{},
		band: Bander{Policy: opts.Bands}, hot: Hot{Policy: opts.Hot}, limit: RateLimit{Min: opts.PublishEvery},
	}
	a.bcast = record.NewBroadcaster()
	a.events = a.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "maxwell", Host: opts.Node})
	return a, nil
}

// Run runs the agent until ctx ends, then releases every pod it adopted
// (settling their wallets) and returns. It returns an error only if the
// pod informer could not start.
func (a *Agent) Run(ctx context.Context) error {
	a.bcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.opts.Client.CoreV1().Events("")})
	defer a.bcast.Shutdown()
	f := informers.NewSharedInformerFactoryWithOptions(a.opts.Client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.opts.Node).String()
	}))
	inf := f.Core().V1().Pods()
	a.lister = inf.Lister()
	enqueue := func(obj any) {
		if k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.pods.Add(k)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) }, DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("kube agent: %w", err)
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer a.pods.ShutDown()
	defer a.evicts.ShutDown()
	wg.Add(3)
	go func() { defer wg.Done(); a.publishLoop(ctx) }()
	go func() {
		defer wg.Done()
		for a.processPod(ctx) {
		}
	}()
	go func() {
		defer wg.Done()
		for a.processEviction(ctx) {
		}
	}()
	// The cache syncs once the API server answers; until then the agent
	// still publishes (and fails, and retries) and the economy goes on.
	cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced)
	<-ctx.Done()
	a.releaseAll()
	return nil
}

// releaseAll releases every adopted pod, bounded by 10 s.
func (a *Agent) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.mu.Lock()
	names := make([]string, 0, len(a.adopted))
	for n := range a.adopted {
		names = append(names, n)
	}
	a.mu.Unlock()
	for _, n := range names {
		a.release(ctx, n, nil, "the node agent stopped")
	}
}

func (a *Agent) processPod(ctx context.Context) bool {
	key, quit := a.pods.Get()
	if quit {
		return false
	}
	defer a.pods.Done(key)
	if err := a.syncPod(ctx, key); err != nil {
		a.log.Debug("pod sync, will retry", "pod", key, "err", err)
		a.pods.AddRateLimited(key)
		return true
	}
	a.pods.Forget(key)
	return true
}

// errRetry marks a sync to try again later (the kubelet has not made the
// cgroup yet, the economy refused for now).
var errRetry = errors.New("not yet")

// syncPod brings one pod's cell to what the pod says.
func (a *Agent) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := a.lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		a.release(ctx, key, nil, "the pod was deleted")
		return nil
	}
	if err != nil {
		return err
	}
	a.mu.Lock()
	pc, adopted := a.adopted[key]
	a.mu.Unlock()
	if adopted && pc.uid != pod.UID {
		a.release(ctx, key, nil, "the pod was replaced")
		adopted = false
	}
	switch {
	case pod.DeletionTimestamp != nil:
		a.release(ctx, key, pod, "the pod is being deleted")
		return nil
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		a.release(ctx, key, pod, "the pod finished ("+string(pod.Status.Phase)+")")
		return nil
	}
	terms, optedIn, err := ParseTerms(pod.Annotations)
	if !optedIn {
		if adopted {
			a.release(ctx, key, pod, "the pod no longer carries maxwell.dev annotations")
		}
		return nil
	}
	if err != nil {
		a.warnOnce(pod, "MaxwellBadAnnotation", err.Error()+": not adopted")
		return nil
	}
	if adopted || pod.Status.Phase != corev1.PodRunning {
		return nil
	}
	found, err := a.opts.Finder.Pod(podcgroup.QOSClass(pod.Status.QOSClass), string(pod.UID))
	if err != nil {
		if a.pods.NumRequeues(key) >= 5 {
			a.warnOnce(pod, "MaxwellNoCgroup", err.Error())
		}
		return fmt.Errorf("%w: %v", errRetry, err)
	}
	req := AdoptRequest{Name: key, Cgroup: found.Path, Terms: terms, Owner: evictor{a: a, key: key}}
	cellName, err := a.opts.Economy.Adopt(ctx, req)
	if err != nil {
		a.warnOnce(pod, "MaxwellAdoptFailed", err.Error())
		if errors.Is(err, ErrRefused) || errors.Is(err, cell.ErrExists) {
			return nil // until the pod changes
		}
		return fmt.Errorf("%w: %v", errRetry, err)
	}
	a.mu.Lock()
	a.adopted[key] = podCell{uid: pod.UID, cell: cellName}
	delete(a.warned, key)
	a.mu.Unlock()
	a.events.Eventf(pod, corev1.EventTypeNormal, "MaxwellAdopted",
		"cgroup %s adopted as cell %s on node %s: wallet %d credits, max bid %d, %d units, tap %d/s, on insolvency %s",
		found.Path, cellName, a.opts.Node, terms.Wallet, terms.MaxBid, terms.Units, terms.Tap, terms.OnInsolvency)
	a.log.Info("pod adopted", "pod", key, "cell", cellName, "cgroup", found.Path, "wallet", int64(terms.Wallet))
	return nil
}

// warnOnce records a Warning Event on the pod unless the same message was
// sent for it already.
func (a *Agent) warnOnce(pod *corev1.Pod, reason, msg string) {
	key := pod.Namespace + "/" + pod.Name
	a.mu.Lock()
	same := a.warned[key] == reason+msg
	a.warned[key] = reason + msg
	a.mu.Unlock()
	if !same {
		a.events.Event(pod, corev1.EventTypeWarning, reason, msg)
		a.log.Warn("pod not adopted", "pod", key, "reason", reason, "err", msg)
	}
}

// release releases a pod's cell if the agent adopted it.
func (a *Agent) release(ctx context.Context, key string, pod *corev1.Pod, why string) {
	a.mu.Lock()
	pc, ok := a.adopted[key]
	delete(a.adopted, key)
	delete(a.warned, key)
	delete(a.blocked, key)
	a.mu.Unlock()
	if !ok {
		return
	}
	left, err := a.opts.Economy.Release(ctx, pc.cell)
	if err != nil && !errors.Is(err, ErrUnknownCell) {
		a.log.Warn("releasing pod", "pod", key, "cell", pc.cell, "err", err)
		return
	}
	a.log.Info("pod released", "pod", key, "cell", pc.cell, "why", why, "settled_credits", int64(left))
	if pod != nil {
		a.events.Eventf(pod, corev1.EventTypeNormal, "MaxwellReleased", "cell %s released (%s); wallet settled with %d credits left", pc.cell, why, left)
	}
}

// evictor is the Owner of an adopted pod: Stop queues its eviction.
type evictor struct {
	a   *Agent
	key string // the pod's namespace/name
}

// Stop implements cell.Owner.
func (e evictor) Stop(context.Context, string) error {
	e.a.evicts.Add(e.key)
	return nil
}

func (a *Agent) processEviction(ctx context.Context) bool {
	key, quit := a.evicts.Get()
	if quit {
		return false
	}
	defer a.evicts.Done(key)
	if err := a.evict(ctx, key); err != nil {
		a.log.Debug("eviction, will retry", "pod", key, "err", err)
		a.evicts.AddRateLimited(key)
		return true
	}
	a.evicts.Forget(key)
	return true
}

// evict evicts one pod through the Eviction API.
func (a *Agent) evict(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := a.lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pod.DeletionTimestamp != nil {
		return nil
	}
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	err = a.opts.Client.CoreV1().Pods(ns).EvictV1(ctx, ev)
	switch {
	case err == nil:
		a.events.Eventf(pod, corev1.EventTypeNormal, "MaxwellEvicted", "the wallet of pod %s ran dry on node %s (or its cell was killed): evicted through the Eviction API", key, a.opts.Node)
		a.log.Info("pod evicted", "pod", key)
		return nil
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsTooManyRequests(err):
		// A PodDisruptionBudget forbids it now: try again later.
		a.mu.Lock()
		first := !a.blocked[key]
		a.blocked[key] = true
		a.mu.Unlock()
		if first {
			a.events.Eventf(pod, corev1.EventTypeWarning, "MaxwellEvictionBlocked", "the wallet of pod %s ran dry, but the eviction is refused for now (%v); retrying, and the pod runs meanwhile", key, err)
		}
	}
	return err
}

// publishLoop reads the economy once a second and publishes what changed,
// at most once every PublishEvery.
func (a *Agent) publishLoop(ctx context.Context) {
	t := a.clk.NewTicker(time.Second)
	defer t.Stop()
	for {
		a.PublishOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}

// PublishOnce reads the economy, steps the band and hot-taint state
// machines, and writes the node object if the rate limit allows. It
// returns whether it wrote. Run calls it once a second; tests may call it
// directly with a fake clock.
func (a *Agent) PublishOnce(ctx context.Context) bool {
	a.pubMu.Lock()
	defer a.pubMu.Unlock()
	now := a.clk.Now()
	rep, err := a.opts.Economy.Report(ctx)
	if errors.Is(err, ErrNotReady) {
		a.log.Debug("nothing to publish yet", "err", err)
		return false
	}
	if err != nil {
		a.log.Warn("reading the economy", "err", err)
		return false
	}
	heat := Heat(rep.Multiplier, rep.MaxMultiplier)
	band := a.band.Next(now, heat)
	hot := a.hot.Next(now, heat)
	ann := NodeAnnotation{
		Node: a.opts.Node, At: now.UTC(), Reserve: rep.Reserve, Ceiling: rep.Ceiling, Multiplier: rep.Multiplier, Heat: heat,
		Celsius: float64(rep.Temperature), Setpoint: float64(rep.Setpoint), Headroom: float64(rep.Setpoint - rep.Temperature),
		Source: rep.Source, Band: band, Hot: hot, Cells: rep.Cells,
	}
	a.mu.Lock()
	a.last, a.hasLast = ann, true
	a.mu.Unlock()
	if !a.limit.Allow(now) {
		return false
	}
	if len(ann.Cells) > maxAnnotatedCells {
		ann.CellsOmitted = len(ann.Cells) - maxAnnotatedCells
		ann.Cells = ann.Cells[:maxAnnotatedCells]
	}
	err = a.writeNode(ctx, ann)
	if err != nil {
		// Not counted: the next second tries again.
		a.limit = RateLimit{Min: a.opts.PublishEvery}
		if a.pubErr == nil || a.pubErr.Error() != err.Error() {
			a.log.Warn("publishing the node's price; the economy goes on, publishing resumes when the API server answers", "err", err)
		}
		a.pubErr = err
		return false
	}
	if a.pubErr != nil {
		a.log.Info("publishing the node's price again")
		a.pubErr = nil
	}
	if band != a.lastBand || hot != a.lastHot {
		a.log.Info("node price band", "band", band, "hot", hot, "heat", heat)
		a.lastBand, a.lastHot = band, hot
	}
	return true
}

// writeNode writes the annotations, the band label and the hot taint.
func (a *Agent) writeNode(ctx context.Context, ann NodeAnnotation) error {
	js, err := json.Marshal(ann)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nodes := a.opts.Client.CoreV1().Nodes()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, a.opts.Node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		// A merge patch of the labels and annotations Maxwell owns and of
		// the taints (a list is replaced whole, so it carries the others
		// as read); the resourceVersion makes it fail with a conflict if
		// the node changed since.
		patch := map[string]any{
			"metadata": map[string]any{
				"resourceVersion": n.ResourceVersion,
				"labels":          map[string]string{LabelPriceBand: string(ann.Band)},
				"annotations": map[string]string{
					AnnotationPrice:       strconv.FormatInt(int64(ann.Reserve), 10),
					AnnotationTemperature: strconv.FormatFloat(ann.Celsius, 'f', 1, 64),
					AnnotationNode:        string(js),
				},
			},
			"spec": map[string]any{"taints": withHotTaint(n.Spec.Taints, ann.Hot)},
		}
		b, err := json.Marshal(patch)
		if err != nil {
			return err
		}
		_, err = nodes.Patch(ctx, a.opts.Node, types.MergePatchType, b, metav1.PatchOptions{FieldManager: "maxwell"})
		return err
	})
}

// withHotTaint returns taints with TaintHot added or removed, others kept.
func withHotTaint(taints []corev1.Taint, hot bool) []corev1.Taint {
	out := make([]corev1.Taint, 0, len(taints)+1)
	for _, t := range taints {
		if t.Key != TaintHot {
			out = append(out, t)
		}
	}
	if hot {
		out = append(out, corev1.Taint{Key: TaintHot, Value: "true", Effect: corev1.TaintEffectNoSchedule})
	}
	return out
}

// Adopted returns the names of the pods' cells the agent holds.
func (a *Agent) Adopted() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.adopted))
	for _, pc := range a.adopted {
		out = append(out, pc.cell)
	}
	return out
}
