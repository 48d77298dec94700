package experiment

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

func TestMain(m *testing.M) {
	cell.RunShimIfRequested()
	os.Exit(m.Run())
}

// fakeEnergy counts 10 W of host power on the real clock, and fails every
// read from failAfter on (0: never).
type fakeEnergy struct {
	mu        sync.Mutex
	start     time.Time
	reads     int
	failAfter int
}

func (f *fakeEnergy) Source() sensors.Source {
	return sensors.Source{Kind: sensors.KindModel, Quantity: sensors.QuantityEnergy, Name: "test", Tier: sensors.TierModel, Model: "10 W"}
}

func (f *fakeEnergy) ReadEnergy() (units.Energy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.failAfter > 0 && f.reads > f.failAfter {
		return 0, errors.New("energy_uj: input/output error")
	}
	if f.start.IsZero() {
		f.start = time.Now()
	}
	return units.Power(10).Over(time.Since(f.start)), nil
}

// flakyTemp reads 40 °C but fails every other read.
type flakyTemp struct {
	mu sync.Mutex
	n  int
}

func (f *flakyTemp) Source() sensors.Source {
	return sensors.Source{Kind: sensors.KindThermalZone, Quantity: sensors.QuantityTemperature, Name: "test", Tier: sensors.TierSensor}
}

func (f *flakyTemp) ReadTemperature() (units.Celsius, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.n%2 == 0 {
		return 0, sensors.ErrGarbage
	}
	return 40, nil
}

type fixedUtil float64

func (u fixedUtil) Sample() (float64, error) { return float64(u), nil }

type noCounters struct{}

func (noCounters) Counters(string) (map[string]uint64, time.Time, bool) {
	return nil, time.Time{}, false
}

func newManager(t *testing.T) *cell.Manager {
	t.Helper()
	opts := cell.DefaultOptions()
	opts.Parent = "maxwell-test-experiment-" + strconv.Itoa(os.Getpid())
	m, err := cell.NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func events(run record.Run) map[string]string {
	out := map[string]string{}
	for _, e := range run.Events {
		out[e.Kind+"/"+e.Cell] = e.Detail
	}
	return out
}

func TestRunRecordsCrashedAndSilentAgents(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := &Run{
		Kind: "test", Duration: 1500 * time.Millisecond, Interval: 200 * time.Millisecond,
		CPUs: []int{0}, ConnectTimeout: 500 * time.Millisecond, Dir: dir,
		Agents: []AgentSpec{
			{Name: "crasher", Path: "/bin/sh", Args: []string{"-c", "exit 3"}},
			{Name: "silent", Path: "/bin/sleep", Args: []string{"30"}},
		},
		Cells: newManager(t), Counters: noCounters{}, Energy: &fakeEnergy{}, Temp: &flakyTemp{},
		Util: fixedUtil(0.5), Clock: clock.System(),
	}
	sum, err := r.Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	run, err := record.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	ev := events(run)
	if d, ok := ev["agent_exited/crasher"]; !ok || !strings.Contains(d, "exit status 3") {
		t.Errorf("crash not recorded with its cause: %q (events %v)", d, ev)
	}
	if _, ok := ev["agent_silent/silent"]; !ok {
		t.Errorf("silent agent not recorded (events %v)", ev)
	}
	if _, ok := ev["sensor_error/"]; !ok {
		t.Errorf("failing thermometer not recorded (events %v)", ev)
	}
	for _, s := range run.Samples {
		if s.Host.Temperature != 40 {
			t.Errorf("sample at %v has temperature %v: a failed read must keep the last good value", s.Elapsed, s.Host.Temperature)
		}
	}
	if sum.Samples < 5 || sum.DurationSeconds < 1.4 {
		t.Errorf("run cut short: %d samples over %.2f s", sum.Samples, sum.DurationSeconds)
	}
	var silentPID int
	for _, cs := range r.cells {
		if cs.spec.Name == "silent" {
			silentPID = cs.c.PID()
		}
	}
	if silentPID <= 0 {
		t.Fatal("no PID for the silent agent")
	}
	if err := syscall.Kill(silentPID, 0); err == nil {
		t.Errorf("silent agent (pid %d) still alive after the run", silentPID)
	}
}

func TestRunKeepsDataWhenEnergyFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := &Run{
		Kind: "test", Duration: 5 * time.Second, Interval: 100 * time.Millisecond,
		CPUs: []int{0}, ConnectTimeout: time.Second, Dir: dir,
		Agents: []AgentSpec{{Name: "sleeper", Path: "/bin/sleep", Args: []string{"30"}}},
		Cells:  newManager(t), Counters: noCounters{}, Energy: &fakeEnergy{failAfter: 4}, Temp: &flakyTemp{},
		Util: fixedUtil(0.5), Clock: clock.System(),
	}
	_, err := r.Execute(context.Background())
	if err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("Execute = %v, want the energy read error", err)
	}
	run, rerr := record.ReadRun(dir)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(run.Samples) != 3 {
		t.Errorf("kept %d samples, want the 3 taken before the sensor failed", len(run.Samples))
	}
	if _, err := os.Stat(filepath.Join(dir, record.SummaryFile)); err != nil {
		t.Errorf("no summary after a failed run: %v", err)
	}
}

func TestRunValidates(t *testing.T) {
	for name, r := range map[string]*Run{
		"no duration": {Interval: time.Second, CPUs: []int{0}, Agents: []AgentSpec{{Name: "a"}}},
		"no CPUs":     {Duration: time.Second, Interval: time.Second, Agents: []AgentSpec{{Name: "a"}}},
		"no agents":   {Duration: time.Second, Interval: time.Second, CPUs: []int{0}},
		"no deps":     {Duration: time.Second, Interval: time.Second, CPUs: []int{0}, Agents: []AgentSpec{{Name: "a"}}},
	} {
		if _, err := r.Execute(context.Background()); err == nil {
			t.Errorf("%s: Execute succeeded", name)
		}
	}
}
