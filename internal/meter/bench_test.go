package meter

import (
	"context"
	"testing"
	"time"
)

// TestMeasureOverhead runs the overhead benchmark briefly: every
// attachment that loads must count every metered call it times.
func TestMeasureOverhead(t *testing.T) {
	needEBPF(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := MeasureOverhead(ctx, BenchOptions{Runs: 3, Calls: 2000, ChurnSteps: 2, Now: time.Now})
	if err != nil {
		t.Fatal(err)
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
	}
}

func TestSpread(t *testing.T) {
	s := spread([]float64{5, 1, 3, 2, 4})
	if s != (Spread{Median: 3, P25: 2, P75: 4, Min: 1, Max: 5}) {
		t.Errorf("spread = %+v", s)
	}
	if (spread(nil) != Spread{}) {
		t.Error("spread(nil) not zero")
	}
}
