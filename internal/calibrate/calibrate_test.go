package calibrate

import (
	"github.com/maxwellhq/maxwell/internal/clock/clocktest"

	"context"
	"errors"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/model"
)

// simulated returns a fake clock whose time jumps ahead whenever the code
// under test sleeps on it, until the test ends.
func simulated(t *testing.T) *clocktest.Fake {
	clk := clocktest.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); clk.Simulate(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return clk
}

// fakeLoad drives the utilisation the power model sees.
type fakeLoad struct{ on bool }

func (l *fakeLoad) Start(int) error          { l.on = true; return nil }
func (l *fakeLoad) Stop()                    { l.on = false }
func (l *fakeLoad) Sample() (float64, error) { return map[bool]float64{false: 0, true: 1}[l.on], nil }

func TestRunOnTwinFindsRC(t *testing.T) {
	for _, tw := range []model.TwinParams{
		model.DefaultTwinParams(),
		{Ambient: 22, R: 0.5, C: 1.2}, // τ = 0.6 s
		{Ambient: 30, R: 1.0, C: 3.5}, // τ = 3.5 s
	} {
		t.Run(tw.String(), func(t *testing.T) {
			clk := simulated(t)
			load := &fakeLoad{}
			lin, err := model.DefaultLinearPower(2)
			if err != nil {
				t.Fatal(err)
			}
			est, err := model.NewEstimator(clk, load, lin, tw)
			if err != nil {
				t.Fatal(err)
			}
			step := 8 * tw.Tau()
			res, err := Run(context.Background(), Config{Idle: 2 * time.Second, Step: step, Interval: 50 * time.Millisecond, Threads: 2},
				est, est.Thermometer(), tw.Tau(), load, clk)
			if err != nil {
				t.Fatal(err)
			}
			if load.on {
				t.Error("load still running after calibration")
			}
			rc := tw.R * tw.C
			if rel := math.Abs(res.TauSeconds-rc) / rc; rel > 0.10 {
				t.Errorf("fitted τ = %.3f s, twin R·C = %.3f s (%.1f%% off, want ≤ 10%%)", res.TauSeconds, rc, 100*rel)
			}
			if rel := math.Abs(res.K-tw.R) / tw.R; rel > 0.05 {
				t.Errorf("fitted K = %.3f K/W, twin R = %.3f", res.K, tw.R)
			}
			if res.TwinTauSeconds == nil || math.Abs(*res.TwinTauSeconds-rc) > 1e-9 {
				t.Errorf("twin τ reported as %v", res.TwinTauSeconds)
			}
			wantStep := float64(lin.Max - lin.Idle)
			if math.Abs(res.PowerStepWatts-wantStep) > 0.01*wantStep {
				t.Errorf("power step = %.3f W, want %.3f", res.PowerStepWatts, wantStep)
			}
			// SIMC: Kc = τ/(K(τc+θ)); τI = min(τ, 4(τc+θ)).
			if res.Kc <= 0 || res.TauISeconds <= 0 || res.TauISeconds > res.TauSeconds+1e-9 {
				t.Errorf("SIMC tuning Kc=%v τI=%v", res.Kc, res.TauISeconds)
			}
			if !res.TemperatureSource.Estimated() {
				t.Error("twin temperature not labelled estimated")
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	clk := simulated(t)
	load := &fakeLoad{}
	lin, _ := model.DefaultLinearPower(2)
	est, _ := model.NewEstimator(clk, load, lin, model.DefaultTwinParams())
	if _, err := Run(context.Background(), Config{Idle: time.Second, Step: time.Second, Interval: time.Second, Threads: 1}, est, est.Thermometer(), 0, load, clk); err == nil {
		t.Error("a step with one sample was accepted")
	}
	if _, err := Run(context.Background(), Config{Idle: time.Second, Step: time.Second, Interval: 0, Threads: 1}, est, est.Thermometer(), 0, load, clk); err == nil {
		t.Error("zero interval accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, Config{Idle: time.Second, Step: 10 * time.Second, Interval: 100 * time.Millisecond, Threads: 1}, est, est.Thermometer(), 0, load, clk); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run = %v", err)
	}
	if load.on {
		t.Error("load left running after an aborted run")
	}
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestBusyLoadBurnsCPU(t *testing.T) {
	var b BusyLoad
	before := cpuTime(t)
	if err := b.Start(1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	b.Stop()
	// Other tests may share the CPUs: a busy thread must still get a
	// clear share of one (an idle one would use next to nothing).
	used := cpuTime(t) - before
	if used < 100*time.Millisecond {
		t.Errorf("one busy thread for 500 ms used only %v of CPU", used)
	}
	after := cpuTime(t)
	time.Sleep(200 * time.Millisecond)
	if idle := cpuTime(t) - after; idle > 50*time.Millisecond {
		t.Errorf("stopped load still used %v of CPU in 200 ms", idle)
	}
}
