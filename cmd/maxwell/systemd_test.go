package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit: deploy/systemd/maxwell.service passes systemd-analyze
// verify, and its ExecStart is a command line this maxwell accepts.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "systemd", "maxwell.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	var exec0 []string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			exec0 = strings.Fields(v)
		}
	}
	if len(exec0) < 2 || exec0[0] != "/usr/local/bin/maxwell" || exec0[1] != "daemon" {
		t.Fatalf("ExecStart = %v", exec0)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Every flag of ExecStart is one the daemon knows.
	cmd := exec.Command(self, append(exec0[1:], "--help")...)
	cmd.Env = append(os.Environ(), envAsMain+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("maxwell %v --help: %v\n%s", exec0[1:], err, out)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian's systemd package)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "maxwell.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/maxwell", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
