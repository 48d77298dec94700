package kubetest_test

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/maxwellhq/maxwell/internal/kube/kubetest"
)

// TestCluster starts the real control plane, checks its version, that
// RBAC holds a fresh service account to nothing, and that the API server
// comes back after a stop with the same data.
func TestCluster(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, err := c.Client.Discovery().ServerVersion()
	if err != nil || v.GitVersion != kubetest.KubeVersion {
		t.Fatalf("server version = %+v, %v; want %s", v, err, kubetest.KubeVersion)
	}
	if _, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("admin list pods: %v", err)
	}
	sa, err := c.ServiceAccountConfig(ctx, "default", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("service account with no role listing pods: %v; want forbidden", err)
	}
	c.StopAPIServer()
	if _, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "nobody", metav1.GetOptions{}); err == nil {
		t.Error("API server answered while stopped")
	}
	if err := c.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "nobody", metav1.GetOptions{}); err != nil {
		t.Errorf("after restart: %v", err)
	}
}
