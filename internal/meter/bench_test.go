package meter

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMeasureOverhead runs the overhead benchmark briefly, with each
// timing: every attachment that loads must count every metered call it
// times, and each figure must come with its paired differences and the
// noise rule's verdict.
func TestMeasureOverhead(t *testing.T) {
	needEBPF(t)
	for _, timing := range []Timing{TimingThreadCPU, TimingWall} {
		t.Run(timing.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := MeasureOverhead(ctx, BenchOptions{Runs: 3, Calls: 2000, ChurnSteps: 2, Timing: timing, Now: time.Now})
			if err != nil {
				t.Fatal(err)
			}
			if res.Timing != timing {
				t.Errorf("result timing %v, want %v", res.Timing, timing)
			}
			if len(res.Attach) != len(DefaultOrder) {
				t.Fatalf("%d attachments measured, want %d", len(res.Attach), len(DefaultOrder))
			}
			for _, a := range res.Attach {
				if a.Err != "" {
					if a.Attach == AttachFentry {
						t.Logf("fentry unavailable on this kernel: %s", a.Err)
						continue
					}
					t.Errorf("%s: %s", a.Attach, a.Err)
					continue
				}
				if want := uint64(3 * (2000 + 1)); a.Expected != want || a.Counted < want {
					t.Errorf("%s: counted %d of %d metered calls, want %d", a.Attach, a.Counted, a.Expected, want)
				}
				if a.BaseMeteredNs <= 0 || a.BaseUnrelatedNs <= 0 || a.BaseChurnUs <= 0 {
					t.Errorf("%s: baselines %+v", a.Attach, a)
				}
				for name, s := range map[string]Spread{"metered": a.MeteredNs, "unrelated": a.UnrelatedNs, "churn": a.ChurnPct} {
					if len(s.Paired) != 3 || s.TooNoisy != Noisy(s.P75-s.P25, s.Median) {
						t.Errorf("%s %s: %+v, want 3 paired differences judged by the noise rule", a.Attach, name, s)
					}
				}
				t.Logf("%s: metered call %+v", a.Attach, a.MeteredNs)
			}
		})
	}
}

func TestMeasureOverheadOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := MeasureOverhead(ctx, BenchOptions{Timing: TimingWall}); err == nil {
		t.Error("wall timing without a clock: no error")
	}
	if _, err := MeasureOverhead(ctx, BenchOptions{Timing: Timing(9)}); err == nil || !strings.Contains(err.Error(), "timing(9)") {
		t.Errorf("unknown timing: %v", err)
	}
}

func TestSpread(t *testing.T) {
	s := spread([]float64{5, 1, 3, 2, 4})
	if !reflect.DeepEqual(s, Spread{Median: 3, P25: 2, P75: 4, Min: 1, Max: 5}) {
		t.Errorf("spread = %+v", s)
	}
	if !reflect.DeepEqual(spread(nil), Spread{}) {
		t.Error("spread(nil) not zero")
	}
}

// TestPaired: each run with the meter is set against the mean of its
// neighbours, so a drift linear over the runs cancels exactly.
func TestPaired(t *testing.T) {
	// ABAB…A: 100 + 2 per run of drift, +30 with the meter.
	runs := make([]float64, 9)
	for i := range runs {
		runs[i] = 100 + 2*float64(i)
		if i%2 == 1 {
			runs[i] += 30
		}
	}
	if got, want := paired(runs, false), []float64{30, 30, 30, 30}; !reflect.DeepEqual(got, want) {
		t.Errorf("paired = %v, want %v", got, want)
	}
	// Relative: 30 against the neighbours' means 102, 106, 110, 114.
	for i, d := range paired(runs, true) {
		if want := 100 * 30 / (102 + 4*float64(i)); math.Abs(d-want) > 1e-9 {
			t.Errorf("relative difference %d = %v, want %v", i, d, want)
		}
	}
	if got := without(runs); !reflect.DeepEqual(got, []float64{100, 104, 108, 112, 116}) {
		t.Errorf("without = %v", got)
	}
	if got := paired([]float64{1, 2}, false); len(got) != 0 {
		t.Errorf("paired of an incomplete series = %v, want none", got)
	}
}

// TestNoiseRule judges synthetic series: a cost that stands out of the
// runs' noise is a figure; one within it is too noisy to measure.
func TestNoiseRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// series returns 2n+1 runs ABAB…A of a loop costing base ns per call,
	// plus cost with the meter, plus uniform noise of ±noise.
	series := func(n int, base, cost, noise float64) []float64 {
		xs := make([]float64, 2*n+1)
		for i := range xs {
			xs[i] = base + noise*(2*rng.Float64()-1)
			if i%2 == 1 {
				xs[i] += cost
			}
		}
		return xs
	}
	tests := []struct {
		name     string
		diffs    []float64
		tooNoisy bool
	}{
		{"quiet host, real cost", paired(series(15, 1000, 500, 20), false), false},
		{"loaded host, same cost", paired(series(15, 1000, 500, 3000), false), true},
		{"no cost at all", paired(series(15, 300, 0, 20), false), true},
		// The figures of issue 11: a 9.6 ns and a −66.8 ns median from
		// differences spread over hundreds of ns.
		{"9.6 ns within ±300", []float64{-290, -150, -40, 9.6, 20, 180, 310}, true},
		{"negative cost within its noise", []float64{-400, -210, -120, -66.8, 10, 150, 240}, true},
		{"exact zero", []float64{0, 0, 0, 0, 0}, false},
		{"spread equal to the figure is still a figure", []float64{5, 5, 10, 15, 15}, false},
		{"negative, but clearly", []float64{-52, -51, -50, -49, -48}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := judge(tt.diffs)
			if s.TooNoisy != tt.tooNoisy {
				t.Errorf("judge(%v) = %+v: too noisy %v, want %v", tt.diffs, s, s.TooNoisy, tt.tooNoisy)
			}
			if s.IQR != s.P75-s.P25 || s.TooNoisy != Noisy(s.IQR, s.Median) || !reflect.DeepEqual(s.Paired, tt.diffs) {
				t.Errorf("judge(%v) = %+v: IQR, verdict or paired differences inconsistent", tt.diffs, s)
			}
		})
	}
	if s := judge(paired(series(15, 1000, 500, 20), false)); math.Abs(s.Median-500) > 20 {
		t.Errorf("quiet host: median %v, want 500 ± 20", s.Median)
	}
}

func TestBenchWriteText(t *testing.T) {
	r := BenchResult{Runs: 7, Calls: 100, ChurnSteps: 2, Attach: []BenchAttach{{
		Attach:      AttachTracepoint,
		MeteredNs:   judge([]float64{530, 540, 545, 550, 560}),
		UnrelatedNs: judge([]float64{-400, -210, -120, -66.8, 10, 150, 240}),
		ChurnPct:    judge([]float64{0.5, 1, 1, 1.2, 3}),
		Expected:    707, Counted: 707,
	}, {Attach: AttachFentry, Err: "permission denied"}}}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"timed by the CPU time of the benchmark's thread",
		"interquartile range (p75 − p25) exceeds its absolute median is too noisy to measure",
		"545 [540, 550] (530, 560)",
		"too noisy to measure [p25 -165, p75 80]",
		"1.00 [1.00, 1.20] (0.50, 3.00)",
		"unavailable: permission denied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "-66.8") || strings.Contains(out, "-67") {
		t.Errorf("text prints the noisy median as a figure:\n%s", out)
	}
	var j struct {
		Timing string `json:"timing"`
		Attach []struct {
			Unrelated struct {
				TooNoisy bool      `json:"too_noisy"`
				IQR      float64   `json:"iqr"`
				Paired   []float64 `json:"paired"`
			} `json:"unrelated_ns"`
		} `json:"attachments"`
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	if j.Timing != "thread_cpu" {
		t.Errorf("JSON timing %q, want thread_cpu", j.Timing)
	}
	if u := j.Attach[0].Unrelated; !u.TooNoisy || u.IQR != 245 || len(u.Paired) != 7 {
		t.Errorf("JSON unrelated_ns = %+v, want too_noisy, iqr 245 and the 7 paired differences", u)
	}
}
