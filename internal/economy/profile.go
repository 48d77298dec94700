package economy

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/engine"
)

// ApplyProfile tunes the engine's price controller from a host profile
// (maxwell calibrate): a multiplier step identifies the price loop itself,
// so it gives SIMC gains with the Smith-style predictor
// (control.PredictiveGains); a load step identifies only the thermal part
// (τ, θ in kelvin per watt), so it gives the predictor's horizon and time
// constant and leaves the configured gains. It returns what it did, in a
// phrase for the economy's started event and State.
func ApplyProfile(ec *engine.Config, p control.Profile, tick time.Duration) (string, error) {
	m := p.Model
	switch p.Input {
	case control.InputMultiplier:
		g, pr, err := control.PredictiveGains(m, tick, 0)
		if err != nil {
			return "", err
		}
		ec.Controller.Gains, ec.Controller.Predictor = g, pr
		return fmt.Sprintf("price loop identified (K %.3g K per unit, τ %v, θ %v, fitted %s): SIMC gains Kp %.3g Ki %.3g with the predictor",
			m.K, m.Tau, m.Theta, p.FittedAt.Format(time.DateOnly), g.Kp, g.Ki), nil
	case control.InputPower:
		if m.Tau <= 0 {
			return "", fmt.Errorf("profile: thermal time constant %v", m.Tau)
		}
		ec.Controller.Predictor = control.Predictor{Horizon: m.Theta, Tau: m.Tau}
		return fmt.Sprintf("thermal plant identified by a load step (K %.3g K/W, τ %v, θ %v, fitted %s): the predictor looks θ ahead; gains as configured",
			m.K, m.Tau, m.Theta, p.FittedAt.Format(time.DateOnly)), nil
	}
	return "", fmt.Errorf("profile: input %q: want %s or %s", p.Input, control.InputMultiplier, control.InputPower)
}

// loadProfile applies the profile at path, if there is one: none is not
// an error (the phrase says so), a bad one is.
func loadProfile(ec *engine.Config, path string, tick time.Duration) (string, error) {
	if path == "" {
		return "no host profile", nil
	}
	p, err := control.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "no host profile (" + path + " does not exist: maxwell calibrate makes one)", nil
	}
	if err != nil {
		return "", fmt.Errorf("economy: host profile: %w", err)
	}
	what, err := ApplyProfile(ec, p, tick)
	if err != nil {
		return "", fmt.Errorf("economy: host profile %s: %w", path, err)
	}
	return "host profile " + path + ": " + what, nil
}
