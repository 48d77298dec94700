package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell/celltest"
	"github.com/maxwellhq/maxwell/internal/life"
)

// TestAdoptCommand: `maxwell adopt` against a real `maxwell daemon
// --adopt` governs a cgroup someone else made, on this host: listed by ps
// as nobody's with its cgroup, funded by name, the memory a Miner in one
// frees metered by the cgroup's id and taxed; one adopted with
// --on-insolvency stop has its stop command run once its wallet is dry,
// and is thawed and left running (Maxwell kills no adopted process). Bad
// input is refused before the daemon is asked.
func TestAdoptCommand(t *testing.T) {
	layout := celltest.HostLayout(t)
	c, _ := startDaemon(t, "--adopt", "--cpus", "0-1")
	sock := c.Path()
	rich := celltest.NewTree(t, layout, celltest.UniqueName("mxcliowner")+"/batch.service")
	richPID := rich.Start("/bin/sh", "-c", "while :; do :; done").Process.Pid
	poor := celltest.NewTree(t, layout, celltest.UniqueName("mxcliowner")+"/poor.service")
	poorPID := poor.Start("/bin/sh", "-c", "while :; do :; done").Process.Pid
	stopped := filepath.Join(t.TempDir(), "stopped")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	churn := celltest.NewTree(t, layout, celltest.UniqueName("mxcliowner")+"/miner.scope")
	churn.Start(exe, "agent", "miner", "--threads", "1", "--churn-mib-per-sec", "64")

	out, _, err := run(t, "adopt", "--socket", sock, "--cgroup", rich.Path(), "--wallet", "1000000000000", "--max-bid", "2000000")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "adopted "+rich.Path()+" as cell batch.service") {
		t.Errorf("adopt said %q", out)
	}
	if _, _, err := run(t, "adopt", "--socket", sock, "--cgroup", churn.Path(), "--wallet", "1000000000000", "--max-bid", "2000000"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "adopt", "--socket", sock, "--cgroup", poor.Path(), "--name", "ops/poor", "--wallet", "3000000", "--max-bid", "2000000",
		"--on-insolvency", "stop", "--", "/bin/touch", stopped); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, "fund", "--socket", sock, "batch.service", "5"); err != nil || !strings.Contains(out, "funded batch.service with 5 credits") {
		t.Errorf("fund: %q, %v", out, err)
	}
	rows := func() map[string]api.Cell {
		out, _, err := run(t, "ps", "--socket", sock, "--json", "--all")
		if err != nil {
			t.Fatal(err)
		}
		var st api.State
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		m := map[string]api.Cell{}
		for _, c := range st.Cells {
			m[c.Name] = c
		}
		return m
	}
	celltest.WaitFor(t, 20*time.Second, "the poor cell's stop command", func() bool {
		_, err := os.Stat(stopped)
		return err == nil
	})
	r := rows()
	if b := r["batch.service"]; b.OwnerUID != -1 || b.Cgroup != rich.Path() || b.State == life.Dead || b.Paid == 0 {
		t.Errorf("batch.service: %+v; want owner -1, cgroup %s, alive and paying", b, rich.Path())
	}
	celltest.WaitFor(t, 20*time.Second, "the adopted Miner's freed bytes, metered and taxed", func() bool {
		m := rows()["miner.scope"]
		return m.FreedBytes > 0 && m.Tax > 0
	})
	if p := r["ops/poor"]; p.State != life.Dead {
		t.Errorf("ops/poor after its wallet ran dry: %s; want dead", p.State)
	}
	time.Sleep(300 * time.Millisecond)
	if poor.Frozen() || !celltest.Alive(poorPID) || !celltest.Alive(richPID) {
		t.Errorf("after insolvency: poor frozen %t, alive %t; rich alive %t; want thawed and running", poor.Frozen(), celltest.Alive(poorPID), celltest.Alive(richPID))
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cgroup", "relative/path", "--wallet", "1"}, "clean absolute path"},
		{[]string{"--cgroup", rich.Path(), "--wallet", "1", "--on-insolvency", "stop"}, "needs stop_argv"},
		{[]string{"--cgroup", rich.Path(), "--wallet", "1", "--", "true"}, "only for --on-insolvency stop"},
		{[]string{"--cgroup", rich.Path(), "--wallet", "1", "--on-insolvency", "explode"}, "want freeze or stop"},
		{[]string{"--cgroup", rich.Path(), "--wallet", "1", "--name", "a b"}, "a b"},
		{[]string{"--cgroup", rich.Path(), "--wallet", "1", "--name", "again"}, "already cell batch.service"},
	} {
		_, _, err := run(t, append([]string{"adopt", "--socket", sock}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("adopt %v: %v; want an error saying %q", tc.args, err, tc.want)
		}
	}
	if _, ok := rows()["again"]; ok {
		t.Error("a refused adoption left a cell")
	}
}
