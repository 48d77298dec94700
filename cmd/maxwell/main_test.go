package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// TestMain lets the test binary stand in for the maxwell binary: cells
// re-execute it as their shim and guard, and the baseline runs it as
// `agent scientist|miner`.
func TestMain(m *testing.M) {
	cell.RunShimIfRequested()
	if len(os.Args) > 1 && os.Args[1] == "agent" {
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
