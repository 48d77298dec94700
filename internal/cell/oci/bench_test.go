package oci

import (
	"context"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/bench"
	"github.com/maxwellhq/maxwell/internal/cell"
)

// TestMeasurePauseContainer runs the pause benchmark on a real container:
// the Manager is a bench.CellStarter.
func TestMeasurePauseContainer(t *testing.T) {
	m := newTestManager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const trials = 5
	res, err := bench.MeasurePause(ctx, m, bench.PauseOptions{
		Trials: trials, Freezers: []cell.FreezerKind{m.Freezer()}, Gap: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	fr := res.Freezers[0]
	t.Logf("%s/%s pause %+v resume %+v", fr.Backend, fr.Freezer, fr.Pause, fr.Resume)
	if fr.Error != "" || fr.Backend != Backend {
		t.Fatalf("result %+v", fr)
	}
	for _, s := range []bench.Summary{fr.Pause, fr.Resume} {
		if s.N != trials || s.P50us <= 0 || s.P50us > s.P99us {
			t.Errorf("summary %+v; want %d ordered positive samples", s, trials)
		}
	}
}

// BenchmarkPauseResume times one "runc pause" plus "runc resume" of a
// busy container, each until the kernel reports the new state.
func BenchmarkPauseResume(b *testing.B) {
	if testRootFS == "" {
		b.Skip(skipReason)
	}
	opts := DefaultOptions()
	opts.RootFS = testRootFS
	opts.StateDir = b.TempDir()
	opts.Parent = "mxoci-bench"
	ctx := context.Background()
	m, err := NewManager(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	c, err := m.Start(ctx, cell.Spec{Name: "busy", Path: "/bin/sh", Args: []string{"-c", "while :; do :; done"}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for b.Loop() {
		if err := c.Pause(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Resume(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
