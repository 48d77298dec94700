package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/maxwellhq/maxwell/internal/lab"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/scenario"
)

// TestStudyShort runs the seed's story under every policy and the useful
// agents alone, once, for a few seconds each, and checks study.json
// against the run directories it names (figure by figure, as MeasureRun
// reads them), and each policy against what it is: nobody is charged
// outside the economy, the oracle never runs the parasite, the economy's
// ledgers balance, and a plot is drawn.
func TestStudyShort(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	dir := filepath.Join(t.TempDir(), "study")
	cfg := filepath.Join(t.TempDir(), "cool.yaml")
	// The twin models the whole host: out of the way of other tests' heat.
	if err := os.WriteFile(cfg, []byte("engine:\n  setpoint_celsius: 80\n  critical_celsius: 95\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := run(t, "--config", cfg, "study", "seed", "--repeats", "1", "--duration", "3s", "--out", dir, "--json",
		"--policies", "cfs,weights,thermal-cap,oracle,maxwell-gsp,maxwell-vcg,alone")
	if err != nil {
		t.Fatalf("study: %v\n%s", err, stderr)
	}
	var res lab.StudyResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	b, err := os.ReadFile(filepath.Join(dir, "study.json"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk lab.StudyResult
	if err := json.Unmarshal(b, &onDisk); err != nil || !reflect.DeepEqual(onDisk, res) {
		t.Fatalf("study.json differs from the printed result (%v)", err)
	}
	if len(res.Scenarios) != 1 || len(res.Scenarios[0].Policies) != 7 {
		t.Fatalf("study: %+v", res)
	}
	sf := res.Scenarios[0]
	sc, err := scenario.Find("seed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sf.Plot); err != nil {
		t.Errorf("plot: %v", err)
	}
	for _, pf := range sf.Policies {
		if len(pf.Runs) != 1 {
			t.Fatalf("%s: %d runs", pf.Policy, len(pf.Runs))
		}
		got := pf.Runs[0]
		again, err := lab.MeasureRun(got.Dir, sc, sf.SetpointCelsius)
		if err != nil {
			t.Fatal(err)
		}
		again.Repeat = got.Repeat
		if !reflect.DeepEqual(again, got) {
			t.Errorf("%s: study.json says %+v, the run directory %+v", pf.Policy, got, again)
		}
		if pf.UsefulPerJoule.Median != got.UsefulPerJoule || pf.UsefulPerJoule.N != 1 {
			t.Errorf("%s: statistic %+v of one run %v", pf.Policy, pf.UsefulPerJoule, got.UsefulPerJoule)
		}
		r, err := record.ReadRun(got.Dir)
		if err != nil {
			t.Fatal(err)
		}
		sum := record.Summarize(r)
		for _, a := range sum.Agents {
			paid := a.Wallet != nil && a.Wallet.Paid > 0
			switch pf.Policy {
			case lab.StudyMaxwellGSP, lab.StudyMaxwellVCG:
			default:
				if paid {
					t.Errorf("%s: %s paid %d: only the economy charges", pf.Policy, a.Name, a.Wallet.Paid)
				}
			}
			if pf.Policy == lab.StudyOracle && a.Name == "miner" && a.CPUSeconds > 0.3 {
				t.Errorf("the oracle ran the parasite for %.2f CPU-seconds", a.CPUSeconds)
			}
			if pf.Policy == lab.StudyAlone && a.Name == "miner" {
				t.Errorf("the useful agents alone ran the miner")
			}
		}
		if got.Useful <= 0 && pf.Policy != lab.StudyMaxwellVCG && pf.Policy != lab.StudyMaxwellGSP {
			t.Errorf("%s: no useful work in 3 s", pf.Policy)
		}
	}
}
