package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/life"
)

func testState() api.State {
	return api.State{
		Started:     time.Unix(1700000000, 500_000_000),
		Tick:        1234,
		TickSeconds: 0.1,
		Slots:       2,
		Temperature: api.Temperature{Celsius: 71.25, Setpoint: 70, Source: api.Source{Kind: "model", Name: "rc-twin", Tier: 3, Estimated: true, Model: "R=0.35 K/W C=120 J/K"}},
		Power:       api.Power{Watts: 38.5, Source: api.Source{Kind: "rapl", Name: "package-0", Tier: 2}},
		Multiplier:  1.75,
		Reserve:     1750,
		Clearing:    2100,
		FailSafe:    false,
		Apoptoses:   3,
		Cells: []api.Cell{
			{Name: "scientist", State: life.Running, Backend: "hybrid", Balance: 900000, Endowment: 1000000, BurnRate: 2100.5, Paid: 99000, Tax: 1000, FreedBytes: 4096, Energy: 12.5, EnergyEstimated: true, CPUShare: 0.5, BidPrice: 2500, BidUnits: 1, Won: 1},
			{Name: "miner", State: life.Dead, Backend: "signal", Balance: -40, Endowment: 500000, Paid: 480000, Tax: 20040, FreedBytes: 1 << 30, Energy: 30, BidPrice: 1800, BidUnits: 2},
		},
	}
}

// scrape serves the metrics of st and parses what a scrape returns.
func scrape(t *testing.T, st StateFunc) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	srv := httptest.NewServer(Handler(st))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "text/plain") // the text format, as promtool reads it
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
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
		}
	}
	return 0, false
}

func TestScrape(t *testing.T) {
	fams, _ := scrape(t, func(context.Context) (api.State, error) { return testState(), nil })
	model := map[string]string{"source": "rc-twin", "kind": "model", "tier": "3", "estimated": "true"}
	rapl := map[string]string{"source": "package-0", "kind": "rapl", "tier": "2", "estimated": "false"}
	sci, miner := map[string]string{"agent": "scientist"}, map[string]string{"agent": "miner"}
	tests := []struct {
		name   string
		typ    dto.MetricType
		labels map[string]string
		want   float64
	}{
		{"maxwell_temperature_celsius", dto.MetricType_GAUGE, model, 71.25},
		{"maxwell_temperature_setpoint_celsius", dto.MetricType_GAUGE, nil, 70},
		{"maxwell_power_watts", dto.MetricType_GAUGE, rapl, 38.5},
		{"maxwell_source_info", dto.MetricType_GAUGE, map[string]string{"quantity": "temperature", "source": "rc-twin", "kind": "model", "tier": "3", "estimated": "true", "model": "R=0.35 K/W C=120 J/K"}, 1},
		{"maxwell_source_info", dto.MetricType_GAUGE, map[string]string{"quantity": "power", "source": "package-0", "kind": "rapl", "tier": "2", "estimated": "false", "model": ""}, 1},
		{"maxwell_price_multiplier", dto.MetricType_GAUGE, nil, 1.75},
		{"maxwell_reserve_price_credits", dto.MetricType_GAUGE, nil, 1750},
		{"maxwell_clearing_price_credits", dto.MetricType_GAUGE, nil, 2100},
		{"maxwell_fail_safe", dto.MetricType_GAUGE, nil, 0},
		{"maxwell_ticks_total", dto.MetricType_COUNTER, nil, 1234},
		{"maxwell_tick_duration_seconds", dto.MetricType_GAUGE, nil, 0.1},
		{"maxwell_slots", dto.MetricType_GAUGE, nil, 2},
		{"maxwell_start_time_seconds", dto.MetricType_GAUGE, nil, 1700000000.5},
		{"maxwell_apoptosis_total", dto.MetricType_COUNTER, nil, 3},
		{"maxwell_agents", dto.MetricType_GAUGE, map[string]string{"state": "running"}, 1},
		{"maxwell_agents", dto.MetricType_GAUGE, map[string]string{"state": "dead"}, 1},
		{"maxwell_agents", dto.MetricType_GAUGE, map[string]string{"state": "hibernating"}, 0},
		{"maxwell_agent_state", dto.MetricType_GAUGE, map[string]string{"agent": "scientist", "state": "running"}, 1},
		{"maxwell_agent_state", dto.MetricType_GAUGE, map[string]string{"agent": "scientist", "state": "dead"}, 0},
		{"maxwell_agent_state", dto.MetricType_GAUGE, map[string]string{"agent": "miner", "state": "dead"}, 1},
		{"maxwell_agent_state", dto.MetricType_GAUGE, map[string]string{"agent": "miner", "state": "paused"}, 0},
		{"maxwell_agent_info", dto.MetricType_GAUGE, map[string]string{"agent": "miner", "backend": "signal"}, 1},
		{"maxwell_agent_balance_credits", dto.MetricType_GAUGE, sci, 900000},
		{"maxwell_agent_balance_credits", dto.MetricType_GAUGE, miner, -40},
		{"maxwell_agent_endowment_credits", dto.MetricType_GAUGE, miner, 500000},
		{"maxwell_agent_burn_rate_credits_per_second", dto.MetricType_GAUGE, sci, 2100.5},
		{"maxwell_agent_paid_credits_total", dto.MetricType_COUNTER, miner, 480000},
		{"maxwell_agent_tax_credits_total", dto.MetricType_COUNTER, miner, 20040},
		{"maxwell_agent_freed_bytes_total", dto.MetricType_COUNTER, miner, 1 << 30},
		{"maxwell_agent_energy_joules_total", dto.MetricType_COUNTER, map[string]string{"agent": "scientist", "estimated": "true"}, 12.5},
		{"maxwell_agent_energy_joules_total", dto.MetricType_COUNTER, map[string]string{"agent": "miner", "estimated": "false"}, 30},
		{"maxwell_agent_cpu_ratio", dto.MetricType_GAUGE, sci, 0.5},
		{"maxwell_agent_bid_price_credits", dto.MetricType_GAUGE, miner, 1800},
		{"maxwell_agent_bid_slots", dto.MetricType_GAUGE, miner, 2},
		{"maxwell_agent_won_slots", dto.MetricType_GAUGE, sci, 1},
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
	for _, name := range NewCollector(nil).Names() {
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

func TestScrapeFailSafe(t *testing.T) {
	st := testState()
	st.FailSafe = true
	st.Temperature.Error = "thermal_zone0: no such file"
	st.Power.Error = "rapl: permission denied"
	st.Cells = nil
	fams, _ := scrape(t, func(context.Context) (api.State, error) { return st, nil })
	if _, ok := fams["maxwell_temperature_celsius"]; ok {
		t.Error("an unreadable temperature was exported")
	}
	if _, ok := fams["maxwell_power_watts"]; ok {
		t.Error("an unreadable power was exported")
	}
	if v, _ := value(t, fams, "maxwell_fail_safe", nil); v != 1 {
		t.Errorf("maxwell_fail_safe = %v", v)
	}
	if _, ok := fams["maxwell_agent_balance_credits"]; ok {
		t.Error("agent metrics without agents")
	}
	if v, ok := value(t, fams, "maxwell_agents", map[string]string{"state": "running"}); !ok || v != 0 {
		t.Errorf("maxwell_agents{running} = %v, %v", v, ok)
	}
}

func TestScrapeStateError(t *testing.T) {
	srv := httptest.NewServer(Handler(func(context.Context) (api.State, error) { return api.State{}, errors.New("engine stopped") }))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "engine stopped") {
		t.Errorf("scrape of a failing state: %s %q", resp.Status, body)
	}
}

// TestLint checks the exposition against Prometheus's metric naming and
// typing rules: with promlint always, and with promtool where installed.
func TestLint(t *testing.T) {
	st := testState()
	_, body := scrape(t, func(context.Context) (api.State, error) { return st, nil })
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
	defined := NewCollector(nil).Names()
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
				if !slices.Contains(defined, n) {
					t.Errorf("panel %q: query %q uses %s, which the exporter does not define", p.Title, tg.Expr, n)
				}
			}
		}
	}
	for _, want := range []string{"maxwell_temperature_celsius", "maxwell_temperature_setpoint_celsius", "maxwell_power_watts", "maxwell_reserve_price_credits", "maxwell_clearing_price_credits", "maxwell_agent_balance_credits", "maxwell_agent_freed_bytes_total", "maxwell_apoptosis_total"} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
	// Template variables and everything else name only defined metrics too.
	for _, n := range metricRe.FindAllString(string(raw), -1) {
		if !slices.Contains(defined, n) {
			t.Errorf("dashboard names %s, which the exporter does not define", n)
		}
	}
	sort.Strings(titles)
	t.Logf("panels: %q", titles)
}
