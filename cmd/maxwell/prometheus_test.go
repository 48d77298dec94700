package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/units"
)

// promSample is one series of an instant query's answer.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// promClient queries a Prometheus server through its HTTP API.
type promClient struct {
	t    *testing.T
	base string
}

// query runs an instant query and returns its vector.
func (p promClient) query(q string) ([]promSample, error) {
	resp, err := http.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %s: %v", q, body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: a %s, want a vector", q, r.Data.ResultType)
	}
	var out []promSample
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %v: %v", q, s.Value, err)
		}
		out = append(out, promSample{Metric: s.Metric, Value: v})
	}
	return out, nil
}

// one returns the value of the series of q whose label key is value.
func (p promClient) one(q, key, value string) float64 {
	p.t.Helper()
	res, err := p.query(q)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, s := range res {
		if key == "" || s.Metric[key] == value {
			return s.Value
		}
	}
	p.t.Fatalf("query %q: no series with %s=%q in %v", q, key, value, res)
	return 0
}

// startPrometheus runs Debian's prometheus scraping target every second
// as job "maxwell", and returns a client of its HTTP API once it is up.
func startPrometheus(t *testing.T, target string) promClient {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (Debian package prometheus; .ci/run installs it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: maxwell
    static_configs:
      - targets: [%q]
`, target)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	p := promClient{t: t, base: "http://" + addr}
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		if res, err := p.query(`up{job="maxwell"}`); err == nil && len(res) == 1 && res[0].Value == 1 {
			return p
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("prometheus did not scrape the daemon in 20 s:\n%s", log.String())
		}
	}
}

// TestPrometheus: Debian's Prometheus scrapes a real `maxwell daemon` on
// 127.0.0.1 with a spinning cell in it, and what its HTTP API answers
// makes sense: the per-agent energy rate and the runway (balance over the
// rate of spending) from the counters, the burn rate gauge equal to that
// rate, the host's energy split by mode adding up to its power, measured
// tick latencies below the tick, every dashboard panel's query answered.
func TestPrometheus(t *testing.T) {
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Skip("prometheus is not installed (Debian package prometheus; .ci/run installs it)")
	}
	c, metricsAddr := startDaemon(t, "--metrics-dead-grace", "2s")
	ctx := context.Background()
	// A bid above the price ceiling (10 × the base slot price of about
	// 0.76 M credits here): the spinner wins every tick, however hot the
	// host gets, and pays the reserve.
	const maxBid = units.Credits(1_000_000_000)
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "spinner", Argv: []string{"/bin/sh", "-c", "while :; do :; done"},
		Wallet: 1 << 40, MaxBid: maxBid, Units: 1, Dir: "/"}); err != nil {
		t.Fatal(err)
	}
	// A cell to kill: its series go 2 s after its death.
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "victim", Argv: []string{"/bin/sleep", "1000"}, Wallet: 1 << 30, MaxBid: 1000, Units: 1, Dir: "/"}); err != nil {
		t.Fatal(err)
	}
	// A container cell, where runc and busybox are (CI installs both):
	// its cgroup and container ID in maxwell_agent_info.
	boxed := ""
	if _, err := exec.LookPath("runc"); err != nil {
		t.Log("no container cell: runc is not installed (Debian package runc)")
	} else if _, err := os.Stat(oci.DefaultBusybox); err != nil {
		t.Logf("no container cell: %s is missing (Debian package busybox-static)", oci.DefaultBusybox)
	} else {
		rootfs := filepath.Join(t.TempDir(), "rootfs")
		if err := (oci.RootFS{Busybox: oci.DefaultBusybox}).Build(ctx, rootfs); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "boxed", Argv: []string{"/bin/sleep", "1000"}, Wallet: 1 << 30, MaxBid: 1000, Units: 1, OCIRootfs: rootfs}); err != nil {
			t.Fatal(err)
		}
		boxed = `maxwell_agent_info{agent="boxed", backend="oci", container_id="boxed", cgroup=~"/mxd-.+-oci-0/boxed"}`
	}
	p := startPrometheus(t, metricsAddr)

	// /healthz and the paths beside /metrics, as Prometheus's neighbours
	// see them.
	for path, want := range map[string]int{"/healthz": 200, "/foo": 404, "/": 404} {
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d: %s", path, resp.StatusCode, want, body)
		}
	}

	// The real daemon's exposition passes promtool (Debian's prometheus
	// package ships it).
	if promtool, err := exec.LookPath("promtool"); err == nil {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on the daemon's /metrics: %v\n%s", err, out)
		}
	} else {
		t.Error("prometheus is installed without promtool")
	}

	// Enough scrapes for 10 s rates: a series younger than the window
	// would make rate() extrapolate over its missing part (and read low).
	const w = "[10s]"
	for start := time.Now(); ; time.Sleep(500 * time.Millisecond) {
		res, err := p.query(`count_over_time(maxwell_agent_spent_credits_total{agent="spinner"}[12s])`)
		if err == nil && len(res) == 1 && res[0].Value >= 12 {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("after 20 s Prometheus holds %v samples of the spinner's spending (%v)", res, err)
		}
	}

	// Per-agent power: the rate of its attributed energy.
	energyQ := `sum by (agent) (rate(maxwell_agent_energy_joules_total` + w + `))`
	spinnerW := p.one(energyQ, "agent", "spinner")
	hostW := p.one(`sum(rate(maxwell_host_energy_joules_total`+w+`))`, "", "")
	powerW := p.one(`avg_over_time(maxwell_power_watts`+w+`)`, "", "")
	if !(spinnerW > 0) || spinnerW > hostW*1.05 {
		t.Errorf("the spinner draws %.2f W of the host's %.2f W", spinnerW, hostW)
	}
	if math.Abs(hostW-powerW) > 0.25*powerW {
		t.Errorf("the host energy counter's rate %.2f W is far from the mean power gauge %.2f W", hostW, powerW)
	}
	// This host has no power sensor: the model splits idle and dynamic,
	// and says it estimated them.
	modes, err := p.query(`sum by (mode, estimated) (rate(maxwell_host_energy_joules_total` + w + `))`)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, m := range modes {
		sum += m.Value
	}
	t.Logf("host %.2f W (mean power gauge %.2f W) by mode %v; spinner %.2f W", hostW, powerW, modes, spinnerW)
	if math.Abs(sum-hostW) > 1e-6*hostW {
		t.Errorf("the modes add up to %.3f W, the host's energy rate is %.3f W", sum, hostW)
	}

	// Runway: balance over the rate of spending.
	runwayQ := `maxwell_agent_balance_credits / rate(maxwell_agent_spent_credits_total` + w + `)`
	runway := p.one(runwayQ, "agent", "spinner")
	spend := p.one(`rate(maxwell_agent_spent_credits_total`+w+`)`, "agent", "spinner")
	balance := p.one(`maxwell_agent_balance_credits`, "agent", "spinner")
	burn := p.one(`maxwell_agent_burn_rate_credits_per_second`, "agent", "spinner")
	perSlot := p.one(`rate(maxwell_agent_paid_credits_total`+w+`) / rate(maxwell_agent_won_slots_total`+w+`)`, "agent", "spinner")
	minReserve := p.one(`min_over_time(maxwell_reserve_price_credits`+w+`)`, "", "")
	maxReserve := p.one(`max_over_time(maxwell_reserve_price_credits`+w+`)`, "", "")
	t.Logf("spinner: balance %.4g credits, spending %.4g credits/s (burn rate gauge %.4g), runway %.4g s; %.0f credits per slot won, reserve %.0f..%.0f",
		balance, spend, burn, runway, perSlot, minReserve, maxReserve)
	if !(runway > 3600) || math.IsInf(runway, 0) || math.Abs(runway-balance/spend) > 0.05*runway {
		t.Errorf("runway %v s, want balance/spending = %v s, over an hour for a wallet of 2^40 credits", runway, balance/spend)
	}
	if !(spend > 0) || math.Abs(burn-spend) > 0.25*spend {
		t.Errorf("the burn rate gauge %.4g credits/s disagrees with rate(spent_total) %.4g", burn, spend)
	}
	// Alone in the auction, it pays for each slot it wins the reserve,
	// prorated to the CPU time it used of the slot: never more.
	if !(perSlot > 0) || perSlot > maxReserve*1.05 {
		t.Errorf("the spinner paid %.0f credits per slot won, the reserve was %.0f..%.0f", perSlot, minReserve, maxReserve)
	}
	cpu := p.one(`rate(maxwell_agent_cpu_seconds_total`+w+`)`, "agent", "spinner")
	if !(cpu > 0.05) || cpu > 1.1 {
		t.Errorf("the spinner used %.2f CPU cores, want some and at most its one slot's", cpu)
	}

	// Tick latencies measured (a bound for sanity, not a speed target:
	// those are in the benchmarks), and ticks about 100 ms apart.
	p99 := p.one(`histogram_quantile(0.99, sum by (le) (rate(maxwell_tick_latency_seconds_bucket`+w+`)))`, "", "")
	interval := p.one(`histogram_quantile(0.5, sum by (le) (rate(maxwell_tick_interval_seconds_bucket`+w+`)))`, "", "")
	t.Logf("tick work p99 %.2f ms, interval p50 %.1f ms", p99*1e3, interval*1e3)
	if !(p99 > 0) || p99 > 1 {
		t.Errorf("tick work p99 %v s", p99)
	}
	if interval < 0.08 || interval > 0.2 {
		t.Errorf("tick interval p50 %v s, want about the 100 ms tick", interval)
	}
	for _, q := range []string{`maxwell_build_info`, `go_goroutines{job="maxwell"}`, `process_resident_memory_bytes{job="maxwell"}`,
		`maxwell_agent_info{agent="spinner", container_id="", cgroup=~"/mxd-[0-9-]+/spinner"}`, boxed} {
		if q == "" {
			continue
		}
		if res, err := p.query(q); err != nil || len(res) == 0 {
			all, _ := p.query(`maxwell_agent_info`)
			t.Logf("maxwell_agent_info: %v", all)
			t.Errorf("%s: %v %v", q, res, err)
		}
	}

	if info, err := p.query(`maxwell_agent_info`); err == nil {
		for _, s := range info {
			t.Logf("agent %s: backend %s, cgroup %q, container_id %q", s.Metric["agent"], s.Metric["backend"], s.Metric["cgroup"], s.Metric["container_id"])
		}
	}

	// A dead cell: Prometheus sees it dead, then, past the grace, its
	// series end (a staleness marker), while the living spinner's go on.
	if err := c.Kill(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	dead := `maxwell_agent_state{agent="victim", state="dead"} == 1`
	for start, seen := time.Now(), false; ; time.Sleep(250 * time.Millisecond) {
		res, err := p.query(dead)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) == 1 {
			seen = true
		}
		if seen && len(res) == 0 {
			t.Logf("the victim's series ended %.1f s after its kill", time.Since(start).Seconds())
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("10 s after the kill: the victim seen dead %v, its series still there %v", seen, res)
		}
	}
	if res, err := p.query(`maxwell_agent_balance_credits{agent="spinner"}`); err != nil || len(res) != 1 {
		t.Errorf("the living spinner's balance: %v %v", res, err)
	}
	if v := p.one(`maxwell_agents{state="dead"}`, "", ""); v != 1 {
		t.Errorf("maxwell_agents{state=\"dead\"} = %v, want 1: the dead still count", v)
	}

	// Every panel of the dashboard answers.
	raw, err := os.ReadFile("../../docs/grafana/maxwell.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$job", ".*", "$instance", ".*", "$agent", ".*", "$__rate_interval", "10s", "$__range", "1m")
	answered := 0
	for _, panel := range dash.Panels {
		for _, tg := range panel.Targets {
			q := vars.Replace(tg.Expr)
			res, err := p.query(q)
			switch {
			case err != nil:
				t.Errorf("panel %q: %v", panel.Title, err)
			case len(res) == 0:
				t.Errorf("panel %q: %s returns no data", panel.Title, q)
			default:
				answered++
			}
		}
	}
	t.Logf("%d dashboard queries answered with data", answered)
}
