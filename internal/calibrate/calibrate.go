// Package calibrate identifies the host's thermal plant: it applies a load
// step with real busy threads, records how the temperature answers, fits a
// first-order-plus-dead-time model (package control) and tunes the price
// controller from it with the SIMC rules.
//
// The driver takes its time, its load and its telemetry from its caller, so
// that tests can run it against the thermal twin on a fake clock; the CLI
// hands it the real ones.
package calibrate

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"context"
	"errors"
	"fmt"
	"time"

	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Load is a CPU load that can be switched on and off.
type Load interface {
	Start(threads int) error
	Stop()
}

// Config says how to run the step experiment.
type Config struct {
	// Idle is how long to record before the step (the pre-step level).
	Idle time.Duration
	// Step is how long the load runs and is recorded after the step; it
	// must cover the dead time plus three time constants.
	Step time.Duration
	// Interval is the sampling interval.
	Interval time.Duration
	// Threads is the number of busy threads the step starts.
	Threads int
	// TauC is the desired closed-loop time constant for SIMC; 0 means
	// Skogestad's tight choice τc = θ, floored at τ/10 and at Interval.
	TauC time.Duration
}

// Result is what calibration found.
type Result struct {
	Profile control.Profile `json:"profile"`
	// K is the plant gain in K/W, Tau and Theta its time constant and dead
	// time, as fitted.
	K            float64 `json:"k_kelvin_per_watt"`
	TauSeconds   float64 `json:"tau_seconds"`
	ThetaSeconds float64 `json:"theta_seconds"`
	// TwinTauSeconds is the twin's true τ = R·C when the temperature came
	// from the twin, so the fit can be checked against it.
	TwinTauSeconds *float64 `json:"twin_tau_seconds,omitempty"`
	// Kc (W/K) and TauISeconds are the SIMC PI tuning of the thermal plant.
	Kc          float64 `json:"simc_kc_watts_per_kelvin"`
	TauISeconds float64 `json:"simc_tau_i_seconds"`
	// PowerStepWatts is the size of the power step the load caused.
	PowerStepWatts    float64        `json:"power_step_watts"`
	EnergySource      sensors.Source `json:"energy_source"`
	TemperatureSource sensors.Source `json:"temperature_source"`
	Samples           int            `json:"samples"`
}

// Run performs the step experiment and fits the plant. twinTau is the
// twin's R·C when temp is the twin, else 0.
func Run(ctx context.Context, cfg Config, energy sensors.EnergyCounter, temp sensors.Thermometer, twinTau time.Duration, load Load, clk clock.Clock) (Result, error) {
	if cfg.Idle <= 0 || cfg.Step <= 0 || cfg.Interval <= 0 || cfg.Threads <= 0 {
		return Result{}, fmt.Errorf("calibrate: idle %v, step %v, interval %v and threads %d must all be positive", cfg.Idle, cfg.Step, cfg.Interval, cfg.Threads)
	}
	if cfg.Interval*10 > cfg.Step {
		return Result{}, fmt.Errorf("calibrate: interval %v is too coarse for a %v step (want ≥ 10 samples)", cfg.Interval, cfg.Step)
	}
	start := clk.Now()
	prevE, err := energy.ReadEnergy()
	if err != nil {
		return Result{}, fmt.Errorf("calibrate: read energy: %w", err)
	}
	prevT := start
	var samples []control.Sample
	record := func() error {
		if err := clock.Sleep(ctx, clk, cfg.Interval); err != nil {
			return err
		}
		now := clk.Now()
		e, err := energy.ReadEnergy()
		if err != nil {
			return fmt.Errorf("calibrate: read energy: %w", err)
		}
		c, err := temp.ReadTemperature()
		if err != nil {
			return fmt.Errorf("calibrate: read temperature: %w", err)
		}
		p := units.AveragePower(units.Energy(max(int64(e)-int64(prevE), 0)), now.Sub(prevT))
		// The power over (prevT, now] is attributed to its end, as the
		// temperature read at now is its consequence.
		samples = append(samples, control.Sample{T: now.Sub(start), Input: float64(p), Output: float64(c)})
		prevE, prevT = e, now
		return nil
	}
	for clk.Now().Sub(start) < cfg.Idle {
		if err := record(); err != nil {
			return Result{}, err
		}
	}
	stepAt := clk.Now().Sub(start)
	if err := load.Start(cfg.Threads); err != nil {
		return Result{}, fmt.Errorf("calibrate: start load: %w", err)
	}
	defer load.Stop()
	for clk.Now().Sub(start) < stepAt+cfg.Step {
		if err := record(); err != nil {
			return Result{}, err
		}
	}
	load.Stop()

	var before, after float64
	var nb, na int
	for _, s := range samples {
		switch {
		case s.T <= stepAt:
			before += s.Input
			nb++
		case s.T > stepAt+cfg.Step/2:
			after += s.Input
			na++
		}
	}
	if nb == 0 || na == 0 {
		return Result{}, errors.New("calibrate: too few samples around the step")
	}
	stepSize := after/float64(na) - before/float64(nb)
	fit, err := control.FitFOPDT(samples, stepAt, stepSize)
	if err != nil {
		return Result{}, fmt.Errorf("calibrate: fit: %w", err)
	}
	tauC := cfg.TauC
	if tauC == 0 {
		// Skogestad's tight control asks τc = θ. A plant with (almost) no
		// dead time would then get an unbounded gain, so τc is floored at
		// a tenth of τ and at the sampling interval.
		tauC = max(fit.Theta, fit.Tau/10, cfg.Interval)
	}
	kc, tauI, err := control.SIMC(fit, tauC)
	if err != nil {
		return Result{}, fmt.Errorf("calibrate: tune: %w", err)
	}
	res := Result{
		Profile: control.Profile{
			Model: fit, Input: control.InputPower, StepSize: stepSize,
			FittedAt: clk.Now().UTC(), Temperature: temp.Source(), TwinTau: twinTau,
		},
		K: fit.K, TauSeconds: fit.Tau.Seconds(), ThetaSeconds: fit.Theta.Seconds(),
		Kc: kc, TauISeconds: tauI.Seconds(),
		PowerStepWatts: stepSize,
		EnergySource:   energy.Source(), TemperatureSource: temp.Source(),
		Samples: len(samples),
	}
	if twinTau > 0 {
		s := twinTau.Seconds()
		res.TwinTauSeconds = &s
	}
	return res, nil
}
