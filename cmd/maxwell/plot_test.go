package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/units"
)

func writePlotRun(t *testing.T, dir string) {
	t.Helper()
	w, err := record.Create(dir, record.Meta{Kind: "baseline", CPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := w.Write(record.Sample{
			Elapsed: time.Duration(i) * time.Second,
			Host:    record.HostSample{Temperature: units.Celsius(40 + i), Power: 10, Energy: units.Energy(i) * 10 * units.Joule},
			Cells: []record.CellSample{{Cell: "scientist", CPUShare: 1, CPUTime: time.Duration(i) * time.Second,
				Counters: map[string]uint64{"primes": uint64(i) * 50}, UsefulCounter: "primes", UsefulUnit: "prime"}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func runPlotCmd(args ...string) (string, error) {
	cmd := newPlotCmd(&app{})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestPlotCmd(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "base")
	writePlotRun(t, run)
	out := filepath.Join(dir, "charts")

	text, err := runPlotCmd(run, "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(out, "base-thermal.png"), filepath.Join(out, "base-agents.png"), filepath.Join(out, "efficiency.png")}
	if got := strings.Fields(text); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("printed %q, want %q", got, want)
	}
	for _, f := range want {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	js, err := runPlotCmd(run, "--out", filepath.Join(dir, "again"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Files []string `json:"files"`
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatalf("%v in %s", err, js)
	}
	if len(res.Files) != 3 || filepath.Base(res.Files[2]) != "efficiency.png" {
		t.Errorf("files = %q", res.Files)
	}

	if _, err := runPlotCmd(); err == nil {
		t.Error("no error without a run directory")
	}
	os.WriteFile(filepath.Join(run, record.HostFile), []byte("nonsense\n"), 0o644)
	_, err = runPlotCmd(run, "--out", filepath.Join(dir, "bad"))
	if !errors.Is(err, record.ErrCorrupt) || !strings.Contains(err.Error(), record.HostFile) {
		t.Errorf("corrupt run: error %v, want ErrCorrupt naming %s", err, record.HostFile)
	}
}
