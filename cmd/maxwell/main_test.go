package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// envAsMain makes the test binary run as the maxwell binary, whatever its
// arguments: for tests that run it as a person would, in a terminal.
const envAsMain = "MAXWELL_TEST_AS_MAIN"

// TestMain lets the test binary stand in for the maxwell binary: cells
// re-execute it as their shim and guard, the experiments run it as `agent
// scientist|miner`, and with $MAXWELL_TEST_AS_MAIN it is maxwell.
func TestMain(m *testing.M) {
	cell.RunShimIfRequested()
	if os.Getenv(envAsMain) == "1" || (len(os.Args) > 1 && os.Args[1] == "agent") {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// run executes the maxwell command line args and returns its stdout and
// stderr.
func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errb.String(), err
}
