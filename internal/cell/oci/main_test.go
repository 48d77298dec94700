package oci

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/workload"
)

// helperEnv makes the test binary, copied into the test root file system
// as /bin/helper, act as a container workload instead of running tests.
const helperEnv = "MAXWELL_OCI_TEST_HELPER"

// testRootFS is the root file system every container test uses: busybox
// plus this test binary. Empty when it could not be built (skipReason
// says why).
var (
	testRootFS string
	skipReason string
)

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	code := func() int {
		dir, err := os.MkdirTemp("", "oci-test-rootfs")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		skipReason = prepareRootFS(filepath.Join(dir, "rootfs"))
		if skipReason == "" {
			testRootFS = filepath.Join(dir, "rootfs")
		}
		return m.Run()
	}()
	os.Exit(code)
}

// prepareRootFS builds the test root file system, or says why container
// tests cannot run here.
func prepareRootFS(dir string) string {
	if os.Geteuid() != 0 {
		return "container tests need root (runc creates namespaces and cgroups)"
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return "runc is not installed (apt-get install runc)"
	}
	bb := DefaultBusybox
	if _, err := os.Stat(bb); err != nil {
		return "busybox is not installed at " + bb + " (apt-get install busybox-static)"
	}
	self, err := os.Executable()
	if err != nil {
		return "cannot find the test binary: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := RootFS{Busybox: bb, Binaries: map[string]string{"/bin/helper": self}}
	if err := r.Build(ctx, dir); err != nil {
		// Everything is installed: a build failure is a bug.
		panic(fmt.Sprintf("building the test root file system: %v", err))
	}
	return ""
}

// runHelper is the test binary's main inside a container.
func runHelper(mode string) int {
	switch mode {
	case "spin":
		for {
		}
	case "exit":
		code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
		return code
	case "scientist":
		ctx := context.Background()
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cfg := agent.FromEnv()
		cfg.Hello = proto.Hello{Kind: "scientist", Name: "claimed-name"}
		c, err := agent.Dial(dctx, cfg)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper: dial:", err)
			return 2
		}
		defer c.Close()
		s := workload.Scientist{Threads: 1, Interval: 20 * time.Millisecond}
		err = s.Run(ctx, func(counters map[string]uint64) {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := c.Report(rctx, counters); err != nil {
				fmt.Fprintln(os.Stderr, "helper: report:", err)
				os.Exit(3)
			}
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 4
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "helper: unknown mode", mode)
	return 5
}
