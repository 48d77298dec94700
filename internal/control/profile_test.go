package control

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/sensors"
)

func TestProfileRoundTrip(t *testing.T) {
	want := Profile{
		Model:    FOPDT{K: -14.75, Tau: 20*time.Second + 250*time.Millisecond, Theta: 300 * time.Millisecond},
		Input:    InputMultiplier,
		StepSize: 0.5,
		FittedAt: time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC),
		Temperature: sensors.Source{
			Kind: sensors.KindModel, Quantity: sensors.QuantityTemperature,
			Name: "rc-twin", Tier: sensors.TierModel, Model: "rc-twin(R=2.5 K/W, C=0.8 J/K)",
		},
		TwinTau: 2 * time.Second,
	}
	path := filepath.Join(t.TempDir(), "profile.json")
	if err := want.Save(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"version": 1`, `"tau_s": 20.25`, `"theta_s": 0.3`, `"twin_tau_s": 2`, `"input": "multiplier"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("saved profile lacks %s:\n%s", s, b)
		}
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Load = %+v\nwant   %+v", got, want)
	}
	// No temporary files left beside it.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after Save, want 1", len(ents))
	}
	// Without a twin τ the field is omitted and reads back as zero.
	want.TwinTau = 0
	if err := want.Save(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "twin_tau_s") {
		t.Errorf("twin_tau_s written with no twin:\n%s", b)
	}
	if got, err := Load(path); err != nil || got != want {
		t.Errorf("Load = %+v, %v; want %+v", got, err, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	const model = `"model":{"k":2.5,"tau_s":20,"theta_s":1}`
	tests := map[string]string{
		"not json":       `{`,
		"wrong version":  `{"version":2,` + model + `,"input":"power"}`,
		"no version":     `{` + model + `,"input":"power"}`,
		"zero gain":      `{"version":1,"model":{"k":0,"tau_s":20,"theta_s":1},"input":"power"}`,
		"zero tau":       `{"version":1,"model":{"k":2,"tau_s":0,"theta_s":1},"input":"power"}`,
		"negative theta": `{"version":1,"model":{"k":2,"tau_s":20,"theta_s":-1},"input":"power"}`,
		"huge tau":       `{"version":1,"model":{"k":2,"tau_s":1e300,"theta_s":1},"input":"power"}`,
		"unknown input":  `{"version":1,` + model + `,"input":"voltage"}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			if p, err := Load(path); !errors.Is(err, ErrBadProfile) {
				t.Errorf("Load = %+v, %v; want ErrBadProfile", p, err)
			}
		})
	}
}
