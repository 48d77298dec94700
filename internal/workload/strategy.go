package workload

import (
	"fmt"

	"github.com/maxwellhq/maxwell/agent/proto"
)

// Default strategy parameters, in multiples of a slot's expected energy at
// multiplier 1 (proto.Tick.SlotEnergy).
const (
	// DefaultValuation is what a slot is worth to the Scientist: it pays up
	// to twice the energy the slot costs the host when cool.
	DefaultValuation = 2.0
	// DefaultGreed is what the Miner offers: six times the energy, so it
	// outbids the Scientist until the host is hot enough for the thermal
	// multiplier to pass 6.
	DefaultGreed = 6.0
)

// ScientistStrategy bids the Scientist's valuation of a slot, Valuation ×
// the tick's slot energy (credits per full slot, rounded down), for Units
// slots, as long as the reserve price is not above it. When it is, the
// Scientist abstains and waits for the price to fall: the host pauses it
// meanwhile, and its work waits with it.
type ScientistStrategy struct {
	// Valuation is the most the Scientist pays for a slot, in multiples of
	// the slot's energy. Not positive (or NaN) means DefaultValuation.
	Valuation float64
	// Units is how many slots it bids for, 1 to proto.MaxBidUnits; 0 means
	// 1 and larger values are capped. The agent command passes its thread
	// count.
	Units int
}

// Bid implements agent.Strategy.
func (s ScientistStrategy) Bid(t proto.Tick) (price uint64, units int, ok bool) {
	value := scaleEnergy(t.SlotEnergy, positiveOr(s.Valuation, DefaultValuation))
	if t.Reserve > value {
		return 0, 0, false
	}
	return value, clampUnits(s.Units), true
}

// MinerStrategy bids greedily: Greed × the tick's slot energy (credits per
// full slot, rounded down) for Units slots, at every tick, whatever the
// reserve price and whatever its balance. It does not cap its bid at what
// it can pay: the market does, ranking each unit at no more than the
// wallet's balance divided by the units bid for, and a wallet that is empty
// buys nothing. (A Miner that only bid what it could afford would be a
// prudent Miner; this one is greedy by design.)
type MinerStrategy struct {
	// Greed is the Miner's price for a slot, in multiples of the slot's
	// energy. Not positive (or NaN) means DefaultGreed.
	Greed float64
	// Units is how many slots it bids for, as in ScientistStrategy.
	Units int
}

// Bid implements agent.Strategy.
func (m MinerStrategy) Bid(t proto.Tick) (price uint64, units int, ok bool) {
	return scaleEnergy(t.SlotEnergy, positiveOr(m.Greed, DefaultGreed)), clampUnits(m.Units), true
}

// StrategyKind names a bidding strategy.
type StrategyKind string

// The strategies an agent may bid with.
const (
	// Prudent bids up to its multiple of a slot's energy and abstains
	// while the reserve is above it (ScientistStrategy).
	Prudent StrategyKind = "prudent"
	// Greedy bids its multiple at every tick, whatever the price
	// (MinerStrategy).
	Greedy StrategyKind = "greedy"
)

// ParseStrategy parses a strategy's name; "" gives def.
func ParseStrategy(s string, def StrategyKind) (StrategyKind, error) {
	switch k := StrategyKind(s); k {
	case "":
		return def, nil
	case Prudent, Greedy:
		return k, nil
	}
	return "", fmt.Errorf("strategy %q: want %s or %s", s, Prudent, Greedy)
}

// Bidder returns the strategy of kind k at multiple m for units slots.
func Bidder(k StrategyKind, m float64, units int) func(proto.Tick) (uint64, int, bool) {
	if k == Greedy {
		return MinerStrategy{Greed: m, Units: units}.Bid
	}
	return ScientistStrategy{Valuation: m, Units: units}.Bid
}

// scaleEnergy returns floor(energy × k), at most proto.MaxPrice.
func scaleEnergy(energy uint64, k float64) uint64 {
	if energy == 0 {
		return 0
	}
	v := float64(energy) * k
	switch {
	case !(v < proto.MaxPrice): // also +Inf
		return proto.MaxPrice
	case v < 0:
		return 0
	}
	return uint64(v)
}

func positiveOr(k, def float64) float64 {
	if !(k > 0) {
		return def
	}
	return k
}

func clampUnits(n int) int {
	return min(max(n, 1), proto.MaxBidUnits)
}
