package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/lab"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/record"
)

// TestDemoEndToEnd runs the demo for real: the Miner must die and the
// Scientist survive, every credit must balance, and the engine's journal
// must replay to the same decisions.
func TestDemoEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups and load the eBPF meter")
	}
	testDemo(t, "process")
}

// TestDemoInContainers runs the same story with the agents in runc
// containers whose root file system holds busybox and this binary.
func TestDemoInContainers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containers")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed (Debian package runc; .ci/run installs it)")
	}
	if _, err := os.Stat(oci.DefaultBusybox); err != nil {
		t.Skipf("%s is missing (Debian package busybox-static; .ci/run installs it)", oci.DefaultBusybox)
	}
	testDemo(t, "oci")
}

// testDemo runs the demo with cellKind's cells, extra flags after the
// others (such as --vm-image), and checks the story, the books and the
// journal. It returns the run directory.
func testDemo(t *testing.T, cellKind string, extra ...string) string {
	dir := filepath.Join(t.TempDir(), "demo")
	// The twin models the whole host: other tests running beside this one
	// heat it, and the thermal price would then (rightly) starve the
	// Scientist. The story under test is the Miner's, so the setpoint is
	// put above anything the twin reaches (25 °C + 15.2 W × 2.5 K/W).
	cfg := filepath.Join(t.TempDir(), "cool.yaml")
	if err := os.WriteFile(cfg, []byte("engine:\n  setpoint_celsius: 80\n  critical_celsius: 95\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := run(t, append([]string{"--config", cfg, "demo", "--cell", cellKind, "--duration", "12s", "--out", dir, "--json"}, extra...)...)
	if err != nil {
		t.Fatalf("demo: %v\nstderr:\n%s", err, stderr)
	}
	var res lab.DemoResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	e := res.Economy
	if e.MinerDiedAtSeconds == nil {
		t.Fatalf("the Miner survived the demo; story:\n%s", stderr)
	}
	if !e.ScientistSurvived {
		t.Errorf("the Scientist died; story:\n%s", stderr)
	}
	if !strings.Contains(stderr, "APOPTOSIS: the miner") {
		t.Errorf("the story does not tell the apoptosis:\n%s", stderr)
	}
	if e.ScientistPrimesPerSecondAfter == nil || *e.ScientistPrimesPerSecondAfter <= 0 {
		t.Errorf("the Scientist did not work after the Miner died: %+v", e)
	}
	if !e.LedgerOK || e.LedgerMintedCredits != 2*e.EndowmentCredits {
		t.Errorf("ledger: ok=%v minted %d, want 2 × %d", e.LedgerOK, e.LedgerMintedCredits, e.EndowmentCredits)
	}
	if e.TaxOverFloor < 1e9 {
		t.Errorf("tax/floor = %g", e.TaxOverFloor)
	}

	// The ledger file agrees, read independently.
	ctx := t.Context()
	l, err := ledger.Open(ctx, filepath.Join(dir, "ledger.db"), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx)
	l.Close()
	if err != nil || !rep.OK {
		t.Errorf("ledger verify: %+v, %v", rep, err)
	}

	// The summary agrees with the files, and has the wallets.
	full, err := record.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again := record.Summarize(full); !reflect.DeepEqual(again, res.Summary) {
		t.Errorf("summary differs from the one recomputed from the run's files")
	}
	var sawMarket bool
	for _, s := range full.Samples {
		sawMarket = sawMarket || s.Market != nil
	}
	if !sawMarket {
		t.Error("no market series recorded")
	}

	// The engine's journal replays exactly.
	f, err := os.Open(filepath.Join(dir, "engine.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ticks, err := engine.Replay(f)
	if err != nil {
		t.Fatalf("replay of the demo's journal: %v", err)
	}
	if ticks < 50 {
		t.Errorf("replayed %d ticks of a 12 s demo at 100 ms", ticks)
	}
	return dir
}

// TestCompareShort runs the three runs of `maxwell compare` briefly and
// checks the table's figures are the runs' own and the plots exist.
func TestCompareShort(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	dir := filepath.Join(t.TempDir(), "cmp")
	cfg := filepath.Join(t.TempDir(), "cool.yaml") // see testDemo
	if err := os.WriteFile(cfg, []byte("engine:\n  setpoint_celsius: 80\n  critical_celsius: 95\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := run(t, "--config", cfg, "compare", "--duration", "8s", "--alone-duration", "5s", "--out", dir, "--json")
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, stderr)
	}
	var c lab.Comparison
	if err := json.Unmarshal([]byte(stdout), &c); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	b, _ := c.Baseline.UsefulIn("prime")
	m, _ := c.Maxwell.Summary.UsefulIn("prime")
	a, _ := c.Alone.UsefulIn("prime")
	if c.Unit != "prime" || b.Work == 0 || m.Work == 0 || a.Work == 0 {
		t.Fatalf("a run found no primes (unit %q): %d %d %d", c.Unit, b.Work, m.Work, a.Work)
	}
	if want := m.PerJoule / b.PerJoule; c.Ratio != want {
		t.Errorf("ratio %v, want %v", c.Ratio, want)
	}
	if c.DynamicRatio == nil {
		t.Error("no ratio on energy above idle though the model knows idle power")
	}
	for _, run := range []string{"baseline", "maxwell", "alone"} {
		if _, err := record.ReadRun(filepath.Join(dir, run)); err != nil {
			t.Errorf("%s run directory: %v", run, err)
		}
	}
	if len(c.Plots) != 5 {
		t.Errorf("plots %v", c.Plots)
	}
	for _, p := range c.Plots {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("plot %s: %v", p, err)
		}
	}
}
