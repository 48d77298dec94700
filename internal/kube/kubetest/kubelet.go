package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/celltest"
	"github.com/maxwellhq/maxwell/internal/kube/podcgroup"
)

// KubeletOptions configure a Kubelet.
type KubeletOptions struct {
	// Node is the node's name; the Kubelet creates the Node object.
	Node string
	// Labels are extra labels of the Node.
	Labels map[string]string
	// Layout is the host's cgroup layout to lay pods out in.
	Layout cell.Layout
	// Naming is the cgroup driver and root the pods' cgroups get; give it
	// a Root of the test's own (celltest.UniqueName).
	Naming podcgroup.Naming
	// Runtime names the containers' cgroups and IDs; "" means containerd.
	Runtime podcgroup.Runtime
}

// Kubelet plays the kubelet's part on one node, and only that part: it
// registers the Node, and when the scheduler binds a pod to it, it lays
// the pod out in cgroups as the kubelet and the runtime do (a pod cgroup,
// a sandbox container with a pause process, one cgroup per container),
// runs each container's command on this host in its container's cgroup
// (or "sleep" where it names none), and reports the pod Running with its
// containers' IDs. When the pod is deleted (or evicted) it kills the
// processes, removes the cgroups and finishes the deletion, as the
// kubelet does once the containers are gone. Everything else is the real
// API server's.
type Kubelet struct {
	opts   KubeletOptions
	client kubernetes.Interface
	t      testing.TB

	mu   sync.Mutex
	pods map[types.UID]*runningPod
}

// runningPod is what the Kubelet made for one pod.
type runningPod struct {
	pod   *celltest.Tree
	trees []*celltest.Tree
	pids  map[string]int // container name → pid
}

// StartKubelet registers the node and plays its kubelet until the test
// ends. Errors in its goroutine are reported with t.Errorf.
func StartKubelet(t testing.TB, client kubernetes.Interface, opts KubeletOptions) *Kubelet {
	t.Helper()
	if opts.Runtime == "" {
		opts.Runtime = podcgroup.Containerd
	}
	k := &Kubelet{opts: opts, client: client, t: t, pods: map[types.UID]*runningPod{}}
	// The kubelet makes the QoS cgroups when it starts: the pods' parents.
	for _, qos := range []podcgroup.QOSClass{podcgroup.Guaranteed, podcgroup.Burstable, podcgroup.BestEffort} {
		p, err := opts.Naming.PodPath(qos, "x")
		if err != nil {
			t.Fatal(err)
		}
		celltest.NewTree(t, opts.Layout, path.Dir(p))
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := k.register(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", opts.Node).String()
	}))
	inf := f.Core().V1().Pods().Informer()
	queue := make(chan *corev1.Pod, 256)
	enqueue := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok {
			queue <- p
		} else if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			if p, ok := d.Obj.(*corev1.Pod); ok {
				queue <- p
			}
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, n any) { enqueue(n) },
		DeleteFunc: enqueue,
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case p := <-queue:
				k.sync(ctx, p, inf.GetStore())
			}
		}
	}()
	f.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		f.Shutdown()
		wg.Wait()
	})
	return k
}

// register creates the Node with room for pods and a Ready condition.
func (k *Kubelet) register(ctx context.Context) error {
	labels := map[string]string{"kubernetes.io/hostname": k.opts.Node, "kubernetes.io/os": "linux"}
	for l, v := range k.opts.Labels {
		labels[l] = v
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.opts.Node, Labels: labels}}
	n, err := k.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("kubetest kubelet: registering node %s: %w", k.opts.Node, err)
	}
	room := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}
	n.Status = corev1.NodeStatus{
		Capacity: room, Allocatable: room,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
	}
	n, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("kubetest kubelet: node %s status: %w", k.opts.Node, err)
	}
	// The API server's TaintNodesByCondition admission taints a new node
	// not-ready; the node lifecycle controller (there is no controller
	// manager here) lifts it once the kubelet reports Ready.
	var kept []corev1.Taint
	for _, t := range n.Spec.Taints {
		if t.Key != corev1.TaintNodeNotReady {
			kept = append(kept, t)
		}
	}
	n.Spec.Taints = kept
	if _, err := k.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kubetest kubelet: lifting the not-ready taint of %s: %w", k.opts.Node, err)
	}
	return nil
}

// sync brings one pod to what the API says.
func (k *Kubelet) sync(ctx context.Context, p *corev1.Pod, store cache.Store) {
	cur, exists, _ := store.Get(p)
	if exists {
		p = cur.(*corev1.Pod)
	}
	k.mu.Lock()
	rp := k.pods[p.UID]
	k.mu.Unlock()
	switch {
	case !exists || p.DeletionTimestamp != nil:
		if rp != nil {
			k.stop(ctx, p, rp)
		}
		if exists {
			// The containers are gone: finish the deletion, as the
			// kubelet does.
			zero := int64(0)
			err := k.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
				GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.UID},
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
				k.t.Errorf("kubetest kubelet %s: finishing deletion of %s/%s: %v", k.opts.Node, p.Namespace, p.Name, err)
			}
		}
	case rp == nil && (p.Status.Phase == corev1.PodPending || p.Status.Phase == ""):
		if err := k.start(ctx, p); err != nil && ctx.Err() == nil {
			k.t.Errorf("kubetest kubelet %s: starting %s/%s: %v", k.opts.Node, p.Namespace, p.Name, err)
		}
	}
}

// start lays the pod out in cgroups, runs its containers, and reports it
// Running.
func (k *Kubelet) start(ctx context.Context, p *corev1.Pod) error {
	qos := podcgroup.QOSClass(p.Status.QOSClass)
	if qos == "" {
		qos = podcgroup.BestEffort
	}
	podPath, err := k.opts.Naming.PodPath(qos, string(p.UID))
	if err != nil {
		return err
	}
	podTree, err := celltest.MakeTree(k.t, k.opts.Layout, podPath)
	if err != nil {
		return err
	}
	rp := &runningPod{pod: podTree, pids: map[string]int{}}
	k.mu.Lock()
	k.pods[p.UID] = rp
	k.mu.Unlock()
	run := func(argv []string) (string, int, error) {
		id := newContainerID()
		cPath, err := k.opts.Naming.ContainerPath(qos, string(p.UID), podcgroup.Container{Runtime: k.opts.Runtime, ID: id})
		if err != nil {
			return "", 0, err
		}
		tr, err := celltest.MakeTree(k.t, k.opts.Layout, cPath)
		k.mu.Lock()
		rp.trees = append(rp.trees, tr)
		k.mu.Unlock()
		if err != nil {
			return "", 0, err
		}
		cmd, err := tr.Run(argv...)
		if err != nil {
			return "", 0, err
		}
		return id, cmd.Process.Pid, nil
	}
	// The sandbox: what containerd runs as the pod's pause container.
	if _, _, err := run([]string{"sleep", "100000"}); err != nil {
		return err
	}
	now := metav1.Now()
	var statuses []corev1.ContainerStatus
	for _, c := range p.Spec.Containers {
		argv := append(append([]string{}, c.Command...), c.Args...)
		if len(argv) == 0 {
			argv = []string{"sleep", "100000"}
		}
		id, pid, err := run(argv)
		if err != nil {
			return err
		}
		k.mu.Lock()
		rp.pids[c.Name] = pid
		k.mu.Unlock()
		started := true
		statuses = append(statuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "kubetest://" + c.Image, Ready: true, Started: &started,
			ContainerID: string(k.opts.Runtime) + "://" + id,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	st := p.DeepCopy()
	st.Status.Phase = corev1.PodRunning
	st.Status.HostIP = "127.0.0.1"
	st.Status.PodIP = "127.0.0.1"
	st.Status.StartTime = &now
	st.Status.ContainerStatuses = statuses
	st.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	_, err = k.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, st, metav1.UpdateOptions{})
	return err
}

// stop kills the pod's processes and removes its cgroups.
func (k *Kubelet) stop(ctx context.Context, p *corev1.Pod, rp *runningPod) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	k.mu.Lock()
	trees := append([]*celltest.Tree{}, rp.trees...)
	delete(k.pods, p.UID)
	k.mu.Unlock()
	for i := len(trees) - 1; i >= 0; i-- {
		if err := trees[i].Remove(ctx); err != nil {
			k.t.Errorf("kubetest kubelet %s: removing a container of %s/%s: %v", k.opts.Node, p.Namespace, p.Name, err)
		}
	}
	if err := rp.pod.Remove(ctx); err != nil {
		k.t.Errorf("kubetest kubelet %s: removing the cgroup of %s/%s: %v", k.opts.Node, p.Namespace, p.Name, err)
	}
}

// PID returns the host PID of a running container of a pod, or 0.
func (k *Kubelet) PID(uid types.UID, container string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if rp := k.pods[uid]; rp != nil {
		return rp.pids[container]
	}
	return 0
}

// PodCgroup returns the cgroup tree of a running pod, or nil.
func (k *Kubelet) PodCgroup(uid types.UID) *celltest.Tree {
	k.mu.Lock()
	defer k.mu.Unlock()
	if rp := k.pods[uid]; rp != nil {
		return rp.pod
	}
	return nil
}

// newContainerID returns 64 random hex digits, as runtimes' IDs are.
func newContainerID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
