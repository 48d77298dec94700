package economy

import (
	"time"

	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/market"
	"github.com/maxwellhq/maxwell/internal/units"
)

// SlotEnergy is the expected energy of one busy CPU over one tick: the
// power model's full-load watts per hardware thread of its reference
// server, times the tick. It is the reserve price at multiplier 1. It comes
// from the model even on hosts with a power sensor, which measures the whole
// package and cannot say what one more busy CPU costs before it runs.
func SlotEnergy(cfg config.Config) units.Energy {
	ref := cfg.PowerModel.Reference
	perCPU := units.Power(ref.MaxWatts / float64(ref.HardwareThreads))
	return perCPU.Over(cfg.Engine.Tick)
}

// EngineConfig builds the engine's configuration for a host selling slots
// CPUs per tick under policy ("" is engine.PolicyMaxwell).
func EngineConfig(cfg config.Config, slots int, policy engine.Policy) (engine.Config, error) {
	rule, err := market.ParseRule(cfg.Engine.Rule)
	if err != nil {
		return engine.Config{}, err
	}
	e := cfg.Engine
	return engine.Config{
		Policy:     policy,
		Tick:       e.Tick,
		Slots:      slots,
		SlotEnergy: SlotEnergy(cfg),
		Rule:       rule,
		Controller: control.Config{
			Gains:    control.Gains{Kp: e.Gains.Kp, Ki: e.Gains.Ki, Kd: e.Gains.Kd},
			OutMin:   1,
			OutMax:   e.PriceCeiling,
			Setpoint: units.Celsius(e.SetpointCelsius),
			Critical: units.Celsius(e.CriticalCelsius),
		},
		TaxPicojoulesPerByte:        e.TaxPicojoulesPerByte,
		RentPicojoulesPerByteSecond: e.RentPicojoulesPerByteSecond,
		Insolvency:                  engine.Insolvency(e.Insolvency),
		LowBalancePercent:           e.LowBalancePercent,
		Ration:                      e.Ration,
	}, nil
}

// DemoEndowment is each demo agent's endowment: the configured figure, or,
// when that is 0, enough to buy every slot at twice the base price for the
// whole run.
func DemoEndowment(cfg config.Config, slots int, d time.Duration) units.Credits {
	if cfg.Demo.EndowmentCredits > 0 {
		return units.Credits(cfg.Demo.EndowmentCredits)
	}
	ticks := units.Credits(d / cfg.Engine.Tick)
	return 2 * units.Credits(slots) * units.Credits(SlotEnergy(cfg)) * ticks
}
