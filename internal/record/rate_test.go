package record

import (
	"testing"
	"time"
)

func TestCounterRate(t *testing.T) {
	r := Run{Samples: testSamples()} // scientist primes: 1000 per second
	if got, ok := CounterRate(r, "scientist", "primes", 0, 4*time.Second); !ok || got != 1000 {
		t.Errorf("rate over the run = %v, %v; want 1000", got, ok)
	}
	if got, ok := CounterRate(r, "scientist", "primes", 1500*time.Millisecond, 4*time.Second); !ok || got != 1000 {
		t.Errorf("rate from 1.5 s = %v, %v; want 1000", got, ok)
	}
	if _, ok := CounterRate(r, "scientist", "primes", 3500*time.Millisecond, 4*time.Second); ok {
		t.Error("a window with one sample gave a rate")
	}
	if _, ok := CounterRate(r, "miner", "bogus", 0, 4*time.Second); ok {
		t.Error("a counter the cell lacks gave a rate")
	}
}
