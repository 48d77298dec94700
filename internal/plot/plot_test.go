package plot

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"

	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

var (
	modelEnergy = sensors.Source{Kind: sensors.KindModel, Quantity: sensors.QuantityEnergy, Name: "linear-utilisation",
		Tier: sensors.TierModel, Model: "linear idle=2W max=15W"}
	raplEnergy = sensors.Source{Kind: sensors.KindRAPL, Quantity: sensors.QuantityEnergy, Name: "package-0",
		Tier: sensors.TierSensor, Path: "/sys/class/powercap/intel-rapl:0/energy_uj"}
	modelTemp = sensors.Source{Kind: sensors.KindModel, Quantity: sensors.QuantityTemperature, Name: "rc-twin",
		Tier: sensors.TierModel, Model: "RC tau=40s R=2.1K/W"}
	realTemp = sensors.Source{Kind: sensors.KindThermalZone, Quantity: sensors.QuantityTemperature, Name: "x86_pkg_temp",
		Tier: sensors.TierSensor, Path: "/sys/class/thermal/thermal_zone0/temp"}
)

// runSpec is what writeRunSpec records.
type runSpec struct {
	kind     string
	temp     sensors.Source
	energy   sensors.Source // modelEnergy if zero
	rate     uint64         // the scientist's primes a second; 100 if 0
	economy  bool           // market.csv and wallets.csv
	setpoint units.Celsius  // meta.json's; 0: not recorded
	// credits scales the economy's money: 1 gives the small test figures,
	// 1e4 a real run's (prices of several J of credits, wallets of kJ).
	credits float64
}

// writeRun writes a deterministic 11-sample run: a scientist finding 100
// primes a second, a miner that dies after 6 s, two kinds of event.
func writeRun(t *testing.T, dir, kind string, temp sensors.Source) {
	t.Helper()
	writeRunSpec(t, dir, runSpec{kind: kind, temp: temp})
}

// writeRunRate is writeRun with the scientist finding rate primes a second,
// and with a market and wallets (the economy: market.csv, wallets.csv) if
// economy is set: the reserve rises, the fail-safe is on from 8 s.
func writeRunRate(t *testing.T, dir, kind string, temp sensors.Source, rate uint64, economy bool) {
	t.Helper()
	writeRunSpec(t, dir, runSpec{kind: kind, temp: temp, rate: rate, economy: economy})
}

// The test runs' events: a fail-safe at 3 s, an apoptosis at 6.5 s, and
// three lifecycle events at the very start.
var testEvents = []record.Event{
	{Elapsed: 0, Kind: event.Started, Detail: "test run"},
	{Elapsed: record.Duration(10 * time.Millisecond), Kind: event.Spawned, Cell: "scientist", Detail: "pid 1"},
	{Elapsed: record.Duration(20 * time.Millisecond), Kind: event.Spawned, Cell: "miner", Detail: "pid 2"},
	{Elapsed: record.Duration(3 * time.Second), Kind: event.FailSafe, Detail: "thermal zone lost, using the model"},
	{Elapsed: record.Duration(6500 * time.Millisecond), Kind: event.Apoptosis, Cell: "miner", Detail: "balance below zero"},
}

func writeRunSpec(t *testing.T, dir string, spec runSpec) {
	t.Helper()
	if spec.energy == (sensors.Source{}) {
		spec.energy = modelEnergy
	}
	if spec.rate == 0 {
		spec.rate = 100
	}
	if spec.credits == 0 {
		spec.credits = 1
	}
	w, err := record.Create(dir, record.Meta{
		Kind: spec.kind, CPUs: []int{0, 1}, SampleInterval: record.Duration(time.Second),
		EnergySource: spec.energy, TempSource: spec.temp, Setpoint: spec.setpoint,
		Agents: []record.AgentMeta{{Name: "scientist"}, {Name: "miner"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	money := func(v float64) units.Credits { return units.Credits(v * spec.credits) }
	for i := 0; i <= 10; i++ {
		s := record.Sample{
			Elapsed: time.Duration(i) * time.Second,
			Host: record.HostSample{
				Temperature: units.Celsius(40 + 2*float64(i)),
				Power:       units.Power(10 + i%3),
				Energy:      units.Energy(i) * 10 * units.Joule,
				Utilisation: 0.9,
			},
			Cells: []record.CellSample{{
				Cell: "scientist", CPUTime: time.Duration(i) * 800 * time.Millisecond, CPUShare: 0.4,
				Energy: units.Energy(i) * 4 * units.Joule, Counters: map[string]uint64{"primes": uint64(i) * spec.rate}, UsefulCounter: "primes", UsefulUnit: "primes",
			}},
		}
		if i <= 6 {
			s.Cells = append(s.Cells, record.CellSample{
				Cell: "miner", CPUTime: time.Duration(i) * 1200 * time.Millisecond, CPUShare: 0.6,
				Energy: units.Energy(i) * 6 * units.Joule, Counters: map[string]uint64{"hashes": uint64(i) * 1e6, "primes": 7},
			})
		}
		if spec.economy {
			s.Market = &record.MarketSample{Tick: uint64(100 + i), Multiplier: 1, Reserve: money(1000 + 50*float64(i)),
				Clearing: money(1500 + 100*float64(i)), FailSafe: i >= 8}
			s.Wallets = append(s.Wallets, record.WalletSample{Cell: "scientist", Balance: money(100000 - 3000*float64(i)), State: life.Running})
			if i <= 6 {
				s.Wallets = append(s.Wallets, record.WalletSample{Cell: "miner", Balance: money(30000 - 5000*float64(i)), State: life.Running})
			}
		}
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range testEvents {
		if err := w.Event(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// drawn draws f on a recording canvas and returns every string it drew
// (titles, axis labels, tick labels, legend entries, caption lines) with
// where it drew it.
func drawn(t *testing.T, f *Figure) []*recorder.FillString {
	t.Helper()
	var rec recorder.Canvas
	w, h := f.Size()
	if err := f.Draw(draw.NewCanvas(&rec, w, h)); err != nil {
		t.Fatal(err)
	}
	var out []*recorder.FillString
	for _, a := range rec.Actions {
		if fs, ok := a.(*recorder.FillString); ok {
			out = append(out, fs)
		}
	}
	return out
}

// texts returns every string f draws.
func texts(t *testing.T, f *Figure) []string {
	t.Helper()
	var out []string
	for _, fs := range drawn(t, f) {
		out = append(out, fs.String)
	}
	return out
}

func hasText(got []string, want string) bool { return slices.Contains(got, want) }

// checkTexts checks that got holds every text of want and none of absent.
func checkTexts(t *testing.T, name string, got, want, absent []string) {
	t.Helper()
	for _, w := range want {
		if !hasText(got, w) {
			t.Errorf("%s: no text %q in %q", name, w, got)
		}
	}
	for _, a := range absent {
		if hasText(got, a) {
			t.Errorf("%s: unexpected text %q", name, a)
		}
	}
}

func load(t *testing.T, dir string) Data {
	t.Helper()
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func legendLabels(p *Panel) []string {
	var out []string
	for _, e := range p.Legend {
		out = append(out, e.Label)
	}
	return out
}

func TestThermalFigure(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	writeRun(t, base, "baseline", modelTemp)
	mx := filepath.Join(dir, "mx")
	writeRunSpec(t, mx, runSpec{kind: "maxwell", temp: realTemp, economy: true, setpoint: 55, credits: 1e4})
	hot := filepath.Join(dir, "hot") // a setpoint far above the data
	writeRunSpec(t, hot, runSpec{kind: "maxwell", temp: realTemp, setpoint: 75})

	tests := []struct {
		dir          string
		panels       int
		setpoint     float64 // 0: no setpoint line
		want, absent []string
	}{
		{base, 3, 0,
			[]string{"base (baseline): host", "temperature", "host power", "insolvency: apoptosis", "fault: fail safe",
				"lifecycle: started, spawned ×2", "temperature (°C, estimated)", "power (W, estimated)", "elapsed (s)",
				"insolvency", "fault", "lifecycle", "×3", "6.5 s apoptosis miner: balance below zero"},
			[]string{"reserve price", "clearing price", "fail-safe on (price at its ceiling)", "temperature (°C)"}},
		{mx, 4, 55,
			[]string{"temperature (°C)", "setpoint 55 °C", "reserve price", "clearing price",
				"price per slot (J of credits)", "fail-safe on (price at its ceiling)", "insolvency: apoptosis"},
			[]string{"temperature (°C, estimated)"}},
		{hot, 3, 75, []string{"setpoint 75 °C"}, nil},
	}
	for _, tt := range tests {
		d := load(t, tt.dir)
		f, err := ThermalFigure(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Panels) != tt.panels {
			t.Fatalf("%s: %d panels, want %d", tt.dir, len(f.Panels), tt.panels)
		}
		got := texts(t, f)
		checkTexts(t, tt.dir, got, tt.want, tt.absent)
		// The data series are the samples, as recorded.
		temp := f.Panels[0]
		if len(temp.Series) != 1 || len(temp.Series[0].XYs) != 11 {
			t.Fatalf("%s: temperature series %+v, want one of 11 points", tt.dir, temp.Series)
		}
		for i, xy := range temp.Series[0].XYs {
			if xy.X != float64(i) || xy.Y != 40+2*float64(i) {
				t.Errorf("%s: temperature point %d = %+v, want (%d s, %v °C)", tt.dir, i, xy, i, 40+2*i)
			}
		}
		// The setpoint: a line at its value, labelled, inside the axis.
		switch {
		case tt.setpoint == 0 && len(temp.Refs) != 0:
			t.Errorf("%s: reference lines %+v without a recorded setpoint", tt.dir, temp.Refs)
		case tt.setpoint != 0:
			if len(temp.Refs) != 1 || temp.Refs[0].Value != tt.setpoint {
				t.Errorf("%s: reference lines %+v, want the setpoint at %v", tt.dir, temp.Refs, tt.setpoint)
			}
			if y := temp.Plot.Y; y.Min > tt.setpoint || y.Max < tt.setpoint {
				t.Errorf("%s: temperature axis [%v, %v] hides the setpoint %v", tt.dir, y.Min, y.Max, tt.setpoint)
			}
		}
		// The events' lane is the bottom panel: one legend entry per class
		// present, none of the lifecycle's or others' on the data panels.
		lane := f.Panels[len(f.Panels)-1]
		if want := []string{"insolvency: apoptosis", "fault: fail safe", "lifecycle: started, spawned ×2"}; !slices.Equal(legendLabels(lane), want) {
			t.Errorf("%s: events legend %q, want %q", tt.dir, legendLabels(lane), want)
		}
		if n := strings.Count(strings.Join(got, "\n"), "apoptosis"); n != 2 { // the legend and the caption
			t.Errorf("%s: %d texts name the apoptosis, want 2 (legend, caption)", tt.dir, n)
		}
		// Every panel spans the run's time.
		for i, p := range f.Panels {
			if p.Plot.X.Min != 0 || p.Plot.X.Max != 10 {
				t.Errorf("%s panel %d: time axis [%v, %v], want [0, 10]", tt.dir, i, p.Plot.X.Min, p.Plot.X.Max)
			}
		}
		checkFigure(t, f)
	}

	// Prices and wallets are shown as the joules they stand for: the
	// reserve at 10 s is 1500 × 1e4 credits = 15 J of credits.
	d := load(t, mx)
	f, err := ThermalFigure(d)
	if err != nil {
		t.Fatal(err)
	}
	price := f.Panels[2]
	if got := price.Series[0]; got.Label != "reserve price" || got.XYs[10].Y != 15 {
		t.Errorf("reserve price series %q ends at %v, want 15 J of credits", got.Label, got.XYs[10].Y)
	}
}

// TestEventsAtOneInstant checks that events of one class at one instant
// make one mark with their count, and that classes at one instant keep
// rows of their own.
func TestEventsAtOneInstant(t *testing.T) {
	evs := []record.Event{
		{Elapsed: 0, Kind: event.Started},
		{Elapsed: record.Duration(5 * time.Millisecond), Kind: event.Spawned, Cell: "a"},
		{Elapsed: record.Duration(5 * time.Millisecond), Kind: event.Spawned, Cell: "b"},
		{Elapsed: record.Duration(40 * time.Millisecond), Kind: event.AgentConnected, Cell: "a"},
		{Elapsed: record.Duration(5 * time.Millisecond), Kind: event.LowBalance, Cell: "b"},
		{Elapsed: record.Duration(30 * time.Second), Kind: event.Killed, Cell: "a"},
		{Elapsed: record.Duration(60*time.Second + 5*time.Millisecond), Kind: event.Killed, Cell: "b"}, // after the last sample
	}
	lane, rules := eventPanel(evs, 60)
	var got []string
	for _, g := range laneGroups(evs, 60) {
		got = append(got, fmt.Sprintf("%s@%g×%d", g.class, g.at, g.n))
	}
	want := []string{"lifecycle@0×4", "wallet@0.005×1", "lifecycle@30×1", "lifecycle@60×1"}
	if !slices.Equal(got, want) {
		t.Errorf("groups %q, want %q", got, want)
	}
	if len(rules) != 1 || rules[0].class != classWallet {
		t.Errorf("rules %+v, want the low balance alone (lifecycle is not ruled)", rules)
	}
	if want := []string{"wallet: low balance", "lifecycle: started, spawned ×2, agent connected, killed ×2"}; !slices.Equal(legendLabels(lane), want) {
		t.Errorf("legend %q, want %q", legendLabels(lane), want)
	}
	// The classes look different: colour and glyph.
	for a := range numClasses {
		for b := a + 1; b < numClasses; b++ {
			if classStyles[a].color == classStyles[b].color || fmt.Sprintf("%T", classStyles[a].shape) == fmt.Sprintf("%T", classStyles[b].shape) {
				t.Errorf("classes %s and %s share a colour or a glyph", a, b)
			}
		}
	}
}

func TestAgentsFigure(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, "maxwell", realTemp)
	d := load(t, dir)
	f, err := AgentsFigure(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Panels) != 2 {
		t.Fatalf("%d panels without wallets.csv, want 2", len(f.Panels))
	}
	got := texts(t, f)
	for _, w := range []string{"scientist", "miner", "CPU share (% of 2 CPUs)", "attributed energy (J, estimated)"} {
		if !hasText(got, w) {
			t.Errorf("no text %q in %q", w, got)
		}
	}
	if hasText(got, "wallet balance (J of credits)") {
		t.Error("wallet panel drawn without wallets.csv")
	}
	// Shares are percentages of the run's CPUs.
	if s := f.Panels[0].Series[0]; s.Label != "scientist" || s.XYs[3].Y != 40 {
		t.Errorf("CPU share series %q at 3 s = %v, want scientist at 40 %%", s.Label, s.XYs[3].Y)
	}
	checkFigure(t, f)

	dir = filepath.Join(t.TempDir(), "economy")
	writeRunSpec(t, dir, runSpec{kind: "maxwell", temp: realTemp, economy: true, credits: 1e4})
	if f, err = AgentsFigure(load(t, dir)); err != nil {
		t.Fatal(err)
	}
	if len(f.Panels) != 3 {
		t.Fatalf("%d panels with wallets.csv, want 3", len(f.Panels))
	}
	got = texts(t, f)
	if !hasText(got, "wallet balance (J of credits)") {
		t.Errorf("no wallet panel in %q", got)
	}
	// One legend, above the top panel, names each agent once: the colours
	// hold on every panel.
	if n := strings.Count(strings.Join(got, "\n"), "miner"); n != 1 {
		t.Errorf("miner named %d times, want once (one legend for the figure)", n)
	}
	if l := legendLabels(f.Panels[0]); !slices.Equal(l, []string{"scientist", "miner"}) {
		t.Errorf("top legend %q", l)
	}
	wallet := f.Panels[2].Series
	if wallet[0].Label != "scientist" || wallet[0].XYs[0].Y != 1000 || wallet[1].Label != "miner" || wallet[1].XYs[6].Y != 0 {
		t.Errorf("wallet series %+v: want the scientist at 1000 J of credits, the miner at 0 at 6 s", wallet)
	}
	checkFigure(t, f)
}

func TestEfficiencyFigure(t *testing.T) {
	dir := t.TempDir()
	var runs []Data
	for _, name := range []string{"base", "mx"} {
		writeRun(t, filepath.Join(dir, name), name, realTemp)
		runs = append(runs, load(t, filepath.Join(dir, name)))
	}
	writeRunSpec(t, filepath.Join(dir, "measured"), runSpec{kind: "maxwell", temp: realTemp, energy: raplEnergy, rate: 1e9})
	measured := load(t, filepath.Join(dir, "measured"))
	// The miner's 7 "primes" are not its declared useful work: they do not
	// count.
	xys := efficiencySeries(runs[0].Run, "primes")
	if len(xys) != 11 {
		t.Fatalf("%d points, want 11", len(xys))
	}
	for i, xy := range xys {
		if want := float64(100 * i); xy.Y != want || xy.X != float64(10*i) {
			t.Errorf("point %d = %+v, want (%d J, %v primes)", i, xy, 10*i, want)
		}
	}
	tests := []struct {
		name         string
		runs         []Data
		want, absent []string
	}{
		// 1000 primes over 100 J.
		{"both estimated", runs, []string{"base: 10 primes/J, energy estimated", "mx: 10 primes/J, energy estimated",
			"host energy (J, estimated)", "useful work (primes)", "primes (useful work) against host energy spent",
			"base: energy estimated, model energy \"linear-utilisation\", tier 3 (model) [model: linear idle=2W max=15W]"},
			[]string{"host energy (J, estimated for some runs)"}},
		{"one run", runs[:1], []string{"host energy (J, estimated)"}, nil},
		// 1e10 primes over 100 J: a measured run, in billions.
		{"one of two measured", []Data{runs[0], measured}, []string{"host energy (J, estimated for base)",
			"measured (maxwell): 100 million primes/J", "useful work (primes, in billions)"},
			[]string{"host energy (J, estimated)"}},
		{"measured", []Data{measured}, []string{"host energy (J)"}, []string{"host energy (J, estimated)"}},
	}
	for _, tt := range tests {
		f, err := EfficiencyFigure(tt.runs, "primes")
		if err != nil {
			t.Fatal(err)
		}
		got := texts(t, f)
		checkTexts(t, tt.name, got, tt.want, tt.absent)
		if len(f.Panels[0].Series) != len(tt.runs) {
			t.Errorf("%s: %d series, want one per run", tt.name, len(f.Panels[0].Series))
		}
		checkFigure(t, f)
	}
}

// TestNiceTicks checks the ticks of awkward ranges: auto-scaled ones that
// gave "15 / 15 / 15", money in the billions of credits, flat series.
func TestNiceTicks(t *testing.T) {
	tests := []struct {
		name     string
		min, max float64
		unit     axisUnit
		style    axisStyle
		label    string   // the axis label, where it matters
		want     []string // the labelled ticks, where they matter
	}{
		{"power near 15 W", 14.93, 15.08, unitWatt, axisStyle{name: "power", loose: true}, "power (W)", []string{"14.5", "15.0", "15.5"}},
		{"flat power", 15, 15, unitWatt, axisStyle{name: "power", loose: true}, "", nil},
		{"temperature", 44.3, 62.9, unitCelsius, axisStyle{name: "temperature", loose: true}, "", []string{"40", "45", "50", "55", "60", "65"}},
		{"wallets of 2e9 credits", 0, 2e9 / 1e6, unitCreditJoule, axisStyle{name: "balance", loose: true}, "balance (J of credits)", []string{"0", "500", "1000", "1500", "2000"}},
		{"wallets of 2e11 credits", 0, 2e11 / 1e6, unitCreditJoule, axisStyle{name: "balance", loose: true}, "balance (kJ of credits)", []string{"0", "50", "100", "150", "200"}},
		{"prices of 1000 credits", 0.001, 0.0025, unitCreditJoule, axisStyle{name: "price", loose: true, zero: true}, "price (µJ of credits)", []string{"0", "500", "1000", "1500", "2000", "2500"}},
		{"prices of 5000 credits", 0, 0.005, unitCreditJoule, axisStyle{name: "price", loose: true}, "price (mJ of credits)", []string{"0", "1", "2", "3", "4", "5"}},
		{"billions of primes", 0, 3.84e9, axisUnit{Count: "prime"}, axisStyle{name: "work", loose: true}, "work (prime, in billions)", []string{"0", "1", "2", "3", "4"}},
		{"time", 0, 60.0009, unitWatt, axisStyle{name: "t", n: timeTicks}, "", []string{"0", "10", "20", "30", "40", "50", "60"}},
		{"negative", -3.2, 7.7, unitWatt, axisStyle{name: "x", loose: true}, "", []string{"-5", "0", "5", "10"}},
		{"zero span at zero", 0, 0, unitJoule, axisStyle{name: "e", zero: true}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := gplot.New().Y
			a.Min, a.Max = tt.min, tt.max
			s := tt.style
			s.unit = tt.unit
			finishAxis(&a, s)
			labels := checkAxis(t, tt.name, &a, max(s.n, valueTicks))
			if tt.want != nil && !slices.Equal(labels, tt.want) {
				t.Errorf("labels %q, want %q", labels, tt.want)
			}
			if tt.label != "" && a.Label.Text != tt.label {
				t.Errorf("axis label %q, want %q", a.Label.Text, tt.label)
			}
		})
	}
}

// checkAxis checks a's labelled ticks on its range: at least two, at most
// n+1, distinct, at the multiples of one round step (1, 2 or 5 × 10^k),
// each label the value at the axis's scale; and returns the labels.
func checkAxis(t *testing.T, name string, a *gplot.Axis, n int) []string {
	t.Helper()
	var labels []string
	var values []float64
	for _, tk := range a.Tick.Marker.Ticks(a.Min, a.Max) {
		if tk.IsMinor() {
			continue
		}
		labels = append(labels, tk.Label)
		values = append(values, tk.Value)
		if strings.ContainsAny(tk.Label, "eE") {
			t.Errorf("%s: tick label %q has an exponent", name, tk.Label)
		}
	}
	if len(values) < 2 || len(values) > n+1 {
		t.Errorf("%s: %d labelled ticks %q on [%v, %v], want 2 to %d", name, len(values), labels, a.Min, a.Max, n+1)
		return labels
	}
	seen := map[string]bool{}
	for _, l := range labels {
		if seen[l] {
			t.Errorf("%s: duplicate tick label %q in %q", name, l, labels)
		}
		seen[l] = true
	}
	step := values[1] - values[0]
	mag := math.Pow(10, math.Floor(math.Log10(step)+1e-9))
	if m := step / mag; math.Abs(m-1) > 1e-6 && math.Abs(m-2) > 1e-6 && math.Abs(m-5) > 1e-6 {
		t.Errorf("%s: tick step %v is not 1, 2 or 5 × 10^k (ticks %q)", name, step, labels)
	}
	scale := 1.0
	if nt, ok := a.Tick.Marker.(niceTicks); ok {
		scale = nt.scale
	}
	for i, v := range values {
		if k := v / step; math.Abs(k-math.Round(k)) > 1e-6 {
			t.Errorf("%s: tick %v is not a multiple of the step %v", name, v, step)
		}
		if i > 0 && math.Abs(values[i]-values[i-1]-step) > step*1e-6 {
			t.Errorf("%s: uneven ticks %v", name, values)
		}
		got, err := strconv.ParseFloat(labels[i], 64)
		if err != nil || math.Abs(got*scale-v) > step*1e-6 {
			t.Errorf("%s: label %q for the value %v at scale %v", name, labels[i], v, scale)
		}
	}
	return labels
}

// checkFigure checks what every figure must be: round, distinct ticks on
// every value axis, each legend above its panel's plotting area and off
// every plotting area, the caption wrapped to the figure's width and
// nothing drawn with an exponent.
func checkFigure(t *testing.T, f *Figure) {
	t.Helper()
	for i, p := range f.Panels {
		if _, nominal := p.Plot.X.Tick.Marker.(gplot.ConstantTicks); !nominal {
			checkAxis(t, fmt.Sprintf("%s panel %d x", f.Name, i), &p.Plot.X, timeTicks)
		}
		if _, ok := p.Plot.Y.Tick.Marker.(niceTicks); ok {
			checkAxis(t, fmt.Sprintf("%s panel %d y", f.Name, i), &p.Plot.Y, valueTicks)
		}
	}
	w, h := f.Size()
	var rec recorder.Canvas
	c := draw.NewCanvas(&rec, w, h)
	l := f.layout(c)
	if err := f.Draw(c); err != nil {
		t.Fatal(err)
	}
	inside := func(pt vg.Point, r vg.Rectangle) bool {
		return pt.X >= r.Min.X && pt.X <= r.Max.X && pt.Y >= r.Min.Y && pt.Y <= r.Max.Y
	}
	labels := map[string]int{} // legend label → panel
	for i, p := range f.Panels {
		b := l.panels[i]
		// A Y label longer than its plotting area runs into the next panel.
		if y := p.Plot.Y.Label; y.TextStyle.Width(y.Text) > b.data.Max.Y-b.data.Min.Y {
			t.Errorf("%s panel %d: Y label %q is longer than the plotting area is high (%v)", f.Name, i, y.Text, b.data.Max.Y-b.data.Min.Y)
		}
		if len(p.Legend) > 0 && b.legend.Min.Y < b.data.Max.Y {
			t.Errorf("%s panel %d: legend [%v, %v] reaches into the plotting area (top %v)", f.Name, i, b.legend.Min.Y, b.legend.Max.Y, b.data.Max.Y)
		}
		for _, row := range b.rows {
			for _, it := range row {
				labels[it.label] = i
			}
		}
	}
	var capLines []string
	for _, a := range rec.Actions {
		fs, ok := a.(*recorder.FillString)
		if !ok {
			continue
		}
		if strings.Contains(fs.String, "e+") {
			t.Errorf("%s: %q is written with an exponent", f.Name, fs.String)
		}
		if i, ok := labels[fs.String]; ok {
			if !inside(fs.Point, l.panels[i].legend) {
				t.Errorf("%s: legend entry %q drawn at %v, outside its legend %v", f.Name, fs.String, fs.Point, l.panels[i].legend)
			}
			for j, b := range l.panels {
				if inside(fs.Point, b.data) {
					t.Errorf("%s: legend entry %q drawn over panel %d's data", f.Name, fs.String, j)
				}
			}
		}
		if slices.Contains(l.caption, fs.String) {
			capLines = append(capLines, fs.String)
			if right := fs.Point.X + captionStyle.Width(fs.String); right > w {
				t.Errorf("%s: caption line %q ends at %v, past the figure's width %v", f.Name, fs.String, right, w)
			}
		}
	}
	// Wrapping loses no word: the lines drawn are the caption's words.
	if got, want := strings.Fields(strings.Join(capLines, " ")), strings.Fields(strings.Join(f.Caption, " ")); !slices.Equal(got, want) {
		t.Errorf("%s: caption drawn as %q, want the words of %q", f.Name, capLines, f.Caption)
	}
}

// TestCaptionWraps checks that a long caption (a model's description with
// a URL) is wrapped to the figure's width, word by word, a word longer
// than a line split inside.
func TestCaptionWraps(t *testing.T) {
	long := "Power: estimated, model energy \"linear-utilisation\", tier 3 (model) [model: linear-utilisation(idle=3.381 W, max=15.19 W; ref: Dell PowerEdge R620 (2x Intel Xeon E5-2670, 2.60 GHz) <SPECpower_ssj2008 result power_ssj2008-20120306-00434, https://www.spec.org/power_ssj2008/results/res2012q1/power_ssj2008-20120306-00434.html>, scaled 2/32 hardware threads)]"
	width := vg.Points(300)
	lines := wrap(captionStyle, long, width)
	if len(lines) < 3 {
		t.Fatalf("%d lines, want the text wrapped: %q", len(lines), lines)
	}
	for _, l := range lines {
		if w := captionStyle.Width(l); w > width {
			t.Errorf("line %q is %v wide, more than %v", l, w, width)
		}
	}
	if got := strings.Join(lines, " "); strings.Join(strings.Fields(got), " ") != long && strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(long, " ", "") {
		t.Errorf("wrapped text %q lost something of %q", got, long)
	}
	url := strings.Repeat("x", 400)
	for _, l := range wrap(captionStyle, url, width) {
		if captionStyle.Width(l) > width {
			t.Errorf("a word wider than the line is not split: %q", l)
		}
	}

	p := newDataPanel()
	if err := p.addLine("power", plotter.XYs{{X: 0, Y: 1}, {X: 1, Y: 2}}, 0); err != nil {
		t.Fatal(err)
	}
	finishAxis(&p.Plot.Y, axisStyle{name: "power", unit: unitWatt})
	f := &Figure{Name: "long.png", Title: "long", Panels: []*Panel{p}, Caption: []string{long, "short"}}
	checkFigure(t, f)
	l := f.layout(draw.NewCanvas(&recorder.Canvas{}, DefaultWidth, DefaultPanelHeight*2))
	if len(l.caption) < 3 {
		t.Errorf("caption laid out in %d lines at 10 in, want the long one wrapped: %q", len(l.caption), l.caption)
	}
}

func TestStudyFigure(t *testing.T) {
	bound := 7.3e6
	bars := []Bar{{"cfs", 4.1e6, 3.9e6, 4.4e6}, {"maxwell-gsp", 5.2e6, 5.0e6, 5.6e6}, {"oracle", 6.0e6, 6.0e6, 6.0e6}}
	caption := []string{"scientist-miner: the Scientist and the Miner; 2 CPUs, 60 s a run, setpoint 55 °C; bars: median of the runs, whiskers: lowest to highest " + strings.Repeat("and more words ", 20)}
	f, err := StudyFigure("s.png", "scientist-miner: prime per joule by policy", "prime", bars, &bound, true, caption)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "s.png" || len(f.Panels) != 1 {
		t.Fatalf("figure %q with %d panels", f.Name, len(f.Panels))
	}
	p := f.Panels[0]
	if p.Plot.Y.Max < bound || p.Plot.Y.Min != 0 {
		t.Errorf("y axis [%v, %v] does not show 0 and the bound %v", p.Plot.Y.Min, p.Plot.Y.Max, bound)
	}
	if len(p.Refs) != 1 || p.Refs[0].Value != bound {
		t.Errorf("refs %+v, want the bound", p.Refs)
	}
	if s := p.Series[0]; len(s.XYs) != 3 || s.XYs[1].Y != 5.2e6 {
		t.Errorf("medians %+v", s.XYs)
	}
	got := texts(t, f)
	for _, w := range []string{"prime/J (useful work, in millions, estimated)", "cfs", "maxwell-gsp", "oracle",
		"bound on this host", "median of the runs", "lowest to highest run"} {
		if !hasText(got, w) {
			t.Errorf("no text %q in %q", w, got)
		}
	}
	checkFigure(t, f)
	if _, err := StudyFigure("e.png", "", "prime", nil, nil, false, nil); err == nil {
		t.Error("no error for a study with no bars")
	}
}

// TestSetpointFromJournal checks that a run under the economy recorded
// before meta.json kept the setpoint takes it from its engine journal, and
// that the chart says so.
func TestSetpointFromJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "old")
	writeRunSpec(t, dir, runSpec{kind: "maxwell", temp: modelTemp, economy: true})
	jw, err := engine.CreateJournal(filepath.Join(dir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	jw.Write(engine.JournalEntry{Config: &engine.Config{Controller: control.Config{Setpoint: 52.5, Critical: 85}}})
	jw.Write(engine.JournalEntry{Kill: "miner"})
	if err := jw.Close(); err != nil {
		t.Fatal(err)
	}
	d := load(t, dir)
	if d.Run.Meta.Setpoint != 52.5 || d.SetpointFrom != journalFile {
		t.Fatalf("setpoint %v from %q, want 52.5 from %s", d.Run.Meta.Setpoint, d.SetpointFrom, journalFile)
	}
	f, err := ThermalFigure(d)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.Panels[0].Refs; len(r) != 1 || r[0].Value != 52.5 || r[0].Label != "setpoint 52.5 °C" {
		t.Errorf("refs %+v, want the setpoint at 52.5", r)
	}
	if !slices.ContainsFunc(f.Caption, func(s string) bool { return strings.Contains(s, "from engine.jsonl") }) {
		t.Errorf("caption %q does not say where the setpoint came from", f.Caption)
	}
	// A journal that does not open with a configuration gives none.
	writeFile(t, filepath.Join(dir, journalFile), "{\"kill\":\"miner\"}\n")
	if d := load(t, dir); d.Run.Meta.Setpoint != 0 {
		t.Errorf("setpoint %v from a journal without configuration", d.Run.Meta.Setpoint)
	}
}

// colourPixels counts the pixels of img within tol of c per channel.
func colourPixels(img image.Image, c color.Color, tol int) int {
	r0, g0, b0, _ := c.RGBA()
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if abs(int(r>>8)-int(r0>>8)) <= tol && abs(int(g>>8)-int(g0>>8)) <= tol && abs(int(bb>>8)-int(b0>>8)) <= tol {
				n++
			}
		}
	}
	return n
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a", "run")
	mx := filepath.Join(dir, "b", "run") // same base name: must not overwrite
	writeRun(t, base, "baseline", modelTemp)
	writeRunRate(t, mx, "maxwell", realTemp, 150, true)
	out := filepath.Join(dir, "charts")

	files, err := Run([]string{base, mx}, out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := []string{"run-thermal.png", "run-agents.png", "run-2-thermal.png", "run-2-agents.png", "efficiency.png"}
	if !slices.Equal(names, want) {
		t.Fatalf("wrote %q, want %q", names, want)
	}
	heights := map[string]int{}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		heights[filepath.Base(path)] = img.Bounds().Dy()
		if w := img.Bounds().Dx(); w != 960 {
			t.Errorf("%s: %d px wide, want 960 (10 in at 96 dpi)", path, w)
		}
		// The first series is drawn in colour 0, solidly enough that
		// exact-colour pixels exist along the line.
		if n := colourPixels(img, plotutil.Color(0), 8); n < 200 {
			t.Errorf("%s: %d pixels of the first series' colour, want a drawn line (>= 200)", path, n)
		}
		// Text is drawn: black pixels exist.
		if n := colourPixels(img, color.Black, 40); n < 500 {
			t.Errorf("%s: %d near-black pixels, want text and axes (>= 500)", path, n)
		}
	}
	if heights["run-2-thermal.png"] <= heights["run-thermal.png"] {
		t.Errorf("thermal chart with a price panel is %d px high, without %d: want taller",
			heights["run-2-thermal.png"], heights["run-thermal.png"])
	}
	// Event lines: apoptosis is the second event kind.
	img := decode(t, filepath.Join(out, "run-thermal.png"))
	if n := colourPixels(img, classStyles[classInsolvency].color, 30); n < 50 {
		t.Errorf("%d pixels of the apoptosis marker colour, want dashed lines (>= 50)", n)
	}
	// Clearing price is colour 3, only on the Maxwell run.
	if n := colourPixels(decode(t, filepath.Join(out, "run-2-thermal.png")), plotutil.Color(3), 8); n < 100 {
		t.Errorf("%d pixels of the clearing-price colour, want a line (>= 100)", n)
	}
}

func decode(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestEmbeddedFonts checks that the default font resolves from gonum's
// embedded Liberation collection and has real glyph metrics, with no system
// font involved.
func TestEmbeddedFonts(t *testing.T) {
	face := font.DefaultCache.Lookup(gplot.DefaultFont, 12)
	if face.Face == nil {
		t.Fatalf("default font %+v not in the cache", gplot.DefaultFont)
	}
	if face.Font.Typeface != "Liberation" {
		t.Errorf("default typeface %q, want Liberation", face.Font.Typeface)
	}
	if w := face.Width("primes per joule"); w <= 0 {
		t.Errorf("text width %v, want > 0", w)
	}
	if h := captionStyle.Height("M"); h <= 0 {
		t.Errorf("caption line height %v, want > 0", h)
	}
}

func TestLoadErrors(t *testing.T) {
	good := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "run")
		writeRun(t, dir, "baseline", realTemp)
		return dir
	}
	tests := []struct {
		name    string
		break_  func(t *testing.T, dir string)
		file    string // the error must name it
		corrupt bool
	}{
		{"no meta", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, record.MetaFile)) }, record.MetaFile, false},
		{"bad meta", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, record.MetaFile), "{") }, record.MetaFile, true},
		{"no host", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, record.HostFile)) }, record.HostFile, false},
		{"bad host row", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, record.HostFile),
				"elapsed_seconds,temperature_celsius,power_watts,energy_joules,utilisation\n0,40,10,0,0.5\nx,1,1,1,1\n1,41,10,10,0.5\n")
		}, record.HostFile, true},
		{"empty host", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, record.HostFile),
				"elapsed_seconds,temperature_celsius,power_watts,energy_joules,utilisation\n")
			writeFile(t, filepath.Join(dir, record.CellsFile), "elapsed_seconds,cell,cpu_seconds,cpu_share,energy_joules,memory_bytes,useful_counter,useful_unit\n")
			writeFile(t, filepath.Join(dir, record.CountersFile), "elapsed_seconds,cell,counter,value\n")
		}, record.HostFile, false},
		{"bad events", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, record.EventsFile), "{\"kind\":1}\nnot json\n")
		}, record.EventsFile, true},
		{"market row", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, record.MarketFile), "elapsed_seconds,tick,multiplier,reserve_price,clearing_price,fail_safe\n"+
				"0.000000000,1,1,x,1,false\n1.000000000,2,1,1,1,false\n")
		}, record.MarketFile, true},
		{"wallets row", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, record.MarketFile), "elapsed_seconds,tick,multiplier,reserve_price,clearing_price,fail_safe\n"+
				"0.000000000,1,1,1,1,false\n")
			writeFile(t, filepath.Join(dir, record.WalletsFile), "elapsed_seconds,cell,balance,state,paid,tax\n"+
				"0.000000000,scientist,1.5,running,0,0\n1.000000000,scientist,3,running,0,0\n")
		}, record.WalletsFile, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := good(t)
			tt.break_(t, dir)
			out := filepath.Join(t.TempDir(), "charts")
			files, err := Run([]string{dir}, out)
			if err == nil {
				t.Fatalf("no error; wrote %q", files)
			}
			if !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %q does not name %s", err, tt.file)
			}
			if tt.corrupt != errors.Is(err, record.ErrCorrupt) {
				t.Errorf("errors.Is(%q, ErrCorrupt) = %v, want %v", err, !tt.corrupt, tt.corrupt)
			}
			if len(files) != 0 {
				t.Errorf("wrote %q despite the error", files)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("created %s despite the error", out)
			}
		})
	}
}

func TestRunEdgeCases(t *testing.T) {
	if _, err := Run(nil, t.TempDir()); err == nil {
		t.Error("no error for no run directories")
	}
	// A run with one sample and no cells: a thermal chart, no agents
	// chart, no efficiency chart (no useful work was declared), no panic.
	dir := filepath.Join(t.TempDir(), "tiny")
	w, err := record.Create(dir, record.Meta{Kind: "baseline"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(record.Sample{Host: record.HostSample{Temperature: 35}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Run([]string{dir}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || filepath.Base(files[0]) != "tiny-thermal.png" {
		t.Errorf("wrote %q", files)
	}
	for _, f := range files {
		decode(t, f)
	}
}
