// Package telemetry chooses where Maxwell's power and temperature figures
// come from: the host's real sensors where it has them (package sensors),
// otherwise the models of package model, and it says which.
//
// The fallback order is, for energy: a real counter (RAPL, MSR), else the
// linear utilisation power model; for temperature: a real thermometer, else
// the thermal RC twin, driven by the real energy counter where there is one
// and by the power model where there is not.
package telemetry

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"fmt"

	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/model"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Telemetry is the chosen pair of energy counter and thermometer.
type Telemetry struct {
	Energy sensors.EnergyCounter
	Temp   sensors.Thermometer
	// IdlePower is the host's idle power where the power model gives it,
	// else 0 (a real counter does not tell idle power apart).
	IdlePower units.Power
	// Inventory is what discovery found.
	Inventory sensors.Inventory
	// Estimator is the model in use, nil if both figures are measured.
	Estimator *model.Estimator
}

// Open discovers the host's sensors under roots and fills the gaps with the
// models configured in cfg. The power model covers every CPU of the host
// (online CPUs as /proc/stat lists them).
func Open(roots sensors.Roots, cfg config.Config, clk clock.Clock) (*Telemetry, error) {
	inv := sensors.Discover(roots)
	t := &Telemetry{Energy: inv.EnergyCounter(), Temp: inv.Thermometer(), Inventory: inv}
	twin := model.TwinParams{
		Ambient: units.Celsius(cfg.ThermalTwin.AmbientCelsius),
		R:       cfg.ThermalTwin.ResistanceKPerW,
		C:       cfg.ThermalTwin.CapacitanceJPerK,
	}
	if t.Energy == nil {
		util, err := model.NewCPUSampler(roots.Proc)
		if err != nil {
			return nil, fmt.Errorf("telemetry: no energy sensor and no CPU statistics for the power model: %w", err)
		}
		n, err := util.NumCPU()
		if err != nil {
			return nil, fmt.Errorf("telemetry: count CPUs: %w", err)
		}
		ref := cfg.PowerModel.Reference
		lin, err := model.ForHost(model.Reference{
			Name: ref.Name, Citation: ref.Citation,
			IdleWatts: ref.IdleWatts, MaxWatts: ref.MaxWatts, HardwareThreads: ref.HardwareThreads,
		}, n)
		if err != nil {
			return nil, fmt.Errorf("telemetry: power model: %w", err)
		}
		est, err := model.NewEstimator(clk, util, lin, twin)
		if err != nil {
			return nil, fmt.Errorf("telemetry: %w", err)
		}
		t.Energy, t.Estimator, t.IdlePower = est, est, lin.Idle
	}
	if t.Temp == nil {
		if t.Estimator == nil {
			est, err := model.NewCounterEstimator(clk, t.Energy, twin)
			if err != nil {
				return nil, fmt.Errorf("telemetry: %w", err)
			}
			t.Estimator = est
		}
		t.Temp = t.Estimator.Thermometer()
	}
	return t, nil
}

// Estimated reports whether any figure is a model estimate.
func (t *Telemetry) Estimated() bool {
	return t.Energy.Source().Estimated() || t.Temp.Source().Estimated()
}

// Sources returns the energy and temperature sources in use.
func (t *Telemetry) Sources() (energy, temp sensors.Source) {
	return t.Energy.Source(), t.Temp.Source()
}
