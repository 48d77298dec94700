package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/buildinfo"
)

func TestVersion(t *testing.T) {
	out, _, err := run(t, "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var in buildinfo.Info
	if err := json.Unmarshal([]byte(out), &in); err != nil || in.GoVersion != runtime.Version() {
		t.Errorf("version --json: %q (%v)", out, err)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, err := run(t, args...)
		if err != nil || !strings.HasPrefix(out, "maxwell ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("%v: %q, %v", args, out, err)
		}
	}
}
