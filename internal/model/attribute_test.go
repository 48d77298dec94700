package model

import (
	"math"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

func TestAttribute(t *testing.T) {
	tests := []struct {
		name       string
		iv         Interval
		wantEnergy []units.Energy
		wantShare  []float64
	}{
		{
			name:       "two cells fill two CPUs",
			iv:         Interval{Elapsed: time.Second, Energy: 10 * units.Joule, Utilisation: 1, NumCPU: 2, CellCPU: []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond}},
			wantEnergy: []units.Energy{2500000, 7500000},
			wantShare:  []float64{0.25, 0.75},
		},
		{
			name:       "other busy time keeps its part",
			iv:         Interval{Elapsed: time.Second, Energy: 10 * units.Joule, Utilisation: 0.5, NumCPU: 2, CellCPU: []time.Duration{500 * time.Millisecond}},
			wantEnergy: []units.Energy{5000000},
			wantShare:  []float64{0.25},
		},
		{
			name:       "cells read after the host: never more than the interval's energy",
			iv:         Interval{Elapsed: time.Second, Energy: 10 * units.Joule, Utilisation: 0.5, NumCPU: 2, CellCPU: []time.Duration{time.Second, time.Second}},
			wantEnergy: []units.Energy{5000000, 5000000},
			wantShare:  []float64{0.5, 0.5},
		},
		{
			name:       "idle interval",
			iv:         Interval{Elapsed: time.Second, Energy: 3 * units.Joule, NumCPU: 2, CellCPU: []time.Duration{0, 0}},
			wantEnergy: []units.Energy{0, 0},
			wantShare:  []float64{0, 0},
		},
		{
			name:       "zero-length interval",
			iv:         Interval{Energy: 3 * units.Joule, Utilisation: 1, NumCPU: 2, CellCPU: []time.Duration{time.Second}},
			wantEnergy: []units.Energy{0},
			wantShare:  []float64{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Attribute(tt.iv)
			var total units.Energy
			for i := range tt.wantEnergy {
				total += s.Energy[i]
				if s.Energy[i] != tt.wantEnergy[i] {
					t.Errorf("energy[%d] = %d, want %d", i, s.Energy[i], tt.wantEnergy[i])
				}
				if math.Abs(s.Share[i]-tt.wantShare[i]) > 1e-12 {
					t.Errorf("share[%d] = %v, want %v", i, s.Share[i], tt.wantShare[i])
				}
			}
			if total > tt.iv.Energy {
				t.Errorf("attributed %d µJ of %d", total, tt.iv.Energy)
			}
		})
	}
}
