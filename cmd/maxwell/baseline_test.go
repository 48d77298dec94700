package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/bench"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/telemetry"
)

func TestBaselineEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups (the baseline would fall back to signal cells)")
	}
	dir := filepath.Join(t.TempDir(), "run")
	cfg := filepath.Join(t.TempDir(), "fast.yaml")
	os.WriteFile(cfg, []byte("sample_interval: 500ms\nbaseline:\n  miner:\n    churn_mib_per_sec: 64\n"), 0o644)
	stdout, stderr, err := run(t, "--config", cfg, "baseline", "--duration", "4s", "--out", dir, "--json")
	if err != nil {
		t.Fatalf("baseline: %v\nstderr:\n%s", err, stderr)
	}
	var printed record.Summary
	if err := json.Unmarshal([]byte(stdout), &printed); err != nil {
		t.Fatalf("--json output is not a summary: %v\n%s", err, stdout)
	}

	// Both agents made progress.
	agents := map[string]record.AgentSummary{}
	for _, a := range printed.Agents {
		agents[a.Name] = a
	}
	sci, min := agents["scientist"], agents["miner"]
	if sci.Counters["primes"] == 0 || sci.Counters["range_end"] == 0 {
		t.Errorf("scientist made no progress: %+v", sci)
	}
	if min.Counters["hashes"] == 0 || min.Counters["bytes_churned"] == 0 {
		t.Errorf("miner made no progress: %+v", min)
	}
	if sci.CPUShare <= 0.05 || min.CPUShare <= 0.05 {
		t.Errorf("CPU shares scientist %.3f, miner %.3f: both should have run", sci.CPUShare, min.CPUShare)
	}
	// The Scientist declared its primes its useful work; the Miner
	// declared nothing.
	if u, ok := printed.UsefulIn("prime"); !ok || u.Work != sci.Counters["primes"] || u.PerJoule <= 0 || len(printed.Useful) != 1 {
		t.Errorf("summary useful work %+v, scientist counted %d", printed.Useful, sci.Counters["primes"])
	}
	if printed.EnergySource != "estimated" && printed.EnergySource != "measured" {
		t.Errorf("energy source %q", printed.EnergySource)
	}
	if printed.DurationSeconds < 3.5 || printed.DurationSeconds > 6 || printed.Samples < 7 {
		t.Errorf("duration %.2f s with %d samples, want about 4 s at 2 Hz", printed.DurationSeconds, printed.Samples)
	}

	// The summary agrees with the CSV files and with summary.json.
	runFiles, err := record.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again := record.Summarize(runFiles); !reflect.DeepEqual(again, printed) {
		t.Errorf("summary recomputed from the CSV files differs from the one printed:\n csv %+v\nprinted %+v", again, printed)
	}
	b, err := os.ReadFile(filepath.Join(dir, record.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk record.Summary
	if err := json.Unmarshal(b, &onDisk); err != nil || !reflect.DeepEqual(onDisk, printed) {
		t.Errorf("summary.json differs from the printed summary (%v)", err)
	}
	kinds := map[string]bool{}
	for _, e := range runFiles.Events {
		kinds[string(e.Kind)+"/"+e.Cell] = true
	}
	for _, k := range []string{"spawned/scientist", "spawned/miner", "agent_connected/scientist", "agent_connected/miner"} {
		if !kinds[k] {
			t.Errorf("no %s event; events: %v", k, runFiles.Events)
		}
	}
	// No cell is left behind.
	for _, h := range []string{"/sys/fs/cgroup/freezer/maxwell", "/sys/fs/cgroup/unified/maxwell", "/sys/fs/cgroup/maxwell"} {
		entries, _ := os.ReadDir(h)
		for _, e := range entries {
			if e.IsDir() && (e.Name() == "scientist" || e.Name() == "miner") {
				t.Errorf("cell cgroup %s/%s left behind", h, e.Name())
			}
		}
	}
}

func TestBaselineBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"baseline", "--duration", "soon"}, "invalid argument"},
		{[]string{"baseline", "--duration", "-3s"}, "must be positive"},
		{[]string{"baseline", "--cpus", "3-1"}, "--cpus"},
		{[]string{"baseline", "--cpus", "4000"}, "not available"},
		{[]string{"baseline", "--frobnicate"}, "unknown flag"},
		{[]string{"baseline", "extra"}, "unknown command"},
		{[]string{"--config", "/nonexistent/m.yaml", "baseline"}, "no such file"},
		{[]string{"--log-level", "loud", "baseline", "--duration", "1s"}, "--log-level"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := run(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSensorsJSON(t *testing.T) {
	stdout, _, err := run(t, "sensors", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep telemetry.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("sensors --json: %v\n%s", err, stdout)
	}
	if rep.Energy.Kind == "" || rep.Temperature.Kind == "" {
		t.Errorf("no energy or temperature source chosen: %+v", rep)
	}
	if rep.Estimated != (rep.Energy.Estimated() || rep.Temperature.Estimated()) {
		t.Errorf("estimated flag %v disagrees with sources %v / %v", rep.Estimated, rep.Energy, rep.Temperature)
	}
	if rep.FreedMemory.Kind == "" || rep.FreedMemory.Detail == "" {
		t.Errorf("the Landauer meter is not listed: %+v", rep.FreedMemory)
	}
	if os.Geteuid() == 0 && rep.FreedMemory.Estimated {
		t.Errorf("as root on a kernel with BTF the meter should be eBPF, got %s", rep.FreedMemory)
	}
	if rep.Energy.Estimated() && !strings.Contains(rep.Energy.Model, "SPECpower") {
		t.Errorf("estimated energy does not name its model: %q", rep.Energy.Model)
	}
}

func TestBenchPauseJSON(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for the cgroup freezers")
	}
	args := []string{"bench", "pause", "--trials", "5", "--json"}
	_, runcErr := exec.LookPath("runc")
	_, bbErr := os.Stat(oci.DefaultBusybox)
	withOCI := runcErr == nil && bbErr == nil
	if withOCI {
		args = append(args, "--oci")
	}
	stdout, stderr, err := run(t, args...)
	if err != nil {
		t.Fatalf("bench pause: %v\n%s", err, stderr)
	}
	var res bench.PauseResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	backends := map[string]bool{}
	for _, f := range res.Freezers {
		if f.Error != "" {
			t.Errorf("%s/%s: %s", f.Backend, f.Freezer, f.Error)
		}
		if f.Pause.N != 5 || f.Pause.P50us <= 0 || f.Pause.P99us < f.Pause.P50us || f.Pause.MaxUs < f.Pause.P99us {
			t.Errorf("%s/%s pause summary %+v", f.Backend, f.Freezer, f.Pause)
		}
		backends[f.Backend] = true
	}
	if !backends["signal"] || (withOCI && !backends["oci"]) {
		t.Errorf("backends measured: %v", backends)
	}
}

// TestBenchLandauerTiming: --timing picks the clock by name, and the report
// says which one timed the loops; an unknown name is refused.
func TestBenchLandauerTiming(t *testing.T) {
	if _, _, err := run(t, "bench", "landauer", "--timing", "nope"); err == nil || !strings.Contains(err.Error(), "want thread_cpu or wall") {
		t.Errorf("--timing nope: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("the meter needs root")
	}
	stdout, stderr, err := run(t, "bench", "landauer", "--timing", "wall", "--runs", "1", "--calls", "2000", "--churn-steps", "1", "--attach", "tracepoint", "--json")
	if err != nil {
		t.Fatalf("bench landauer: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, `"timing": "wall"`) && !strings.Contains(stdout, `"timing":"wall"`) {
		t.Errorf("the JSON report does not say the wall clock timed it:\n%s", stdout)
	}
}
