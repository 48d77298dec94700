package plot

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"

	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

var (
	modelEnergy = sensors.Source{Kind: sensors.KindModel, Quantity: sensors.QuantityEnergy, Name: "linear-utilisation",
		Tier: sensors.TierModel, Model: "linear idle=2W max=15W"}
	modelTemp = sensors.Source{Kind: sensors.KindModel, Quantity: sensors.QuantityTemperature, Name: "rc-twin",
		Tier: sensors.TierModel, Model: "RC tau=40s R=2.1K/W"}
	realTemp = sensors.Source{Kind: sensors.KindThermalZone, Quantity: sensors.QuantityTemperature, Name: "x86_pkg_temp",
		Tier: sensors.TierSensor, Path: "/sys/class/thermal/thermal_zone0/temp"}
)

// writeRun writes a deterministic 11-sample run: a scientist finding 100
// primes a second, a miner that dies after 6 s, two kinds of event.
func writeRun(t *testing.T, dir, kind string, temp sensors.Source) {
	t.Helper()
	writeRunRate(t, dir, kind, temp, 100, false)
}

// writeRunRate is writeRun with the scientist finding rate primes a second,
// and with a market and wallets (the economy: market.csv, wallets.csv) if
// economy is set: the reserve rises, the fail-safe is on from 8 s.
func writeRunRate(t *testing.T, dir, kind string, temp sensors.Source, rate uint64, economy bool) {
	t.Helper()
	w, err := record.Create(dir, record.Meta{
		Kind: kind, CPUs: []int{0, 1}, SampleInterval: record.Duration(time.Second),
		EnergySource: modelEnergy, TempSource: temp,
		Agents: []record.AgentMeta{{Name: "scientist"}, {Name: "miner"}},
	})
	if err != nil {
		t.Fatal(err)
	}
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
				Energy: units.Energy(i) * 4 * units.Joule, Counters: map[string]uint64{"primes": uint64(i) * rate}, UsefulCounter: "primes", UsefulUnit: "primes",
			}},
		}
		if i <= 6 {
			s.Cells = append(s.Cells, record.CellSample{
				Cell: "miner", CPUTime: time.Duration(i) * 1200 * time.Millisecond, CPUShare: 0.6,
				Energy: units.Energy(i) * 6 * units.Joule, Counters: map[string]uint64{"hashes": uint64(i) * 1e6, "primes": 7},
			})
		}
		if economy {
			s.Market = &record.MarketSample{Tick: uint64(100 + i), Multiplier: 1, Reserve: units.Credits(1000 + 50*i),
				Clearing: units.Credits(1500 + 100*i), FailSafe: i >= 8}
			s.Wallets = append(s.Wallets, record.WalletSample{Cell: "scientist", Balance: units.Credits(100000 - 3000*i), State: life.Running})
			if i <= 6 {
				s.Wallets = append(s.Wallets, record.WalletSample{Cell: "miner", Balance: units.Credits(30000 - 5000*i), State: life.Running})
			}
		}
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []record.Event{
		{Elapsed: record.Duration(3 * time.Second), Kind: event.FailSafe, Detail: "thermal zone lost, using the model"},
		{Elapsed: record.Duration(6500 * time.Millisecond), Kind: event.Apoptosis, Cell: "miner", Detail: "balance below zero"},
	} {
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

// texts draws f on a recording canvas and returns every string it drew:
// titles, axis labels, tick labels, legend entries and caption.
func texts(t *testing.T, f *Figure) []string {
	t.Helper()
	var rec recorder.Canvas
	w, h := f.Size()
	if err := f.Draw(draw.NewCanvas(&rec, w, h)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range rec.Actions {
		if fs, ok := a.(*recorder.FillString); ok {
			out = append(out, fs.String)
		}
	}
	return out
}

func hasText(got []string, want string) bool { return slices.Contains(got, want) }

func TestThermalFigure(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	writeRun(t, base, "baseline", modelTemp)
	mx := filepath.Join(dir, "mx")
	writeRunRate(t, mx, "maxwell", realTemp, 100, true)

	tests := []struct {
		dir          string
		panels       int
		want, absent []string
	}{
		{base, 2,
			[]string{"base (baseline): host", "temperature", "power", "event: fail_safe", "event: apoptosis",
				"temperature (°C, estimated)", "power (W, estimated)", "elapsed (s)",
				"Temperature: estimated, model temperature \"rc-twin\", tier 3 (model) [model: RC tau=40s R=2.1K/W]",
				"6.5s apoptosis miner: balance below zero"},
			[]string{"reserve price", "clearing price", "fail-safe on", "temperature (°C)"}},
		{mx, 3,
			[]string{"temperature (°C)", "reserve price", "clearing price", "price (credits per slot)", "fail-safe on", "event: apoptosis"},
			[]string{"temperature (°C, estimated)"}},
	}
	for _, tt := range tests {
		d, err := Load(tt.dir)
		if err != nil {
			t.Fatal(err)
		}
		f, err := ThermalFigure(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Panels) != tt.panels {
			t.Errorf("%s: %d panels, want %d", tt.dir, len(f.Panels), tt.panels)
		}
		got := texts(t, f)
		for _, w := range tt.want {
			if !hasText(got, w) {
				t.Errorf("%s: no text %q in %q", tt.dir, w, got)
			}
		}
		for _, a := range tt.absent {
			if hasText(got, a) {
				t.Errorf("%s: unexpected text %q", tt.dir, a)
			}
		}
		// The legend of events is on the top panel only.
		if n := strings.Count(strings.Join(got, "\n"), "event: apoptosis"); n != 1 {
			t.Errorf("%s: %d legend entries for apoptosis, want 1", tt.dir, n)
		}
		// Every panel spans the run's time.
		for i, p := range f.Panels {
			if p.X.Min != 0 || p.X.Max != 10 {
				t.Errorf("%s panel %d: time axis [%v, %v], want [0, 10]", tt.dir, i, p.X.Min, p.X.Max)
			}
		}
	}
}

func TestAgentsFigure(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, "maxwell", realTemp)
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := AgentsFigure(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Panels) != 2 {
		t.Fatalf("%d panels without wallets.csv, want 2", len(f.Panels))
	}
	got := texts(t, f)
	for _, w := range []string{"scientist", "miner", "CPU share (of 2 CPUs)", "attributed energy (J, estimated)"} {
		if !hasText(got, w) {
			t.Errorf("no text %q in %q", w, got)
		}
	}
	if hasText(got, "wallet balance (credits)") {
		t.Error("wallet panel drawn without wallets.csv")
	}

	dir = filepath.Join(t.TempDir(), "economy")
	writeRunRate(t, dir, "maxwell", realTemp, 100, true)
	if d, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	if f, err = AgentsFigure(d); err != nil {
		t.Fatal(err)
	}
	if len(f.Panels) != 3 {
		t.Fatalf("%d panels with wallets.csv, want 3", len(f.Panels))
	}
	got = texts(t, f)
	if !hasText(got, "wallet balance (credits)") {
		t.Errorf("no wallet panel in %q", got)
	}
	n := 0
	for _, s := range got {
		if s == "miner" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("miner has %d legend entries, want one per panel (3)", n)
	}
}

func TestEfficiencyFigure(t *testing.T) {
	dir := t.TempDir()
	var runs []Data
	for _, name := range []string{"base", "mx"} {
		writeRun(t, filepath.Join(dir, name), name, realTemp)
		d, err := Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, d)
	}
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
	f, err := EfficiencyFigure(runs, "primes")
	if err != nil {
		t.Fatal(err)
	}
	got := texts(t, f)
	// 1000 primes over 100 J.
	for _, w := range []string{
		"base (base): 10 primes/J, energy estimated",
		"mx (mx): 10 primes/J, energy estimated",
		"host energy (J, estimated for some runs)", "primes",
		"base: energy estimated, model energy \"linear-utilisation\", tier 3 (model) [model: linear idle=2W max=15W]",
	} {
		if !hasText(got, w) {
			t.Errorf("no text %q in %q", w, got)
		}
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
	if n := colourPixels(img, eventColors[1], 30); n < 50 {
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
