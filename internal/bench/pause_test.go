package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
)

func TestMain(m *testing.M) {
	cell.RunShimIfRequested()
	os.Exit(m.Run())
}

func us(n int) time.Duration { return time.Duration(n) * time.Microsecond }

func TestSummarize(t *testing.T) {
	seq := func(lo, hi int) []time.Duration {
		var s []time.Duration
		for i := lo; i <= hi; i++ {
			s = append(s, us(i))
		}
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		return s
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []time.Duration{us(5)}, Summary{N: 1, P50us: 5, P99us: 5, MaxUs: 5}},
		{"two", []time.Duration{us(9), us(3)}, Summary{N: 2, P50us: 3, P99us: 9, MaxUs: 9}},
		{"1..10", seq(1, 10), Summary{N: 10, P50us: 5, P99us: 10, MaxUs: 10}},
		{"1..100", seq(1, 100), Summary{N: 100, P50us: 50, P99us: 99, MaxUs: 100}},
		{"1..200", seq(1, 200), Summary{N: 200, P50us: 100, P99us: 198, MaxUs: 200}},
		{"sub-microsecond", []time.Duration{1500 * time.Nanosecond, 500}, Summary{N: 2, P50us: 0.5, P99us: 1.5, MaxUs: 1.5}},
		{"ties", []time.Duration{us(7), us(7), us(7), us(1000)}, Summary{N: 4, P50us: 7, P99us: 1000, MaxUs: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			if got := Summarize(in); got != tt.want {
				t.Errorf("Summarize = %+v; want %+v", got, tt.want)
			}
			if !slices.Equal(in, tt.in) {
				t.Error("Summarize reordered its input")
			}
		})
	}
}

// fakeClock is a clock that only moves when a fake cell works.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// fakeCell takes scripted times to pause and resume.
type fakeCell struct {
	cell.Cell // methods MeasurePause does not call panic
	clock     *fakeClock
	pause     []time.Duration
	resume    []time.Duration
	failAfter int // Pause fails on this call (1-based); 0 never
	calls     int
	closed    bool
}

func (c *fakeCell) Backend() string { return "fake" }
func (c *fakeCell) Pause(context.Context) error {
	c.calls++
	if c.calls == c.failAfter {
		return errors.New("freezer broke")
	}
	c.clock.now = c.clock.now.Add(c.pause[(c.calls-1)%len(c.pause)])
	return nil
}
func (c *fakeCell) Resume(context.Context) error {
	c.clock.now = c.clock.now.Add(c.resume[(c.calls-1)%len(c.resume)])
	return nil
}
func (c *fakeCell) Close() error { c.closed = true; return nil }

type fakeStarter struct {
	cells    map[cell.FreezerKind]*fakeCell
	freezers []cell.FreezerKind
	specs    []cell.Spec
}

func (s *fakeStarter) Start(_ context.Context, spec cell.Spec) (cell.Cell, error) {
	s.specs = append(s.specs, spec)
	c, ok := s.cells[spec.Freezer]
	if !ok {
		return nil, fmt.Errorf("no %s freezer here", spec.Freezer)
	}
	return c, nil
}

func (s *fakeStarter) Layout() cell.Layout {
	return cell.Layout{Kind: cell.LayoutHybrid, Freezers: s.freezers, Reason: "fake"}
}

func TestMeasurePauseFake(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	v1 := &fakeCell{clock: clock, pause: []time.Duration{us(100), us(300), us(200)}, resume: []time.Duration{us(10)}}
	sig := &fakeCell{clock: clock, pause: []time.Duration{us(50)}, resume: []time.Duration{us(20), us(40)}, failAfter: 3}
	st := &fakeStarter{
		cells:    map[cell.FreezerKind]*fakeCell{cell.FreezerV1: v1, cell.FreezerSignal: sig},
		freezers: []cell.FreezerKind{cell.FreezerV1, cell.FreezerV2, cell.FreezerSignal},
	}
	res, err := MeasurePause(context.Background(), st, PauseOptions{Trials: 3, CPUs: []int{0}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	want := []FreezerResult{
		{Freezer: cell.FreezerV1, Backend: "fake",
			Pause:  Summary{N: 3, P50us: 200, P99us: 300, MaxUs: 300},
			Resume: Summary{N: 3, P50us: 10, P99us: 10, MaxUs: 10}},
		{Freezer: cell.FreezerV2, Error: "no v2 freezer here"},
		{Freezer: cell.FreezerSignal, Backend: "fake",
			Pause:  Summary{N: 2, P50us: 50, P99us: 50, MaxUs: 50},
			Resume: Summary{N: 2, P50us: 20, P99us: 40, MaxUs: 40},
			Error:  "freezer broke"},
	}
	if res.Trials != 3 || !reflect.DeepEqual(res.Freezers, want) {
		t.Errorf("MeasurePause =\n%+v\nwant\n%+v", res.Freezers, want)
	}
	if !v1.closed || !sig.closed {
		t.Error("cells not closed")
	}
	for _, s := range st.specs {
		if s.Path != "/bin/sh" || !slices.Equal(s.CPUs, []int{0}) || s.Name != "bench-pause-"+string(s.Freezer) {
			t.Errorf("spec = %+v", s)
		}
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("result does not marshal: %v", err)
	}
}

func TestMeasurePauseBadOptions(t *testing.T) {
	st := &fakeStarter{freezers: []cell.FreezerKind{cell.FreezerSignal}}
	if _, err := MeasurePause(context.Background(), st, PauseOptions{Trials: 0}); err == nil {
		t.Error("0 trials accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := MeasurePause(ctx, st, PauseOptions{Trials: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: err = %v; want context.Canceled", err)
	}
}

// TestMeasurePauseHost measures every freezer this host offers on real
// busy cells.
func TestMeasurePauseHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: cells create cgroups")
	}
	opts := cell.DefaultOptions()
	opts.Parent = fmt.Sprintf("mxbench-%d", os.Getpid())
	m, err := cell.NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const trials = 20
	res, err := MeasurePause(ctx, m, PauseOptions{Trials: trials, CPUs: []int{0}, Gap: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var got []cell.FreezerKind
	for _, fr := range res.Freezers {
		got = append(got, fr.Freezer)
		t.Logf("%-6s pause %+v resume %+v", fr.Freezer, fr.Pause, fr.Resume)
		if fr.Error != "" {
			t.Errorf("%s: %s", fr.Freezer, fr.Error)
		}
		for _, s := range []Summary{fr.Pause, fr.Resume} {
			if s.N != trials || s.P50us <= 0 || s.P50us > s.P99us || s.P99us > s.MaxUs {
				t.Errorf("%s: summary %+v; want %d positive, ordered samples", fr.Freezer, s, trials)
			}
		}
	}
	if !slices.Equal(got, m.Layout().Freezers) {
		t.Errorf("measured %v; want every freezer of %s", got, m.Layout())
	}
}

// vmmCell is a fake cell whose runtime reports its own latencies, as a
// Firecracker cell does.
type vmmCell struct {
	*fakeCell
	rt  []time.Duration // pause, resume of each trial, flattened
	err error
}

func (c *vmmCell) RuntimeLatencies(context.Context) (time.Duration, time.Duration, error) {
	if c.err != nil {
		return 0, 0, c.err
	}
	i := 2 * (c.calls - 1)
	return c.rt[i], c.rt[i+1], nil
}

type vmmStarter struct{ c cell.Cell }

func (s vmmStarter) Start(context.Context, cell.Spec) (cell.Cell, error) { return s.c, nil }
func (s vmmStarter) Layout() cell.Layout {
	return cell.Layout{Kind: cell.LayoutHybrid, Freezers: []cell.FreezerKind{cell.FreezerV2}, Reason: "fake"}
}

func TestMeasurePauseRuntimeLatencies(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	vm := &vmmCell{
		fakeCell: &fakeCell{clock: clock, pause: []time.Duration{us(900)}, resume: []time.Duration{us(800)}},
		rt:       []time.Duration{us(30), us(5), us(10), us(7)},
	}
	res, err := MeasurePause(context.Background(), vmmStarter{vm}, PauseOptions{Trials: 2, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	fr := res.Freezers[0]
	if fr.Error != "" || fr.RuntimePause == nil || fr.RuntimeResume == nil {
		t.Fatalf("result %+v; want runtime latencies", fr)
	}
	if want := (Summary{N: 2, P50us: 10, P99us: 30, MaxUs: 30}); *fr.RuntimePause != want {
		t.Errorf("RuntimePause = %+v; want %+v", *fr.RuntimePause, want)
	}
	if want := (Summary{N: 2, P50us: 5, P99us: 7, MaxUs: 7}); *fr.RuntimeResume != want {
		t.Errorf("RuntimeResume = %+v; want %+v", *fr.RuntimeResume, want)
	}
	if fr.Pause.P50us != 900 {
		t.Errorf("wall-clock pause = %+v; want 900 µs", fr.Pause)
	}

	vm2 := &vmmCell{fakeCell: &fakeCell{clock: clock, pause: []time.Duration{us(1)}, resume: []time.Duration{us(1)}}, err: errors.New("no metrics")}
	res, err = MeasurePause(context.Background(), vmmStarter{vm2}, PauseOptions{Trials: 2, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if fr := res.Freezers[0]; !strings.Contains(fr.Error, "no metrics") || fr.RuntimePause != nil {
		t.Errorf("result %+v; want the metrics error and no runtime summaries", fr)
	}
}
