package control

import (
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

func BenchmarkStep(b *testing.B) {
	cfg := baseConfig()
	cfg.Gains = Gains{Kp: 0.5, KpUnder: 1, Ki: 0.1, Kd: 0.2, DerivativeFilter: 50 * time.Millisecond, IntegralBand: 10}
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	temps := [...]units.Celsius{58, 59.5, 60.2, 61, 60.4, 59.9, 60.1, 62}
	b.ReportAllocs()
	var sink float64
	for i := 0; b.Loop(); i++ {
		out, err := p.Step(tick, temps[i%len(temps)])
		if err != nil {
			b.Fatal(err)
		}
		sink += out
	}
	_ = sink
}

func BenchmarkReservePrice(b *testing.B) {
	b.ReportAllocs()
	var sink units.Credits
	for i := 0; b.Loop(); i++ {
		sink += ReservePrice(units.Energy(1_000_000+i), 1.8731)
	}
	_ = sink
}

func BenchmarkFitFOPDT(b *testing.B) {
	m := FOPDT{K: 2.5, Tau: 20 * time.Second, Theta: 2 * time.Second}
	s := stepRecord(m, 40, 3, 10, 10*time.Second, 100*time.Millisecond, 160*time.Second, 0.5, 42)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FitFOPDT(s, 10*time.Second, 10); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStepPredictive(b *testing.B) {
	cfg := baseConfig()
	cfg.Gains = Gains{Kp: 1.36, Ki: 3.4}
	cfg.Predictor = Predictor{Horizon: 500 * time.Millisecond, Tau: 2 * time.Second, Gain: -14.75, Knee: 1.25, RateFilter: 200 * time.Millisecond}
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	temps := [...]units.Celsius{58, 59.5, 60.2, 61, 60.4, 59.9, 60.1, 62}
	b.ReportAllocs()
	var sink float64
	for i := 0; b.Loop(); i++ {
		out, err := p.Step(tick, temps[i%len(temps)])
		if err != nil {
			b.Fatal(err)
		}
		sink += out
	}
	_ = sink
}
