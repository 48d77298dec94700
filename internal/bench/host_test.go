package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell/oci"
)

// TestPauseHost measures every freezer of this host and, where runc and
// busybox-static are installed, a runc container too, as `maxwell bench
// pause --oci` does.
func TestPauseHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: cells create cgroups")
	}
	withOCI := true
	if _, err := exec.LookPath("runc"); err != nil {
		t.Log("runc is not installed (Debian package runc; .ci/run installs it): no container measured")
		withOCI = false
	} else if _, err := os.Stat(oci.DefaultBusybox); err != nil {
		t.Logf("%s is missing (Debian package busybox-static): no container measured", oci.DefaultBusybox)
		withOCI = false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const trials = 5
	res, ctl, err := PauseHost(ctx, HostPauseOptions{CgroupRoot: "/sys/fs/cgroup", ProcRoot: "/proc", Trials: trials, CPU: 0, ControllerCPUs: "auto", OCI: withOCI})
	if err != nil {
		t.Fatal(err)
	}
	var sawOCI bool
	for _, fr := range res.Freezers {
		if fr.Error != "" {
			t.Errorf("%s/%s: %s", fr.Backend, fr.Freezer, fr.Error)
		}
		sawOCI = sawOCI || fr.Backend == "oci"
		for _, s := range []Summary{fr.Pause, fr.Resume} {
			if s.N != trials || s.P50us <= 0 || s.P50us > s.P99us {
				t.Errorf("%s/%s summary %+v; want %d ordered positive samples", fr.Backend, fr.Freezer, s, trials)
			}
		}
	}
	if withOCI != sawOCI {
		t.Errorf("container measured: %v, want %v (%+v)", sawOCI, withOCI, res.Freezers)
	}
	var b bytes.Buffer
	if err := res.WriteText(&b, ctl); err != nil || !strings.Contains(b.String(), "PAUSE P50") {
		t.Errorf("table: %v\n%s", err, b.String())
	}
}
