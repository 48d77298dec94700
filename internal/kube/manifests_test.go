package kube_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/kube/kubetest"
)

// TestManifests: the real API server takes every shipped manifest under
// deploy/kubernetes (rbac.yaml created for real by cluster(); the others
// by server-side dry run: schema, defaults, admission). tas-policy.yaml
// needs Telemetry Aware Scheduling's CRD, which this control plane does
// not have; it is only decoded.
func TestManifests(t *testing.T) {
	c := cluster(t)
	ctx := testCtx(t, time.Minute)
	dir := filepath.Join("..", "..", "deploy", "kubernetes")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := kubetest.Objects(b)
			if err != nil || len(objs) == 0 {
				t.Fatalf("decoding: %d objects, %v", len(objs), err)
			}
			switch filepath.Base(f) {
			case "rbac.yaml":
				return // created for real by cluster()
			case "tas-policy.yaml":
				if k := objs[0].GetKind(); k != "TASPolicy" {
					t.Errorf("kind %s; want TASPolicy", k)
				}
				return
			}
			if err := c.Create(ctx, b, true); err != nil {
				t.Fatal(err)
			}
		})
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	for _, want := range []string{"daemonset.yaml", "example-pod.yaml", "prometheus-adapter.yaml", "rbac.yaml"} {
		if !slices.Contains(names, want) {
			t.Errorf("deploy/kubernetes has no %s", want)
		}
	}
}
