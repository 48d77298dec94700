package daemon

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell/celltest"
	"github.com/maxwellhq/maxwell/internal/life"
)

// TestDaemonAdopt: a daemon started with Adopt adopts a cgroup over its
// control API (root, here), lists it as nobody's with its cgroup, funds
// it by name; one started without says so; and stopping the daemon
// leaves the adopted cgroup thawed and its process alive.
func TestDaemonAdopt(t *testing.T) {
	layout := celltest.HostLayout(t)
	tr := celltest.NewTree(t, layout, celltest.UniqueName("mxdaemonowner")+"/svc")
	pid := tr.Start("sleep", "1000").Process.Pid
	ctx := context.Background()

	plain := start(t, t.TempDir())
	pc, err := api.Dial(plain.opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.Adopt(ctx, api.AdoptRequest{Cgroup: tr.Path(), Wallet: 100}); !errors.Is(err, api.ErrUnsupported) || !strings.Contains(err.Error(), "--adopt") {
		t.Errorf("adopt on a daemon without Adopt: %v; want unsupported, naming --adopt", err)
	}
	plain.stop(t)

	r := start(t, t.TempDir(), func(o *Options) { o.Adopt = true })
	c, err := api.Dial(r.opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Adopt(ctx, api.AdoptRequest{Name: "web/svc", Cgroup: tr.Path(), Wallet: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "web/svc" || info.PID != pid {
		t.Errorf("adopted %+v; want web/svc, pid %d", info, pid)
	}
	if !tr.Frozen() {
		t.Error("not frozen at admission")
	}
	if err := c.Fund(ctx, "web/svc", 1000); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, c, "the adopted cell", func(st api.State) bool {
		return len(st.Cells) == 1 && st.Cells[0].Balance == 1<<30+1000
	})
	if cl := st.Cells[0]; cl.OwnerUID != -1 || cl.Cgroup != tr.Path() || cl.State == life.Dead {
		t.Errorf("row %+v; want owner -1, cgroup %s, alive", cl, tr.Path())
	}
	if _, err := c.Adopt(ctx, api.AdoptRequest{Name: "web/other", Cgroup: tr.Path(), Wallet: 1}); !errors.Is(err, api.ErrExists) {
		t.Errorf("adopting it twice: %v; want exists", err)
	}
	r.stop(t)
	if tr.Frozen() || !celltest.Alive(pid) {
		t.Errorf("after the daemon stopped: frozen %t, alive %t; want thawed and alive", tr.Frozen(), celltest.Alive(pid))
	}
}

// TestDaemonKubernetesBadStart: --kubernetes without a node name, or
// with a kubeconfig that is not there, fails at start, saying so, before
// anything is created.
func TestDaemonKubernetesBadStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		kube KubeOptions
		want string
	}{
		{"no node", KubeOptions{}, "--node"},
		{"no kubeconfig", KubeOptions{Node: "n1", Kubeconfig: "/nonexistent/kubeconfig"}, "/nonexistent/kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := testOptions(t, dir)
			o.Kubernetes = &tc.kube
			err := Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v; want an error naming %s", err, tc.want)
			}
			for _, p := range []string{o.ControlSocket, o.Economy.LedgerPath, o.ControlSocket + ".lock"} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s was left behind", p)
				}
			}
		})
	}
}
