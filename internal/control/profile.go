package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/maxwellhq/maxwell/internal/sensors"
)

// ErrBadProfile is wrapped by Load errors for a file that is not a valid
// profile.
var ErrBadProfile = errors.New("control: invalid host profile")

// ProfileVersion is the profile format version Save writes and Load accepts.
const ProfileVersion = 1

// InputKind names what a profile's step experiment moved, and so the unit
// of its gain.
type InputKind string

// The inputs a step experiment can move.
const (
	// InputPower is a load step in watts; K is in kelvin per watt.
	InputPower InputKind = "power"
	// InputMultiplier is a price-multiplier step; K is in kelvin per unit
	// of multiplier, and the model includes the agents' reaction to price.
	InputMultiplier InputKind = "multiplier"
)

// Profile is a host's identified thermal model, as written by maxwell
// calibrate and read back at startup.
type Profile struct {
	// Model is the fitted plant.
	Model FOPDT
	// Input is what the step experiment moved.
	Input InputKind
	// StepSize is the size of that step, in watts or multiplier units.
	StepSize float64
	// FittedAt is when the fit was made (supplied by the caller).
	FittedAt time.Time
	// Temperature is the sensor (or model) the temperatures came from.
	Temperature sensors.Source
	// TwinTau, if non-zero, is the true time constant R·C of the digital
	// twin the experiment ran against, for comparison with Model.Tau.
	TwinTau time.Duration
}

type profileJSON struct {
	Version        int            `json:"version"`
	Model          FOPDT          `json:"model"`
	Input          InputKind      `json:"input"`
	StepSize       float64        `json:"step_size"`
	FittedAt       time.Time      `json:"fitted_at"`
	Temperature    sensors.Source `json:"temperature_source"`
	TwinTauSeconds float64        `json:"twin_tau_s,omitempty"`
}

// MarshalJSON encodes p with a format version and times in seconds.
func (p Profile) MarshalJSON() ([]byte, error) {
	return json.Marshal(profileJSON{
		Version:        ProfileVersion,
		Model:          p.Model,
		Input:          p.Input,
		StepSize:       p.StepSize,
		FittedAt:       p.FittedAt,
		Temperature:    p.Temperature,
		TwinTauSeconds: p.TwinTau.Seconds(),
	})
}

// UnmarshalJSON decodes the form written by MarshalJSON. It rejects other
// format versions and unusable models.
func (p *Profile) UnmarshalJSON(b []byte) error {
	var w profileJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.Version != ProfileVersion {
		return fmt.Errorf("profile version %d, want %d", w.Version, ProfileVersion)
	}
	if err := w.Model.validate(); err != nil {
		return err
	}
	switch w.Input {
	case InputPower, InputMultiplier:
	default:
		return fmt.Errorf("unknown input kind %q", w.Input)
	}
	*p = Profile{
		Model:       w.Model,
		Input:       w.Input,
		StepSize:    w.StepSize,
		FittedAt:    w.FittedAt,
		Temperature: w.Temperature,
		TwinTau:     seconds(w.TwinTauSeconds),
	}
	return nil
}

// Save writes p to path as indented JSON. It writes a temporary file in the
// same directory and renames it over path, so a reader never sees a
// partial profile.
func (p Profile) Save(path string) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding profile: %w", err)
	}
	b = append(b, '\n')
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("saving profile: %w", err)
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("saving profile: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("saving profile: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving profile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving profile: %w", err)
	}
	return nil
}

// Load reads a profile written by Save. A file that is not a valid profile
// gives an error wrapping ErrBadProfile; a missing file one wrapping
// fs.ErrNotExist.
func Load(path string) (Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Profile{}, fmt.Errorf("loading profile: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return Profile{}, fmt.Errorf("%w: %s: %v", ErrBadProfile, path, err)
	}
	return p, nil
}
