package model

import (
	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/clock/clocktest"

	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

var (
	_ sensors.EnergyCounter = (*Estimator)(nil)
	_ UtilisationSampler    = (*CPUSampler)(nil)
)

// fakeUtil returns u on every Sample, or err when set, and counts calls.
type fakeUtil struct {
	mu    sync.Mutex
	u     float64
	err   error
	calls int
}

func (f *fakeUtil) Sample() (float64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.u, f.err
}

func (f *fakeUtil) set(u float64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.u, f.err = u, err
}

// fakeCounter is a real energy counter stand-in whose value the test sets.
type fakeCounter struct {
	mu    sync.Mutex
	e     units.Energy
	err   error
	calls int
}

func (f *fakeCounter) Source() sensors.Source {
	return sensors.Source{Kind: sensors.KindRAPL, Quantity: sensors.QuantityEnergy, Name: "package-0",
		Path: "/sys/class/powercap/intel-rapl:0/energy_uj", Tier: sensors.TierSensor}
}

func (f *fakeCounter) ReadEnergy() (units.Energy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.e, f.err
}

func (f *fakeCounter) add(e units.Energy) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.e += e
}

// rcRise is the analytic rise above ambient after sec seconds at constant
// power pw from ambient.
func rcRise(p TwinParams, pw, sec float64) float64 {
	return pw * p.R * (1 - math.Exp(-sec/(p.R*p.C)))
}

func newLinear(t *testing.T, clk clock.Clock, u UtilisationSampler) (*Estimator, TwinParams) {
	t.Helper()
	lp, err := NewLinearPower(10, 30, "test")
	if err != nil {
		t.Fatal(err)
	}
	tp := DefaultTwinParams()
	e, err := NewEstimator(clk, u, lp, tp)
	if err != nil {
		t.Fatal(err)
	}
	return e, tp
}

func TestEstimatorConstantUtilisation(t *testing.T) {
	schedules := map[string][]time.Duration{
		"100 × 100ms": func() []time.Duration {
			s := make([]time.Duration, 100)
			for i := range s {
				s[i] = 100 * time.Millisecond
			}
			return s
		}(),
		"one 10s step": {10 * time.Second},
		"irregular":    {time.Nanosecond, 3 * time.Millisecond, 997*time.Millisecond - time.Nanosecond, 7 * time.Second, 1500 * time.Millisecond, 499 * time.Millisecond, time.Millisecond},
		"10000 × 1ms": func() []time.Duration {
			s := make([]time.Duration, 10000)
			for i := range s {
				s[i] = time.Millisecond
			}
			return s
		}(),
	}
	for name, steps := range schedules {
		t.Run(name, func(t *testing.T) {
			clk := clocktest.New()
			util := &fakeUtil{u: 0.5}
			e, tp := newLinear(t, clk, util)
			start, err := e.ReadEnergy()
			if err != nil {
				t.Fatal(err)
			}
			var elapsed time.Duration
			for _, d := range steps {
				clk.Advance(d)
				elapsed += d
				if _, err := e.Advance(); err != nil {
					t.Fatal(err)
				}
			}
			if elapsed != 10*time.Second {
				t.Fatalf("schedule covers %v, want 10s", elapsed)
			}
			end, err := e.ReadEnergy()
			if err != nil {
				t.Fatal(err)
			}
			// 20 W (10 + (30−10)·0.5) for 10 s is 200 J, to the µJ.
			if got := end - start; got != 200*units.Joule {
				t.Errorf("energy over 10 s = %d µJ, want %d µJ", got, 200*units.Joule)
			}
			temp, err := e.Thermometer().ReadTemperature()
			if err != nil {
				t.Fatal(err)
			}
			// The twin starts at the idle (10 W) steady state and relaxes
			// towards the 20 W one.
			ss10, ss20 := float64(tp.SteadyState(10)), float64(tp.SteadyState(20))
			want := ss20 + (ss10-ss20)*math.Exp(-10/tp.Tau().Seconds())
			if !closeTo(float64(temp), want, 1e-9) {
				t.Errorf("temperature after 10 s at 20 W = %.12f, want %.12f", temp, want)
			}
			last := e.Last()
			if last.Power != 20 || last.Utilisation != 0.5 || !last.UtilisationKnown {
				t.Errorf("Last() = %+v, want power 20 W at utilisation 0.5", last)
			}
			if util.calls != len(steps) {
				t.Errorf("utilisation sampled %d times for %d advances", util.calls, len(steps))
			}
		})
	}
}

func TestEstimatorVaryingUtilisation(t *testing.T) {
	clk := clocktest.New()
	util := &fakeUtil{}
	e, tp := newLinear(t, clk, util)
	// 2 s at u=0 (10 W), 3 s at u=1 (30 W), 1 s at u=0.25 (15 W).
	var wantJ float64
	twin := mustTwin(t, tp)
	twin.Reset(twin.SteadyState(10)) // the estimator starts a host at rest
	for _, seg := range []struct {
		u   float64
		d   time.Duration
		pow float64
	}{{0, 2 * time.Second, 10}, {1, 3 * time.Second, 30}, {0.25, time.Second, 15}} {
		util.set(seg.u, nil)
		clk.Advance(seg.d)
		s, err := e.Advance()
		if err != nil {
			t.Fatal(err)
		}
		wantJ += seg.pow * seg.d.Seconds()
		twin.Step(seg.d, units.Power(seg.pow))
		if float64(s.Power) != seg.pow {
			t.Errorf("u=%v: power %v, want %v", seg.u, s.Power, seg.pow)
		}
		if s.Energy != units.EnergyFromJoules(wantJ) {
			t.Errorf("u=%v: energy %v, want %v J", seg.u, s.Energy, wantJ)
		}
		if !closeTo(float64(s.Temperature), float64(twin.Temperature()), 1e-12) {
			t.Errorf("u=%v: temperature %v, want %v", seg.u, s.Temperature, twin.Temperature())
		}
	}
}

func TestEstimatorIdempotentAtSameInstant(t *testing.T) {
	clk := clocktest.New()
	util := &fakeUtil{u: 0.8}
	e, _ := newLinear(t, clk, util)
	clk.Advance(1500 * time.Millisecond)
	th := e.Thermometer()
	e1, _ := e.ReadEnergy()
	t1, _ := th.ReadTemperature()
	e2, _ := e.ReadEnergy()
	t2, _ := th.ReadTemperature()
	s, _ := e.Advance()
	if e1 != e2 || t1 != t2 || s.Energy != e1 || s.Temperature != t1 {
		t.Errorf("reads at one instant differ: energy %v %v %v, temperature %v %v %v", e1, e2, s.Energy, t1, t2, s.Temperature)
	}
	if util.calls != 1 {
		t.Errorf("utilisation sampled %d times at one instant, want 1", util.calls)
	}
	// 26 W for 1.5 s.
	if e1 != 39*units.Joule {
		t.Errorf("energy = %v, want 39 J", e1)
	}

	// A clock that steps backwards changes nothing, and time is counted
	// again only from the last instant seen.
	clk.Advance(-time.Second)
	if got, _ := e.ReadEnergy(); got != e1 {
		t.Errorf("energy after clock went back = %v, want %v", got, e1)
	}
	clk.Advance(2 * time.Second) // 1 s past the last instant seen
	if got, _ := e.ReadEnergy(); got != e1+26*units.Joule {
		t.Errorf("energy = %v, want %v", got, e1+26*units.Joule)
	}
	if util.calls != 2 {
		t.Errorf("utilisation sampled %d times, want 2", util.calls)
	}
}

func TestEstimatorUtilisationError(t *testing.T) {
	clk := clocktest.New()
	util := &fakeUtil{u: 0.5}
	e, _ := newLinear(t, clk, util)
	clk.Advance(time.Second)
	if _, err := e.Advance(); err != nil {
		t.Fatal(err)
	}
	before := e.Last()

	boom := errors.New("boom")
	util.set(0, boom)
	clk.Advance(time.Second)
	if _, err := e.ReadEnergy(); !errors.Is(err, boom) {
		t.Errorf("ReadEnergy() error = %v, want boom", err)
	}
	if _, err := e.Thermometer().ReadTemperature(); !errors.Is(err, boom) {
		t.Errorf("ReadTemperature() error = %v, want boom", err)
	}
	if e.Last() != before {
		t.Errorf("state changed on error: %+v, was %+v", e.Last(), before)
	}

	// NaN utilisation is an error too.
	util.set(math.NaN(), nil)
	if _, err := e.Advance(); !errors.Is(err, ErrBadUtilisation) {
		t.Errorf("Advance() with NaN utilisation error = %v, want ErrBadUtilisation", err)
	}

	// Recovery covers the whole interval since the last good advance:
	// 2 s at 30 W on top of 1 s at 20 W.
	util.set(1, nil)
	clk.Advance(time.Second)
	got, err := e.ReadEnergy()
	if err != nil {
		t.Fatal(err)
	}
	if got != 80*units.Joule {
		t.Errorf("energy after recovery = %v, want 80 J", got)
	}
}

func TestEstimatorSources(t *testing.T) {
	clk := clocktest.New()
	lp, err := DefaultLinearPower(2)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEstimator(clk, &fakeUtil{}, lp, DefaultTwinParams())
	if err != nil {
		t.Fatal(err)
	}
	es, ts := e.Source(), e.Thermometer().Source()
	for _, s := range []sensors.Source{es, ts} {
		if s.Kind != sensors.KindModel || s.Tier != sensors.TierModel || !s.Estimated() || s.Label() != "estimated" {
			t.Errorf("source %+v is not labelled a tier-3 model estimate", s)
		}
	}
	if es.Quantity != sensors.QuantityEnergy || ts.Quantity != sensors.QuantityTemperature {
		t.Errorf("quantities %q, %q", es.Quantity, ts.Quantity)
	}
	for _, want := range []string{"linear-utilisation(idle=3.381 W, max=15.19 W", "Dell PowerEdge R620", "power_ssj2008-20120306-00434", "2/32 hardware threads"} {
		if !strings.Contains(es.Model, want) || !strings.Contains(ts.Model, want) {
			t.Errorf("models %q / %q lack %q", es.Model, ts.Model, want)
		}
	}
	if want := "rc-twin(R=2.5 K/W, C=0.8 J/K, τ=2 s, ambient=25 °C)"; !strings.HasSuffix(ts.Model, " + "+want) {
		t.Errorf("thermometer model %q does not end in %q", ts.Model, want)
	}
}

func TestEstimatorCounterDriven(t *testing.T) {
	clk := clocktest.New()
	ctr := &fakeCounter{e: 123_456_789}
	tp := TwinParams{Ambient: 30, R: 1.2, C: 1.25} // τ = 1.5 s
	e, err := NewCounterEstimator(clk, ctr, tp)
	if err != nil {
		t.Fatal(err)
	}
	if e.Source() != ctr.Source() {
		t.Errorf("energy source %+v, want the real counter's %+v", e.Source(), ctr.Source())
	}
	ts := e.Thermometer().Source()
	if !ts.Estimated() || !strings.Contains(ts.Model, `measured-power(rapl "package-0")`) || !strings.Contains(ts.Model, "rc-twin(R=1.2 K/W") {
		t.Errorf("thermometer source %+v", ts)
	}

	// 15 W for 4 s, in 250 ms steps, then 40 W for 1 s.
	for i := 0; i < 16; i++ {
		ctr.add(units.Power(15).Over(250 * time.Millisecond))
		clk.Advance(250 * time.Millisecond)
		s, err := e.Advance()
		if err != nil {
			t.Fatal(err)
		}
		if !closeTo(float64(s.Power), 15, 1e-9) {
			t.Fatalf("step %d: power %v, want 15 W from the counter", i, s.Power)
		}
		if s.UtilisationKnown {
			t.Errorf("counter-driven snapshot claims a utilisation")
		}
	}
	temp, err := e.Thermometer().ReadTemperature()
	if err != nil {
		t.Fatal(err)
	}
	want := float64(tp.Ambient) + rcRise(tp, 15, 4)
	if !closeTo(float64(temp), want, 1e-9) {
		t.Errorf("temperature after 4 s at 15 W = %.12f, want %.12f", temp, want)
	}

	ctr.add(40 * units.Joule)
	clk.Advance(time.Second)
	s, err := e.Advance()
	if err != nil {
		t.Fatal(err)
	}
	if s.Power != 40 {
		t.Errorf("power = %v, want 40 W", s.Power)
	}
	if got, _ := e.ReadEnergy(); got != 123_456_789+100*units.Joule {
		t.Errorf("ReadEnergy() = %d, want the counter's %d", got, 123_456_789+100*units.Joule)
	}
	wantT := float64(tp.SteadyState(40)) + (want-float64(tp.SteadyState(40)))*math.Exp(-1/1.5)
	if !closeTo(float64(s.Temperature), wantT, 1e-9) {
		t.Errorf("temperature = %.12f, want %.12f", s.Temperature, wantT)
	}

	// A counter error leaves the state alone.
	boom := errors.New("boom")
	ctr.mu.Lock()
	ctr.err = boom
	ctr.mu.Unlock()
	clk.Advance(time.Second)
	if _, err := e.Thermometer().ReadTemperature(); !errors.Is(err, boom) {
		t.Errorf("ReadTemperature() error = %v, want boom", err)
	}
	if e.Last() != s {
		t.Errorf("state changed on counter error")
	}
}

func TestEstimatorConstructorErrors(t *testing.T) {
	clk := clocktest.New()
	lp, _ := NewLinearPower(1, 2, "")
	tp := DefaultTwinParams()
	bad := TwinParams{Ambient: 25, R: 0, C: 1}
	tests := []struct {
		name string
		err  error
	}{
		{"nil clock", func() error { _, err := NewEstimator(nil, &fakeUtil{}, lp, tp); return err }()},
		{"nil sampler", func() error { _, err := NewEstimator(clk, nil, lp, tp); return err }()},
		{"bad power", func() error { _, err := NewEstimator(clk, &fakeUtil{}, LinearPower{Idle: 3, Max: 1}, tp); return err }()},
		{"bad twin", func() error { _, err := NewEstimator(clk, &fakeUtil{}, lp, bad); return err }()},
		{"counter nil clock", func() error { _, err := NewCounterEstimator(nil, &fakeCounter{}, tp); return err }()},
		{"nil counter", func() error { _, err := NewCounterEstimator(clk, nil, tp); return err }()},
		{"counter bad twin", func() error { _, err := NewCounterEstimator(clk, &fakeCounter{}, bad); return err }()},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, ErrBadParam) {
			t.Errorf("%s: error = %v, want ErrBadParam", tt.name, tt.err)
		}
	}
	boom := errors.New("boom")
	if _, err := NewCounterEstimator(clk, &fakeCounter{err: boom}, tp); !errors.Is(err, boom) {
		t.Errorf("unreadable counter: error = %v, want boom", err)
	}
}

// TestEstimatorWithCPUSampler drives the estimator from a CPUSampler over a
// fixture procfs.
func TestEstimatorWithCPUSampler(t *testing.T) {
	dir := copyFixture(t)
	s, err := NewCPUSampler(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.NumCPU()
	if err != nil {
		t.Fatal(err)
	}
	lp, err := DefaultLinearPower(n)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New()
	e, err := NewEstimator(clk, s, lp, DefaultTwinParams())
	if err != nil {
		t.Fatal(err)
	}
	// One second: 75% busy on both CPUs (100 ticks each at USER_HZ 100).
	writeStat(t, dir, map[int]ticks{
		0: add(fixture[0], ticks{75, 0, 0, 25}),
		1: add(fixture[1], ticks{0, 0, 75, 25}),
	})
	clk.Advance(time.Second)
	snap, err := e.Advance()
	if err != nil {
		t.Fatal(err)
	}
	wantP := float64(lp.Idle) + 0.75*float64(lp.Max-lp.Idle)
	if snap.Utilisation != 0.75 || !closeTo(float64(snap.Power), wantP, 1e-12) {
		t.Errorf("snapshot %+v, want utilisation 0.75 and power %v W", snap, wantP)
	}
	if snap.Energy != units.EnergyFromJoules(wantP) {
		t.Errorf("energy %v, want %v J", snap.Energy, wantP)
	}
}

func TestEstimatorConcurrent(t *testing.T) {
	clk := clocktest.New()
	util := &fakeUtil{u: 0.3}
	e, _ := newLinear(t, clk, util)
	th := e.Thermometer()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev units.Energy
			for i := 0; i < 500; i++ {
				clk.Advance(time.Millisecond)
				got, err := e.ReadEnergy()
				if err != nil {
					t.Error(err)
					return
				}
				if got < prev {
					t.Errorf("energy went backwards: %v after %v", got, prev)
					return
				}
				prev = got
				if _, err := th.ReadTemperature(); err != nil {
					t.Error(err)
					return
				}
				_ = e.Last()
			}
		}()
	}
	wg.Wait()
	// 2000 ms in all at 16 W.
	if got, _ := e.ReadEnergy(); got != 32*units.Joule {
		t.Errorf("energy = %v, want 32 J", got)
	}
}

func BenchmarkEstimatorAdvance(b *testing.B) {
	clk := clocktest.New()
	lp, _ := NewLinearPower(10, 30, "")
	e, err := NewEstimator(clk, &fakeUtil{u: 0.4}, lp, DefaultTwinParams())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		clk.Advance(time.Millisecond)
		if _, err := e.Advance(); err != nil {
			b.Fatal(err)
		}
	}
}
