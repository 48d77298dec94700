package lab

import (
	"context"
	"io"
	"math"
	"time"

	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/units"
)

// DemoOptions configure Demo.
type DemoOptions struct {
	Duration time.Duration
	Dir      string
	// Story, if set, hears the story as lines: the events that matter as
	// they happen, and the state of the economy every few seconds.
	Story io.Writer
	// Show, if set, runs beside the demo with its session (the dashboard)
	// and ends the demo early by returning.
	Show func(ctx context.Context, s Session) error
}

// DemoResult is what `maxwell demo --json` prints.
type DemoResult struct {
	Summary record.Summary `json:"summary"`
	Economy DemoEconomy    `json:"economy"`
}

// DemoEconomy is the demo's story in figures.
type DemoEconomy struct {
	EndowmentCredits units.Credits `json:"endowment_credits"`
	SlotEnergyJoules float64       `json:"slot_energy_joules"`
	Rule             string        `json:"rule"`
	TaxPJPerByte     uint64        `json:"landauer_tax_picojoules_per_byte"`
	// LandauerFloorPJPerByte is kT·ln 2 per bit at 300 K, per byte, and
	// TaxOverFloor the tax's multiple of it: the physics beside the policy.
	LandauerFloorPJPerByte float64 `json:"landauer_floor_picojoules_per_byte"`
	TaxOverFloor           float64 `json:"tax_over_landauer_floor"`
	MeterSource            string  `json:"meter_source"`
	// MinerDiedAtSeconds is when the Miner's apoptosis happened, if it did.
	MinerDiedAtSeconds *float64 `json:"miner_died_at_seconds,omitempty"`
	// ScientistPrimesPerSecondBefore/After are the Scientist's throughput
	// before and after the Miner's apoptosis.
	ScientistPrimesPerSecondBefore *float64      `json:"scientist_primes_per_second_before,omitempty"`
	ScientistPrimesPerSecondAfter  *float64      `json:"scientist_primes_per_second_after,omitempty"`
	ScientistSurvived              bool          `json:"scientist_survived"`
	LedgerOK                       bool          `json:"ledger_ok"`
	LedgerMintedCredits            units.Credits `json:"ledger_minted_credits"`
	LedgerBurnedCredits            units.Credits `json:"ledger_burned_credits"`
}

// Demo runs the Scientist and the Miner, equally funded and without
// income, under Maxwell's economy for the duration, and tells the story.
func (env Env) Demo(ctx context.Context, o DemoOptions) (DemoResult, error) {
	var res DemoResult
	ec, err := economy.EngineConfig(env.Config, len(env.CPUs), engine.PolicyMaxwell)
	if err != nil {
		return res, err
	}
	endow := economy.DemoEndowment(env.Config, len(env.CPUs), o.Duration)
	floor := LandauerFloorPJPerByte(300)
	res.Economy = DemoEconomy{
		EndowmentCredits: endow, SlotEnergyJoules: ec.SlotEnergy.Joules(), Rule: env.Config.Engine.Rule,
		TaxPJPerByte: ec.TaxPicojoulesPerByte, LandauerFloorPJPerByte: floor, TaxOverFloor: float64(ec.TaxPicojoulesPerByte) / floor,
	}
	n := newNarrator(o.Story, env.Clock)
	show := o.Show
	if o.Story != nil {
		n.intro(env, ec, endow, o.Duration)
		show = n.watching(o.Show)
	}
	r, err := env.run(ctx, runSpec{kind: "maxwell", policy: engine.PolicyMaxwell, agents: env.storyAgents(endow, true),
		duration: o.Duration, dir: o.Dir, show: show, onEvent: n.event})
	res.Summary = r.summary
	res.Economy.MeterSource = r.meter
	res.Economy.LedgerOK = r.ledger.OK
	res.Economy.LedgerMintedCredits, res.Economy.LedgerBurnedCredits = r.ledger.Minted, r.ledger.Burned
	if full, rerr := record.ReadRun(o.Dir); rerr == nil {
		res.Economy.fill(full, r.summary)
	}
	return res, err
}

// LandauerFloorPJPerByte is Landauer's bound kT·ln 2 per erased bit, for a
// byte, in picojoules, at temperature kelvin.
func LandauerFloorPJPerByte(kelvin float64) float64 {
	const boltzmann = 1.380649e-23 // J/K, exact in the 2019 SI
	return boltzmann * kelvin * math.Ln2 * 8 * 1e12
}

// fill works out the demo's figures from the run: when the Miner died and
// the Scientist's throughput before and after.
func (e *DemoEconomy) fill(r record.Run, sum record.Summary) {
	end := time.Duration(sum.DurationSeconds * float64(time.Second))
	for _, a := range sum.Agents {
		switch a.Name {
		case Miner:
			e.MinerDiedAtSeconds = a.DiedAtSeconds
		case Scientist:
			e.ScientistSurvived = a.DiedAtSeconds == nil
		}
	}
	rate := func(from, to time.Duration) *float64 {
		if v, ok := record.CounterRate(r, Scientist, "primes", from, to); ok {
			return &v
		}
		return nil
	}
	if e.MinerDiedAtSeconds == nil {
		e.ScientistPrimesPerSecondBefore = rate(0, end)
		return
	}
	died := time.Duration(*e.MinerDiedAtSeconds * float64(time.Second))
	e.ScientistPrimesPerSecondBefore = rate(0, died)
	e.ScientistPrimesPerSecondAfter = rate(died, end)
}
