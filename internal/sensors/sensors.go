// Package sensors finds and reads the host's power and temperature sensors:
// powercap RAPL, model-specific registers, hwmon and thermal zones.
//
// Every reader takes a root path (the directory that stands for / on the
// host, or for /sys or /dev as documented on each), so that it can be tested
// against a fixture tree in testdata/ laid out in the kernel's documented
// formats, the way prometheus/procfs and node_exporter do it.
//
// Every figure a reader returns carries its Source: what produced it and how
// far it can be trusted (its Tier). Model-based estimates live in package
// model and use the same types.
package sensors

import (
	"errors"
	"fmt"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Tier says how far a figure can be trusted.
type Tier int

// The tiers, from most to least trustworthy.
const (
	// TierCalibrated is a real sensor calibrated against an external
	// reference (for RAPL: ±5% only on calibrated hosts).
	TierCalibrated Tier = 1
	// TierSensor is a real, uncalibrated hardware sensor.
	TierSensor Tier = 2
	// TierModel is an estimate from a model, not a measurement.
	TierModel Tier = 3
)

// String returns a short human name for t.
func (t Tier) String() string {
	switch t {
	case TierCalibrated:
		return "tier 1 (calibrated sensor)"
	case TierSensor:
		return "tier 2 (sensor)"
	case TierModel:
		return "tier 3 (model)"
	}
	return fmt.Sprintf("tier %d (unknown)", int(t))
}

// Kind names the kernel interface (or model) a source reads.
type Kind string

// The kinds of source Maxwell knows.
const (
	KindRAPL        Kind = "rapl"         // /sys/class/powercap/intel-rapl*
	KindMSR         Kind = "msr"          // /dev/cpu/N/msr
	KindHwmon       Kind = "hwmon"        // /sys/class/hwmon/hwmonN
	KindThermalZone Kind = "thermal_zone" // /sys/class/thermal/thermal_zoneN
	KindModel       Kind = "model"        // an estimate; see package model
)

// Quantity is what a source measures.
type Quantity string

// The quantities.
const (
	QuantityEnergy      Quantity = "energy"
	QuantityTemperature Quantity = "temperature"
)

// Source describes where a figure came from.
type Source struct {
	Kind     Kind     `json:"kind"`
	Quantity Quantity `json:"quantity"`
	// Name identifies the source within its kind, e.g. "package-0",
	// "coretemp Package id 0", "x86_pkg_temp", "linear-utilisation".
	Name string `json:"name"`
	// Path is the file or device read, empty for a model.
	Path string `json:"path,omitempty"`
	Tier Tier   `json:"tier"`
	// Model names the model and its parameters for tier-3 sources, so that
	// every estimated figure can say which model made it.
	Model string `json:"model,omitempty"`
}

// Estimated reports whether figures from s are model estimates rather than
// measurements.
func (s Source) Estimated() bool { return s.Tier == TierModel }

// Label returns "measured" or "estimated" for s.
func (s Source) Label() string {
	if s.Estimated() {
		return "estimated"
	}
	return "measured"
}

// String describes s in one line.
func (s Source) String() string {
	out := fmt.Sprintf("%s %s %q, %s", s.Kind, s.Quantity, s.Name, s.Tier)
	if s.Path != "" {
		out += " at " + s.Path
	}
	if s.Model != "" {
		out += " [model: " + s.Model + "]"
	}
	return out
}

// EnergyCounter reads a cumulative energy counter. Implementations handle
// hardware wraparound themselves (with units.Wrap), so the value returned is
// monotonically non-decreasing for the life of the counter and counts from an
// arbitrary origin: only differences between two reads are meaningful.
type EnergyCounter interface {
	Source() Source
	ReadEnergy() (units.Energy, error)
}

// Thermometer reads a temperature.
type Thermometer interface {
	Source() Source
	ReadTemperature() (units.Celsius, error)
}

// Errors a reader may wrap.
var (
	// ErrNotFound means the interface does not exist on this host.
	ErrNotFound = errors.New("sensor not found")
	// ErrPermission means the interface exists but this process may not
	// read it (powercap energy_uj is root-only since Linux 5.10).
	ErrPermission = errors.New("sensor not readable: permission denied")
	// ErrGarbage means the interface returned a value that is not a
	// plausible reading (not a number, negative, out of physical range).
	ErrGarbage = errors.New("sensor returned an implausible value")
)
