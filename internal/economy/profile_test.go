package economy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/control"
)

// TestProfile: a multiplier-step profile retunes the price loop with the
// predictor; a load-step profile gives the predictor only; no file is no
// profile, said so; a bad file is an error.
func TestProfile(t *testing.T) {
	base, err := EngineConfig(config.Default(), 2, "")
	if err != nil {
		t.Fatal(err)
	}
	tick := 100 * time.Millisecond
	dir := t.TempDir()
	save := func(name string, p control.Profile) string {
		path := filepath.Join(dir, name)
		if err := p.Save(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	price := save("price.json", control.Profile{Model: control.FOPDT{K: -14.76, Tau: 2 * time.Second, Theta: 200 * time.Millisecond}, Input: control.InputMultiplier, StepSize: 1, FittedAt: time.Now()})
	ec := base
	what, err := loadProfile(&ec, price, tick)
	if err != nil || !strings.Contains(what, "SIMC gains") || ec.Controller.Predictor.Horizon != 200*time.Millisecond || ec.Controller.Gains == base.Controller.Gains {
		t.Errorf("a price-loop profile: %q, %v, %+v", what, err, ec.Controller)
	}
	load := save("load.json", control.Profile{Model: control.FOPDT{K: 2.5, Tau: 2 * time.Second, Theta: 50 * time.Millisecond}, Input: control.InputPower, StepSize: 10, FittedAt: time.Now()})
	ec = base
	what, err = loadProfile(&ec, load, tick)
	if err != nil || !strings.Contains(what, "load step") || ec.Controller.Predictor.Tau != 2*time.Second || ec.Controller.Gains != base.Controller.Gains {
		t.Errorf("a load-step profile: %q, %v, %+v", what, err, ec.Controller)
	}
	ec = base
	if what, err := loadProfile(&ec, filepath.Join(dir, "none.json"), tick); err != nil || !strings.Contains(what, "does not exist") {
		t.Errorf("no profile: %q, %v", what, err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	if _, err := loadProfile(&ec, bad, tick); err == nil {
		t.Error("a bad profile was used")
	}
}
