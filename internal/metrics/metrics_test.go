package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/buildinfo"
	"github.com/maxwellhq/maxwell/internal/clock/clocktest"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/life"
)

var testBuild = buildinfo.Info{Version: "v1.2.3", Revision: "0123456789abcdef", GoVersion: "go1.26.0", Platform: "linux/amd64"}

func testState() api.State {
	return api.State{
		Time:                time.Unix(1700000100, 0),
		Started:             time.Unix(1700000000, 500_000_000),
		Tick:                1234,
		TickTime:            time.Unix(1700000099, 950_000_000),
		TickSeconds:         0.1,
		Slots:               2,
		Temperature:         api.Temperature{Celsius: 71.25, Setpoint: 70, Source: api.Source{Kind: "model", Name: "rc-twin", Tier: 3, Estimated: true, Model: "R=0.35 K/W C=120 J/K"}},
		Power:               api.Power{Watts: 38.5, IdleWatts: 12.5, Source: api.Source{Kind: "model", Name: "linear-utilisation", Tier: 3, Estimated: true, Model: "idle 12.5 W, max 50 W"}},
		PowerBudgetWatts:    45,
		Binding:             "temperature",
		EnergyJoules:        4000,
		IdleEnergyJoules:    1250,
		BusyCPUSeconds:      61.5,
		Multiplier:          1.75,
		Reserve:             1750,
		Clearing:            2100,
		FailSafe:            false,
		Apoptoses:           3,
		LedgerErrors:        2,
		AgentRefused:        7,
		AgentProtocolErrors: 4,
		EventsLost:          5,
		Cells: []api.Cell{
			{Name: "scientist", State: life.Running, Backend: "cgroup-hybrid", Cgroup: "/maxwell/scientist", Balance: 900000, Endowment: 1000000, BurnRate: 2100.5,
				Paid: 99000, Tax: 1000, Rent: 10, Income: 500, FreedBytes: 4096, Energy: 12.5, EnergyEstimated: true, CPUSeconds: 42.25, CPUShare: 0.5,
				MemoryBytes: 1 << 20, BidPrice: 2500, BidUnits: 1, Won: 1, WonSlots: 800, Ticks: 1200},
			{Name: "miner", State: life.Dead, Backend: "oci", Cgroup: "/maxwell-oci-0/miner", ContainerID: "miner", Balance: -40, Endowment: 500000,
				Paid: 480000, Tax: 20040, FreedBytes: 1 << 30, Energy: 30, EnergyEstimated: true, CPUSeconds: 7, BidPrice: 1800, BidUnits: 2, WonSlots: 300, Ticks: 400},
		},
	}
}

func stateOf(st api.State) StateFunc {
	return func(context.Context) (api.State, error) { return st, nil }
}

// newTest returns an exporter of state without the runtime collectors.
func newTest(t *testing.T, state StateFunc, adjust ...func(*Options)) *Exporter {
	t.Helper()
	opts := Options{State: state, Build: testBuild, NoRuntime: true}
	for _, f := range adjust {
		f(&opts)
	}
	x, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// get serves path from x and returns the response and its body.
func get(t *testing.T, x *Exporter, method, path string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Accept", "text/plain") // the text format, as promtool reads it
	rec := httptest.NewRecorder()
	x.Handler().ServeHTTP(rec, req)
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// scrape serves the metrics of x and parses what a scrape returns.
func scrape(t *testing.T, x *Exporter) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, body := get(t, x, "GET", "/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s: %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, body)
	}
	return fams, body
}

// value returns the value of the sample of family name with exactly the
// given labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestScrape(t *testing.T) {
	fams, _ := scrape(t, newTest(t, stateOf(testState())))
	twin := map[string]string{"source": "rc-twin", "kind": "model", "tier": "3", "estimated": "true"}
	lin := map[string]string{"source": "linear-utilisation", "kind": "model", "tier": "3", "estimated": "true"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	sci, miner := map[string]string{"agent": "scientist"}, map[string]string{"agent": "miner"}
	c, g, h := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	tests := []struct {
		name   string
		typ    dto.MetricType
		labels map[string]string
		want   float64
	}{
		{"maxwell_build_info", g, map[string]string{"version": "v1.2.3", "revision": "0123456789abcdef", "goversion": "go1.26.0"}, 1},
		{"maxwell_temperature_celsius", g, twin, 71.25},
		{"maxwell_temperature_setpoint_celsius", g, nil, 70},
		{"maxwell_power_watts", g, lin, 38.5},
		{"maxwell_power_idle_watts", g, lin, 12.5},
		{"maxwell_power_budget_watts", g, nil, 45},
		{"maxwell_host_energy_joules_total", c, with(lin, "mode", "idle"), 1250},
		{"maxwell_host_energy_joules_total", c, with(lin, "mode", "dynamic"), 2750},
		{"maxwell_host_busy_cpu_seconds_total", c, nil, 61.5},
		{"maxwell_source_info", g, map[string]string{"quantity": "temperature", "source": "rc-twin", "kind": "model", "tier": "3", "estimated": "true", "model": "R=0.35 K/W C=120 J/K"}, 1},
		{"maxwell_source_info", g, map[string]string{"quantity": "power", "source": "linear-utilisation", "kind": "model", "tier": "3", "estimated": "true", "model": "idle 12.5 W, max 50 W"}, 1},
		{"maxwell_price_multiplier", g, nil, 1.75},
		{"maxwell_price_binding", g, map[string]string{"limit": "temperature"}, 1},
		{"maxwell_price_binding", g, map[string]string{"limit": "power"}, 0},
		{"maxwell_price_binding", g, map[string]string{"limit": "none"}, 0},
		{"maxwell_reserve_price_credits", g, nil, 1750},
		{"maxwell_clearing_price_credits", g, nil, 2100},
		{"maxwell_fail_safe", g, nil, 0},
		{"maxwell_ticks_total", c, nil, 1234},
		{"maxwell_last_tick_timestamp_seconds", g, nil, 1700000099.95},
		{"maxwell_tick_configured_seconds", g, nil, 0.1},
		{"maxwell_tick_latency_seconds", h, nil, 0},
		{"maxwell_tick_phase_seconds", h, map[string]string{"phase": "post"}, 0},
		{"maxwell_tick_interval_seconds", h, nil, 0},
		{"maxwell_slots", g, nil, 2},
		{"maxwell_start_time_seconds", g, nil, 1700000000.5},
		{"maxwell_apoptosis_total", c, nil, 3},
		{"maxwell_ledger_errors_total", c, nil, 2},
		{"maxwell_hub_errors_total", c, map[string]string{"kind": "agent_refused"}, 7},
		{"maxwell_hub_errors_total", c, map[string]string{"kind": "agent_protocol_error"}, 4},
		{"maxwell_events_lost_total", c, nil, 5},
		{"maxwell_agents", g, map[string]string{"state": "running"}, 1},
		{"maxwell_agents", g, map[string]string{"state": "dead"}, 1},
		{"maxwell_agents", g, map[string]string{"state": "hibernating"}, 0},
		{"maxwell_agent_state", g, map[string]string{"agent": "scientist", "state": "running"}, 1},
		{"maxwell_agent_state", g, map[string]string{"agent": "scientist", "state": "dead"}, 0},
		{"maxwell_agent_state", g, map[string]string{"agent": "miner", "state": "dead"}, 1},
		{"maxwell_agent_state", g, map[string]string{"agent": "miner", "state": "paused"}, 0},
		{"maxwell_agent_info", g, map[string]string{"agent": "miner", "backend": "oci", "cgroup": "/maxwell-oci-0/miner", "container_id": "miner"}, 1},
		{"maxwell_agent_info", g, map[string]string{"agent": "scientist", "backend": "cgroup-hybrid", "cgroup": "/maxwell/scientist", "container_id": ""}, 1},
		{"maxwell_agent_balance_credits", g, sci, 900000},
		{"maxwell_agent_balance_credits", g, miner, -40},
		{"maxwell_agent_endowment_credits", g, miner, 500000},
		{"maxwell_agent_burn_rate_credits_per_second", g, sci, 2100.5},
		{"maxwell_agent_spent_credits_total", c, sci, 99000 + 1000 + 10},
		{"maxwell_agent_paid_credits_total", c, miner, 480000},
		{"maxwell_agent_tax_credits_total", c, miner, 20040},
		{"maxwell_agent_rent_credits_total", c, sci, 10},
		{"maxwell_agent_income_credits_total", c, sci, 500},
		{"maxwell_agent_freed_bytes_total", c, miner, 1 << 30},
		{"maxwell_agent_energy_joules_total", c, with(lin, "agent", "scientist"), 12.5},
		{"maxwell_agent_energy_joules_total", c, with(lin, "agent", "miner"), 30},
		{"maxwell_agent_cpu_seconds_total", c, sci, 42.25},
		{"maxwell_agent_cpu_ratio", g, sci, 0.5},
		{"maxwell_agent_memory_bytes", g, sci, 1 << 20},
		{"maxwell_agent_bid_price_credits", g, miner, 1800},
		{"maxwell_agent_bid_slots", g, miner, 2},
		{"maxwell_agent_won_slots_total", c, sci, 800},
		{"maxwell_agent_ticks_total", c, miner, 400},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.name] = true
		f, ok := fams[tt.name]
		if !ok {
			t.Errorf("%s: missing", tt.name)
			continue
		}
		if f.GetType() != tt.typ {
			t.Errorf("%s: type %v, want %v", tt.name, f.GetType(), tt.typ)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no help", tt.name)
		}
		got, ok := value(t, fams, tt.name, tt.labels)
		if !ok {
			t.Errorf("%s%v: no such sample in %v", tt.name, tt.labels, f.Metric)
			continue
		}
		if got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	// Every family exported is checked above, and nothing else is exported.
	for name := range fams {
		if !seen[name] {
			t.Errorf("unexpected family %s", name)
		}
	}
	for _, name := range NewCollector(nil, 0).Names() {
		if !seen[name] {
			t.Errorf("family %s not covered by this test", name)
		}
	}
	// A state set: each agent is in exactly one state.
	for _, agent := range []string{"scientist", "miner"} {
		var sum float64
		for _, s := range life.States() {
			v, _ := value(t, fams, "maxwell_agent_state", map[string]string{"agent": agent, "state": string(s)})
			sum += v
		}
		if sum != 1 {
			t.Errorf("%s is in %v states", agent, sum)
		}
	}
}

// TestHostEnergyModes: the host's energy is split into idle and dynamic
// only where the power model knows the idle power; a sensor's is one
// series, mode="total". Either way the modes add up to the energy.
func TestHostEnergyModes(t *testing.T) {
	rapl := api.Source{Kind: "rapl", Name: "package-0", Tier: 2}
	tests := []struct {
		name  string
		power api.Power
		idle  float64
		want  map[string]float64
	}{
		{"model with idle power", api.Power{Watts: 30, IdleWatts: 10, Source: api.Source{Kind: "model", Name: "linear-utilisation", Tier: 3, Estimated: true}}, 1000, map[string]float64{"idle": 1000, "dynamic": 3000}},
		{"sensor", api.Power{Watts: 30, Source: rapl}, 0, map[string]float64{"total": 4000}},
		{"model whose idle is all of it", api.Power{Watts: 10, IdleWatts: 10, Source: api.Source{Kind: "model", Name: "m", Tier: 3, Estimated: true}}, 4000, map[string]float64{"idle": 4000, "dynamic": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := testState()
			st.Power, st.EnergyJoules, st.IdleEnergyJoules = tt.power, 4000, tt.idle
			fams, _ := scrape(t, newTest(t, stateOf(st)))
			f := fams["maxwell_host_energy_joules_total"]
			if f == nil {
				t.Fatal("no host energy")
			}
			got := map[string]float64{}
			var sum float64
			for _, m := range f.Metric {
				labels := map[string]string{}
				for _, l := range m.Label {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["source"] != tt.power.Source.Name || labels["estimated"] != map[bool]string{true: "true", false: "false"}[tt.power.Source.Estimated] {
					t.Errorf("labels %v, want the power source %+v", labels, tt.power.Source)
				}
				got[labels["mode"]] = m.Counter.GetValue()
				sum += m.Counter.GetValue()
			}
			if len(got) != len(tt.want) {
				t.Errorf("modes %v, want %v", got, tt.want)
			}
			for mode, v := range tt.want {
				if got[mode] != v {
					t.Errorf("mode %s = %v, want %v", mode, got[mode], v)
				}
			}
			if sum != 4000 {
				t.Errorf("the modes add up to %v J, want 4000", sum)
			}
		})
	}
}

func TestScrapeFailSafe(t *testing.T) {
	st := testState()
	st.FailSafe = true
	st.Temperature.Error = "thermal_zone0: no such file"
	st.Power.Error = "rapl: permission denied"
	st.PowerBudgetWatts = 0
	st.Cells = nil
	fams, _ := scrape(t, newTest(t, stateOf(st)))
	for _, name := range []string{"maxwell_temperature_celsius", "maxwell_power_watts", "maxwell_power_budget_watts", "maxwell_agent_balance_credits"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s exported", name)
		}
	}
	if v, _ := value(t, fams, "maxwell_fail_safe", nil); v != 1 {
		t.Errorf("maxwell_fail_safe = %v", v)
	}
	if v, ok := value(t, fams, "maxwell_agents", map[string]string{"state": "running"}); !ok || v != 0 {
		t.Errorf("maxwell_agents{running} = %v, %v", v, ok)
	}
	// Before the first tick: no binding and no last tick.
	st = testState()
	st.Tick, st.TickTime = 0, time.Time{}
	fams, _ = scrape(t, newTest(t, stateOf(st)))
	for _, name := range []string{"maxwell_price_binding", "maxwell_last_tick_timestamp_seconds"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s exported before the first tick", name)
		}
	}
}

func TestScrapeStateError(t *testing.T) {
	x := newTest(t, func(context.Context) (api.State, error) { return api.State{}, errors.New("engine stopped") })
	resp, body := get(t, x, "GET", "/metrics")
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "engine stopped") {
		t.Errorf("scrape of a failing state: %s %q", resp.Status, body)
	}
}

// TestDeadGrace: a dead cell's series stay for the grace period after a
// scrape first finds it dead, then go; a running cell's never do.
func TestDeadGrace(t *testing.T) {
	tests := []struct {
		name  string
		grace time.Duration
		// scrapes at these offsets from the first, and whether the dead
		// miner is exported at each
		at   []time.Duration
		want []bool
	}{
		{"default 5 minutes", 0, []time.Duration{0, 4*time.Minute + 59*time.Second, 5 * time.Minute, time.Hour}, []bool{true, true, false, false}},
		{"30 s", 30 * time.Second, []time.Duration{0, 29 * time.Second, 31 * time.Second}, []bool{true, true, false}},
		{"negative: at once", -1, []time.Duration{0, time.Second}, []bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New()
			start := clk.Now()
			state := func(context.Context) (api.State, error) {
				st := testState()
				st.Time = clk.Now()
				return st, nil
			}
			x := newTest(t, state, func(o *Options) { o.DeadGrace = tt.grace })
			for i, at := range tt.at {
				clk.Advance(start.Add(at).Sub(clk.Now()))
				fams, _ := scrape(t, x)
				_, miner := value(t, fams, "maxwell_agent_balance_credits", map[string]string{"agent": "miner"})
				_, info := value(t, fams, "maxwell_agent_info", map[string]string{"agent": "miner", "backend": "oci", "cgroup": "/maxwell-oci-0/miner", "container_id": "miner"})
				_, sci := value(t, fams, "maxwell_agent_balance_credits", map[string]string{"agent": "scientist"})
				if miner != tt.want[i] || info != tt.want[i] {
					t.Errorf("at +%v: the dead miner's balance exported %v, info %v, want %v", at, miner, info, tt.want[i])
				}
				if !sci {
					t.Errorf("at +%v: the running scientist is not exported", at)
				}
				if v, _ := value(t, fams, "maxwell_agents", map[string]string{"state": "dead"}); v != 1 {
					t.Errorf("at +%v: maxwell_agents{dead} = %v: the dead still count", at, v)
				}
			}
		})
	}
}

// TestDeadGraceForgets: a cell the state no longer lists is forgotten, so
// a later cell of the same name gets its own grace.
func TestDeadGraceForgets(t *testing.T) {
	clk := clocktest.New()
	cells := testState().Cells
	state := func(context.Context) (api.State, error) {
		st := testState()
		st.Time, st.Cells = clk.Now(), cells
		return st, nil
	}
	x := newTest(t, state, func(o *Options) { o.DeadGrace = time.Minute })
	scrape(t, x)
	cells = cells[:1] // the miner gone
	clk.Advance(10 * time.Minute)
	scrape(t, x)
	cells = testState().Cells // a miner, dead, again
	fams, _ := scrape(t, x)
	if _, ok := value(t, fams, "maxwell_agent_balance_credits", map[string]string{"agent": "miner"}); !ok {
		t.Error("a newly dead miner is not exported: its predecessor's death was remembered")
	}
}

// TestSteps: each tick's work goes into the histograms: the total, every
// phase, and the interval, whose buckets are multiples of the tick.
func TestSteps(t *testing.T) {
	x := newTest(t, stateOf(testState()), func(o *Options) { o.Tick = 200 * time.Millisecond })
	steps := []engine.Step{
		{Tick: 1, Interval: 200 * time.Millisecond, Measure: 2 * time.Millisecond, Decide: time.Millisecond, Post: 3 * time.Millisecond, Apply: time.Millisecond, Total: 8 * time.Millisecond},
		{Tick: 2, Interval: 260 * time.Millisecond, Measure: 2 * time.Millisecond, Decide: time.Millisecond, Post: 40 * time.Millisecond, Apply: time.Millisecond, Total: 45 * time.Millisecond},
		{Tick: 3, Interval: 0, Measure: time.Millisecond, Total: time.Millisecond},
	}
	for _, s := range steps {
		x.ObserveStep(s)
	}
	fams, _ := scrape(t, x)
	hist := func(name string, labels map[string]string) *dto.Histogram {
		t.Helper()
		for _, m := range fams[name].GetMetric() {
			match := true
			for _, l := range m.Label {
				match = match && labels[l.GetName()] == l.GetValue()
			}
			if match && len(m.Label) == len(labels) {
				return m.Histogram
			}
		}
		t.Fatalf("no %s%v", name, labels)
		return nil
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	tests := []struct {
		name   string
		labels map[string]string
		count  uint64
		sum    float64
	}{
		{"maxwell_tick_latency_seconds", nil, 3, 0.054},
		{"maxwell_tick_phase_seconds", map[string]string{"phase": "measure"}, 3, 0.005},
		{"maxwell_tick_phase_seconds", map[string]string{"phase": "decide"}, 3, 0.002},
		{"maxwell_tick_phase_seconds", map[string]string{"phase": "post"}, 3, 0.043},
		{"maxwell_tick_phase_seconds", map[string]string{"phase": "apply"}, 3, 0.002},
		{"maxwell_tick_interval_seconds", nil, 2, 0.46}, // the interval-less step is not an interval
	}
	for _, tt := range tests {
		h := hist(tt.name, tt.labels)
		if h.GetSampleCount() != tt.count || !near(h.GetSampleSum(), tt.sum) {
			t.Errorf("%s%v: count %d sum %v, want %d and %v", tt.name, tt.labels, h.GetSampleCount(), h.GetSampleSum(), tt.count, tt.sum)
		}
	}
	// The 45 ms tick is above the 25 ms bucket and within the 50 ms one.
	for _, b := range hist("maxwell_tick_latency_seconds", nil).Bucket {
		want := map[float64]uint64{0.025: 2, 0.05: 3}
		if w, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("latency bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	var bounds []float64
	for _, b := range hist("maxwell_tick_interval_seconds", nil).Bucket {
		if !math.IsInf(b.GetUpperBound(), 1) {
			bounds = append(bounds, b.GetUpperBound())
		}
		if near(b.GetUpperBound(), 0.2*1.01) && b.GetCumulativeCount() != 1 || near(b.GetUpperBound(), 0.2*1.5) && b.GetCumulativeCount() != 2 {
			t.Errorf("interval bucket le=%v holds %d", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	if len(bounds) != len(intervalFactors) || !near(bounds[0], 0.1) || !near(bounds[len(bounds)-1], 2) {
		t.Errorf("interval buckets %v, want 0.5× to 10× the 200 ms tick", bounds)
	}
}

// TestHealthz: /healthz answers 200 while ticks are decided, 503 once the
// last is older than the staleness bound (10 tick lengths, at least 2 s)
// or the state cannot be read; it says why in JSON.
func TestHealthz(t *testing.T) {
	clk := clocktest.New()
	t0 := clk.Now()
	tests := []struct {
		name   string
		state  func() (api.State, error)
		ticks  int
		code   int
		reason string
	}{
		{"ticking", func() (api.State, error) {
			return api.State{Time: t0, Started: t0.Add(-time.Hour), Tick: 9, TickTime: t0.Add(-100 * time.Millisecond), TickSeconds: 0.1}, nil
		}, 0, 200, ""},
		{"late, within 2 s", func() (api.State, error) {
			return api.State{Time: t0, Started: t0.Add(-time.Hour), Tick: 9, TickTime: t0.Add(-1900 * time.Millisecond), TickSeconds: 0.1}, nil
		}, 0, 200, ""},
		{"stuck", func() (api.State, error) {
			return api.State{Time: t0, Started: t0.Add(-time.Hour), Tick: 9, TickTime: t0.Add(-3 * time.Second), TickSeconds: 0.1}, nil
		}, 0, 503, "last tick (9) decided 3.0 s ago"},
		{"1 s ticks: 10 of them", func() (api.State, error) {
			return api.State{Time: t0, Started: t0.Add(-time.Hour), Tick: 9, TickTime: t0.Add(-9 * time.Second), TickSeconds: 1}, nil
		}, 0, 200, ""},
		{"1 s ticks, 3 allowed", func() (api.State, error) {
			return api.State{Time: t0, Started: t0.Add(-time.Hour), Tick: 9, TickTime: t0.Add(-4 * time.Second), TickSeconds: 1}, nil
		}, 3, 503, "more than 3.0 s"},
		{"starting", func() (api.State, error) {
			return api.State{Time: t0, Started: t0.Add(-500 * time.Millisecond), TickSeconds: 0.1}, nil
		}, 0, 200, ""},
		{"never ticked", func() (api.State, error) {
			return api.State{Time: t0, Started: t0.Add(-time.Minute), TickSeconds: 0.1}, nil
		}, 0, 503, "no tick decided in the 60.0 s since the daemon started"},
		{"state unreadable", func() (api.State, error) { return api.State{}, errors.New("economy closed") }, 0, 503, "economy closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newTest(t, func(context.Context) (api.State, error) { return tt.state() }, func(o *Options) { o.StaleTicks = tt.ticks })
			resp, body := get(t, x, "GET", "/healthz")
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			var h Health
			if err := json.Unmarshal(body, &h); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if h.OK != (tt.code == 200) || !strings.Contains(h.Reason, tt.reason) || (tt.code == 200) != (h.Reason == "") {
				t.Errorf("health %+v, want ok=%v and a reason with %q", h, tt.code == 200, tt.reason)
			}
		})
	}
}

// TestPaths: the metrics at /metrics, liveness at /healthz, and nothing
// anywhere else.
func TestPaths(t *testing.T) {
	st := testState()
	st.Time = st.TickTime.Add(50 * time.Millisecond)
	x := newTest(t, stateOf(st))
	tests := []struct {
		method, path string
		code         int
	}{
		{"GET", "/metrics", 200},
		{"HEAD", "/metrics", 200},
		{"GET", "/healthz", 200},
		{"HEAD", "/healthz", 200},
		{"GET", "/", 404},
		{"GET", "/foo", 404},
		{"GET", "/metrics/foo", 404},
		{"GET", "/healthz/x", 404},
		{"POST", "/metrics", 405},
	}
	for _, tt := range tests {
		resp, body := get(t, x, tt.method, tt.path)
		if resp.StatusCode != tt.code {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.code)
		}
		if tt.code == 404 && strings.Contains(string(body), "maxwell_") {
			t.Errorf("%s %s serves metrics", tt.method, tt.path)
		}
	}
}

// TestLint checks the whole exposition, the Go and process collectors
// included, against Prometheus's metric naming and typing rules: with
// promlint always, and with promtool where installed.
func TestLint(t *testing.T) {
	x, err := New(Options{State: stateOf(testState())})
	if err != nil {
		t.Fatal(err)
	}
	x.ObserveStep(engine.Step{Interval: 100 * time.Millisecond, Total: time.Millisecond})
	fams, body := scrape(t, x)
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", "maxwell_build_info"} {
		if _, ok := fams[want]; !ok {
			t.Errorf("%s missing", want)
		}
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed (Debian package prometheus); promlint applied the same rules")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	t.Logf("promtool check metrics: clean (%d families)", len(fams))
}

// TestGrafanaDashboard checks that the shipped dashboard is a dashboard and
// asks only for metrics the exporter defines.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../../docs/grafana/maxwell.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title         string `json:"title"`
		UID           string `json:"uid"`
		SchemaVersion int    `json:"schemaVersion"`
		Panels        []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || dash.SchemaVersion < 30 {
		t.Errorf("dashboard header: title %q uid %q schemaVersion %d", dash.Title, dash.UID, dash.SchemaVersion)
	}
	defined := exported(t)
	metricRe := regexp.MustCompile(`\bmaxwell_[a-z_]+\b`)
	used := map[string]bool{}
	var titles []string
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, tg := range p.Targets {
			names := metricRe.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no maxwell metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !defined[seriesFamily(n)] {
					t.Errorf("panel %q: query %q uses %s, which the exporter does not define", p.Title, tg.Expr, n)
				}
			}
		}
	}
	for _, want := range []string{"maxwell_temperature_celsius", "maxwell_temperature_setpoint_celsius", "maxwell_power_watts",
		"maxwell_host_energy_joules_total", "maxwell_reserve_price_credits", "maxwell_clearing_price_credits", "maxwell_agent_balance_credits",
		"maxwell_agent_spent_credits_total", "maxwell_agent_freed_bytes_total", "maxwell_agent_cpu_seconds_total", "maxwell_agent_won_slots_total",
		"maxwell_apoptosis_total", "maxwell_tick_latency_seconds_bucket"} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
	// Template variables and everything else name only defined metrics too.
	for _, n := range metricRe.FindAllString(string(raw), -1) {
		if !defined[seriesFamily(n)] {
			t.Errorf("dashboard names %s, which the exporter does not define", n)
		}
	}
	sort.Strings(titles)
	t.Logf("panels: %q", titles)
}

// exported returns the names of every family the exporter defines.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	x := newTest(t, stateOf(testState()))
	fams, err := x.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
	}
	for _, n := range NewCollector(nil, 0).Names() {
		out[n] = true
	}
	return out
}

// seriesFamily maps a histogram's series name to its family's.
func seriesFamily(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(name, suffix); ok && strings.HasPrefix(f, "maxwell_tick_") {
			return f
		}
	}
	return name
}
