package workload

import (
	"math"
	"testing"

	"github.com/maxwellhq/maxwell/agent/proto"
)

func TestScientistStrategy(t *testing.T) {
	tests := []struct {
		name  string
		s     ScientistStrategy
		tick  proto.Tick
		price uint64
		units int
		ok    bool
	}{
		{"cool host: bids its valuation", ScientistStrategy{Units: 2},
			proto.Tick{Reserve: 100_000, Multiplier: 1, SlotEnergy: 100_000}, 200_000, 2, true},
		{"reserve at the valuation: still bids", ScientistStrategy{Valuation: 1.5, Units: 1},
			proto.Tick{Reserve: 150_000, Multiplier: 1.5, SlotEnergy: 100_000}, 150_000, 1, true},
		{"reserve one credit above: waits", ScientistStrategy{Valuation: 1.5, Units: 1},
			proto.Tick{Reserve: 150_001, Multiplier: 1.5, SlotEnergy: 100_000}, 0, 0, false},
		{"hot host, default valuation: waits", ScientistStrategy{Units: 4},
			proto.Tick{Reserve: 300_000, Multiplier: 3, SlotEnergy: 100_000}, 0, 0, false},
		{"rounds down", ScientistStrategy{Valuation: 2.5, Units: 1},
			proto.Tick{Reserve: 0, Multiplier: 1, SlotEnergy: 3}, 7, 1, true},
		{"reserve between value and its ceiling: waits", ScientistStrategy{Valuation: 2.5, Units: 1},
			proto.Tick{Reserve: 8, Multiplier: 1, SlotEnergy: 3}, 0, 0, false},
		{"negative valuation means default", ScientistStrategy{Valuation: -1, Units: 1},
			proto.Tick{Reserve: 10, SlotEnergy: 10}, 20, 1, true},
		{"NaN valuation means default", ScientistStrategy{Valuation: math.NaN(), Units: 1},
			proto.Tick{Reserve: 10, SlotEnergy: 10}, 20, 1, true},
		{"no units means 1", ScientistStrategy{},
			proto.Tick{Reserve: 10, SlotEnergy: 10}, 20, 1, true},
		{"units capped", ScientistStrategy{Units: 1000},
			proto.Tick{Reserve: 10, SlotEnergy: 10}, 20, proto.MaxBidUnits, true},
		{"price capped", ScientistStrategy{Valuation: 1e300, Units: 1},
			proto.Tick{Reserve: proto.MaxPrice, SlotEnergy: 10}, proto.MaxPrice, 1, true},
		{"infinite valuation capped", ScientistStrategy{Valuation: math.Inf(1), Units: 1},
			proto.Tick{Reserve: 5, SlotEnergy: 1}, proto.MaxPrice, 1, true},
		{"unknown slot energy, free slot", ScientistStrategy{Valuation: math.Inf(1), Units: 1},
			proto.Tick{Reserve: 0, SlotEnergy: 0}, 0, 1, true},
		{"unknown slot energy, priced slot: waits", ScientistStrategy{Units: 1},
			proto.Tick{Reserve: 1, SlotEnergy: 0}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			price, units, ok := tt.s.Bid(tt.tick)
			if price != tt.price || units != tt.units || ok != tt.ok {
				t.Errorf("%+v.Bid(%+v) = %d, %d, %v; want %d, %d, %v", tt.s, tt.tick, price, units, ok, tt.price, tt.units, tt.ok)
			}
			if ok {
				if err := proto.ValidateBid(&proto.Bid{Tick: 1, Price: price, Units: units}); err != nil {
					t.Errorf("bid is invalid: %v", err)
				}
				if price < tt.tick.Reserve {
					t.Errorf("bid %d below the reserve %d", price, tt.tick.Reserve)
				}
			}
		})
	}
}

func TestMinerStrategy(t *testing.T) {
	tests := []struct {
		name  string
		m     MinerStrategy
		tick  proto.Tick
		price uint64
		units int
	}{
		{"default greed", MinerStrategy{Units: 2},
			proto.Tick{Reserve: 100_000, Multiplier: 1, SlotEnergy: 100_000, Balance: 1 << 30}, 600_000, 2},
		{"bids below a high reserve all the same", MinerStrategy{Units: 2},
			proto.Tick{Reserve: 800_000, Multiplier: 8, SlotEnergy: 100_000, Balance: 1 << 30}, 600_000, 2},
		{"bids more than it has", MinerStrategy{Greed: 10, Units: 64},
			proto.Tick{Reserve: 1, SlotEnergy: 1_000_000, Balance: 5}, 10_000_000, 64},
		{"bids when broke", MinerStrategy{Units: 1},
			proto.Tick{SlotEnergy: 10, Balance: -100}, 60, 1},
		{"rounds down", MinerStrategy{Greed: 0.5, Units: 1},
			proto.Tick{SlotEnergy: 3}, 1, 1},
		{"zero greed means default", MinerStrategy{Units: 3},
			proto.Tick{SlotEnergy: 1}, 6, 3},
		{"NaN greed means default", MinerStrategy{Greed: math.NaN(), Units: 3},
			proto.Tick{SlotEnergy: 1}, 6, 3},
		{"units clamped up", MinerStrategy{Units: -5},
			proto.Tick{SlotEnergy: 1}, 6, 1},
		{"units clamped down", MinerStrategy{Units: 65},
			proto.Tick{SlotEnergy: 1}, 6, proto.MaxBidUnits},
		{"price capped", MinerStrategy{Greed: 1e9, Units: 1},
			proto.Tick{SlotEnergy: proto.MaxPrice}, proto.MaxPrice, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			price, units, ok := tt.m.Bid(tt.tick)
			if price != tt.price || units != tt.units || !ok {
				t.Errorf("%+v.Bid(%+v) = %d, %d, %v; want %d, %d, true", tt.m, tt.tick, price, units, ok, tt.price, tt.units)
			}
			if err := proto.ValidateBid(&proto.Bid{Tick: 1, Price: price, Units: units}); err != nil {
				t.Errorf("bid is invalid: %v", err)
			}
		})
	}
}

// With the defaults, the Miner outbids the Scientist while the host is
// cool, and only the Miner bids once the multiplier passes the Scientist's
// valuation.
func TestStrategiesTogether(t *testing.T) {
	s, m := ScientistStrategy{Units: 1}, MinerStrategy{Units: 1}
	for _, mult := range []float64{1, 1.5, 2, 2.5, 6, 7} {
		const energy = 1000
		tk := proto.Tick{Multiplier: mult, SlotEnergy: energy, Reserve: uint64(mult * energy)}
		sp, _, sok := s.Bid(tk)
		mp, _, _ := m.Bid(tk)
		if sok != (mult <= DefaultValuation) {
			t.Errorf("multiplier %v: scientist bids = %v", mult, sok)
		}
		if sok && sp >= mp {
			t.Errorf("multiplier %v: scientist %d ≥ miner %d", mult, sp, mp)
		}
	}
}
