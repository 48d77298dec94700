package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

func testMeta() Meta {
	return Meta{
		Kind:           "baseline",
		CPUs:           []int{0, 1},
		SampleInterval: Duration(time.Second),
		EnergySource:   sensors.Source{Kind: sensors.KindModel, Quantity: sensors.QuantityEnergy, Name: "linear", Tier: sensors.TierModel, Model: "test"},
		TempSource:     sensors.Source{Kind: sensors.KindThermalZone, Quantity: sensors.QuantityTemperature, Name: "x86_pkg_temp", Tier: sensors.TierSensor},
		IdlePower:      2,
		Setpoint:       55,
	}
}

func testSamples() []Sample {
	var out []Sample
	for i := 0; i <= 4; i++ {
		out = append(out, Sample{
			Elapsed: time.Duration(i) * time.Second,
			Host: HostSample{
				Temperature: units.Celsius(30 + float64(i)*1.25),
				Power:       10,
				Energy:      units.Energy(i) * 10 * units.Joule,
				Utilisation: 0.9,
			},
			Cells: []CellSample{
				{Cell: "scientist", CPUTime: time.Duration(i) * 900 * time.Millisecond, CPUShare: 0.45, Energy: units.Energy(i) * 4_500_001, MemoryBytes: 1 << 20,
					Counters: map[string]uint64{"primes": uint64(i) * 1000, "range_end": uint64(i) * 8000}, UsefulCounter: "primes", UsefulUnit: "prime"},
				// A "primes" counter the miner did not declare as its useful
				// work counts for nothing.
				{Cell: "miner", CPUTime: time.Duration(i) * 1100 * time.Millisecond, CPUShare: 0.55, Energy: units.Energy(i) * 5_499_999, MemoryBytes: 4 << 20,
					Counters: map[string]uint64{"hashes": uint64(i) * 1e6, "primes": 77}},
			},
		})
	}
	return out
}

func TestSummarize(t *testing.T) {
	s := Summarize(Run{Meta: testMeta(), Samples: testSamples()})
	approx := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	approx("duration", s.DurationSeconds, 4)
	approx("energy", s.EnergyJoules, 40)
	approx("mean power", s.MeanPowerWatts, 10)
	if len(s.Useful) != 1 || s.Useful[0].Unit != "prime" || s.Useful[0].Work != 4000 || len(s.Useful[0].Agents) != 1 {
		t.Fatalf("useful = %+v, want 4000 primes of the scientist's", s.Useful)
	}
	approx("primes/J", s.Useful[0].PerJoule, 100)
	if a := s.Agents[0].Useful; a == nil || *a != (AgentUseful{Counter: "primes", Unit: "prime", Work: 4000}) {
		t.Errorf("scientist's useful work %+v", a)
	}
	if s.Agents[1].Useful != nil {
		t.Errorf("the miner declared nothing, yet did useful work %+v", s.Agents[1].Useful)
	}
	approx("mean temperature", s.TemperatureMeanCelsius, 32.5)
	approx("max temperature", s.TemperatureMaxCelsius, 35)
	if s.EnergySource != "estimated" || s.TemperatureSource != "measured" {
		t.Errorf("sources = %q, %q", s.EnergySource, s.TemperatureSource)
	}
	if s.DynamicEnergyJoules == nil {
		t.Fatal("dynamic energy missing though idle power is known")
	}
	approx("dynamic energy", *s.DynamicEnergyJoules, 40-2*4)
	approx("primes per dynamic J", *s.Useful[0].PerDynamicJoule, 4000.0/32)
	if len(s.Agents) != 2 || s.Agents[0].Name != "scientist" || s.Agents[1].Name != "miner" {
		t.Fatalf("agents = %+v", s.Agents)
	}
	approx("scientist share", s.Agents[0].CPUShare, 3.6/8)
	approx("miner share", s.Agents[1].CPUShare, 4.4/8)
	approx("scientist energy", s.Agents[0].EnergyJoules, 4*4.500001)
	if s.Agents[1].Counters["hashes"] != 4e6 {
		t.Errorf("miner counters = %v", s.Agents[1].Counters)
	}
}

func TestSummarizeEmptyAndUnknownIdle(t *testing.T) {
	m := testMeta()
	m.IdlePower = 0
	s := Summarize(Run{Meta: m})
	if s.DurationSeconds != 0 || s.DynamicEnergyJoules != nil || s.Agents == nil {
		t.Errorf("empty run summary = %+v", s)
	}
	s = Summarize(Run{Meta: m, Samples: testSamples()})
	if s.DynamicEnergyJoules != nil {
		t.Error("dynamic energy reported although idle power is unknown")
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	w, err := Create(dir, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range testSamples() {
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Event(Event{Elapsed: Duration(2 * time.Second), Kind: event.Exited, Cell: "miner", Detail: "exit status 1"}); err != nil {
		t.Fatal(err)
	}
	sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if err := w.Write(testSamples()[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}

	run, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(run.Samples, testSamples()) {
		t.Errorf("samples read back differ:\n got %+v\nwant %+v", run.Samples, testSamples())
	}
	if len(run.Events) != 1 || run.Events[0].Cell != "miner" {
		t.Errorf("events = %+v", run.Events)
	}
	if run.Meta.Setpoint != 55 || run.Meta.IdlePower != 2 {
		t.Errorf("meta read back: setpoint %v °C, idle %v W; want 55 °C, 2 W", run.Meta.Setpoint, run.Meta.IdlePower)
	}
	// A run recorded before the setpoint was kept reads as 0: unknown.
	old, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(old, &m); err != nil || m["setpoint_celsius"] != 55.0 {
		t.Fatalf("meta.json setpoint_celsius = %v (%v), want 55", m["setpoint_celsius"], err)
	}
	delete(m, "setpoint_celsius")
	if old, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, MetaFile), old, 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := ReadRun(dir); err != nil || r.Meta.Setpoint != 0 {
		t.Errorf("a meta.json without setpoint_celsius: setpoint %v, err %v; want 0, nil", r.Meta.Setpoint, err)
	}
	if again := Summarize(run); !reflect.DeepEqual(again, sum) {
		t.Errorf("summary recomputed from files differs:\n got %+v\nwant %+v", again, sum)
	}
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"duration_seconds", "energy_joules", "energy_source", "useful", "temperature_mean_celsius", "temperature_max_celsius", "agents"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("summary.json lacks %q", k)
		}
	}
	agent := fields["agents"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "cpu_share", "energy_joules", "counters"} {
		if _, ok := agent[k]; !ok {
			t.Errorf("summary.json agent lacks %q", k)
		}
	}
}

func TestEconomyRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	w, err := Create(dir, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	samples := testSamples()
	for i := range samples {
		samples[i].Market = &MarketSample{Tick: uint64(i * 10), Multiplier: 1 + float64(i)/3, Reserve: 759500 + units.Credits(i), Clearing: 800000, FailSafe: i == 3}
		samples[i].Wallets = []WalletSample{
			{Cell: "scientist", Balance: units.Credits(1000 - i), State: life.Paused, Paid: units.Credits(i), Tax: 0},
			{Cell: "miner", Balance: units.Credits(-i), State: map[bool]life.State{true: life.Dead, false: life.Running}[i == 4], Paid: 7, Tax: units.Credits(i * 3)},
		}
		if err := w.Write(samples[i]); err != nil {
			t.Fatal(err)
		}
	}
	w.Event(Event{Elapsed: Duration(3 * time.Second), Kind: event.Apoptosis, Cell: "miner", Detail: "broke"})
	sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	run, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(run.Samples, samples) {
		t.Errorf("economy samples differ after a round trip:\n got %+v\nwant %+v", run.Samples[1], samples[1])
	}
	m := sum.Agents[1]
	if m.Wallet == nil || m.Wallet.State != "dead" || m.Wallet.Balance != -4 || m.DiedAtSeconds == nil || *m.DiedAtSeconds != 3 {
		t.Errorf("miner summary %+v", m)
	}
	if sum.Agents[0].DiedAtSeconds != nil {
		t.Error("scientist reported dead")
	}
}

func TestCreateRefusesARunDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ledger.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Create(dir, testMeta())
	if err != nil {
		t.Fatalf("Create beside another file: %v", err)
	}
	w.Close()
	if _, err := Create(dir, testMeta()); err == nil {
		t.Error("Create over an existing run succeeded")
	}
}

func TestReadRunCutShortAndCorrupt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	w, err := Create(dir, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range testSamples()[:3] {
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	// No Close: as if the process died. A torn last host line too.
	f, err := os.OpenFile(filepath.Join(dir, HostFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("3.000000000,33.7")
	f.Close()
	run, err := ReadRun(dir)
	if err != nil {
		t.Fatalf("ReadRun of a run cut short: %v", err)
	}
	if len(run.Samples) != 3 {
		t.Errorf("read %d samples, want 3", len(run.Samples))
	}

	// A bad value in the middle of a file is corruption, named with its line.
	b, _ := os.ReadFile(filepath.Join(dir, CellsFile))
	bad := bytes.Replace(b, []byte(",1048576"), []byte(",10x48576"), 1)
	if bytes.Equal(bad, b) {
		t.Fatal("test setup: memory_bytes column not found")
	}
	os.WriteFile(filepath.Join(dir, CellsFile), bad, 0o644)
	if _, err := ReadRun(dir); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadRun of a corrupt cells.csv = %v, want ErrCorrupt", err)
	}
	os.WriteFile(filepath.Join(dir, MetaFile), []byte("{"), 0o644)
	if _, err := ReadRun(dir); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadRun of a corrupt meta.json = %v, want ErrCorrupt", err)
	}
	if _, err := ReadRun(filepath.Join(dir, "missing")); err == nil {
		t.Error("ReadRun of a missing directory succeeded")
	}
}
