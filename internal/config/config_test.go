package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/model"
)

func TestDefault(t *testing.T) {
	c := Default()
	if c.SampleInterval != time.Second || c.Baseline.Duration != 5*time.Minute {
		t.Errorf("defaults = %+v", c)
	}
	// The embedded file and the model package's documented defaults must
	// not drift apart.
	ref := model.DefaultReference()
	got := c.PowerModel.Reference
	if got.IdleWatts != ref.IdleWatts || got.MaxWatts != ref.MaxWatts || got.HardwareThreads != ref.HardwareThreads {
		t.Errorf("default.yaml reference %+v differs from model.DefaultReference %+v", got, ref)
	}
	tw := model.DefaultTwinParams()
	if c.ThermalTwin.ResistanceKPerW != tw.R || c.ThermalTwin.CapacitanceJPerK != tw.C || c.ThermalTwin.AmbientCelsius != float64(tw.Ambient) {
		t.Errorf("default.yaml twin %+v differs from model.DefaultTwinParams %+v", c.ThermalTwin, tw)
	}
}

func TestLoadOverlaysDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.yaml")
	os.WriteFile(path, []byte("baseline:\n  duration: 30s\n  miner:\n    churn_mib_per_sec: 64\n"), 0o644)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Baseline.Duration != 30*time.Second || c.Baseline.Miner.ChurnMiBPerSec != 64 {
		t.Errorf("file settings not applied: %+v", c.Baseline)
	}
	if c.Baseline.Miner.ChunkMiB != 4 || c.ThermalTwin.ResistanceKPerW != 2.5 {
		t.Errorf("defaults lost under a partial file: %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := map[string]string{
		"unknown field":     "baseline:\n  durashun: 30s\n",
		"bad duration":      "baseline:\n  duration: soon\n",
		"negative duration": "baseline:\n  duration: -1s\n",
		"bad cpus":          "baseline:\n  cpus: 3-1\n",
		"zero R":            "thermal_twin:\n  resistance_kelvin_per_watt: 0\n",
		"NaN capacitance":   "thermal_twin:\n  capacitance_joules_per_kelvin: .nan\n",
		"idle above max":    "power_model:\n  reference:\n    idle_watts: 300\n",
		"no citation":       "power_model:\n  reference:\n    citation: \"\"\n",
		"negative churn":    "baseline:\n  miner:\n    churn_mib_per_sec: -5\n",
		"tiny interval":     "sample_interval: 1ns\n",
		"not yaml":          "{{{",
		"wrong type":        "sample_interval: [1]\n",
		"bad rule":          "engine:\n  rule: dutch\n",
		"setpoint too hot":  "engine:\n  setpoint_celsius: 90\n",
		"negative gain":     "engine:\n  gains:\n    kp: -1\n",
		"ceiling below 1":   "engine:\n  price_ceiling: 0.5\n",
		"zero tick":         "engine:\n  tick: 0s\n",
		"bad insolvency":    "engine:\n  insolvency: forgive\n",
		"negative greed":    "demo:\n  miner_greed: -2\n",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.yaml")
			os.WriteFile(path, []byte(body), 0o644)
			_, err := Load(path)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Load = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "config.yaml")
	other := filepath.Join(dir, "other.yaml")
	os.WriteFile(other, []byte("engine:\n  setpoint_celsius: 60\n"), 0o644)
	if c, from, err := Find("", sys); err != nil || from != "" || c.Engine.SetpointCelsius != Default().Engine.SetpointCelsius {
		t.Errorf("no file: %v, %q, %v", c.Engine.SetpointCelsius, from, err)
	}
	os.WriteFile(sys, []byte("engine:\n  setpoint_celsius: 50\n"), 0o644)
	if c, from, err := Find("", sys); err != nil || from != sys || c.Engine.SetpointCelsius != 50 {
		t.Errorf("the system file: %v, %q, %v", c.Engine.SetpointCelsius, from, err)
	}
	if c, from, err := Find(other, sys); err != nil || from != other || c.Engine.SetpointCelsius != 60 {
		t.Errorf("a named file wins: %v, %q, %v", c.Engine.SetpointCelsius, from, err)
	}
	os.WriteFile(sys, []byte("engine:\n  setpont: 50\n"), 0o644)
	if _, _, err := Find("", sys); !errors.Is(err, ErrInvalid) {
		t.Errorf("an invalid system file: %v", err)
	}
}
