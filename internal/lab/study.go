package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/plot"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/scenario"
	"github.com/maxwellhq/maxwell/internal/units"
	"github.com/maxwellhq/maxwell/internal/workload"
)

// StudyPolicy is a policy of a study: a scheduler, or the economy with one
// of its auction rules.
type StudyPolicy string

// The policies a study compares.
const (
	StudyCFS        StudyPolicy = "cfs"         // no control: the baseline
	StudyWeights    StudyPolicy = "weights"     // engine.PolicyWeights
	StudyThermalCap StudyPolicy = "thermal-cap" // engine.PolicyThermalCap
	StudyOracle     StudyPolicy = "oracle"      // engine.PolicyOracle: the upper bound
	StudyMaxwellGSP StudyPolicy = "maxwell-gsp" // the economy, GSP auction
	StudyMaxwellVCG StudyPolicy = "maxwell-vcg" // the economy, VCG auction
	// StudyAlone is a reference, not a policy: the useful agents alone
	// under cfs, without the others (their throughput and latency when
	// nothing competes).
	StudyAlone StudyPolicy = "alone"
)

// StudyPolicies lists the policies a study compares by default, in the
// order it runs them.
var StudyPolicies = []StudyPolicy{StudyCFS, StudyWeights, StudyThermalCap, StudyOracle, StudyMaxwellGSP, StudyMaxwellVCG}

// ParseStudyPolicy parses a policy's name (StudyAlone included).
func ParseStudyPolicy(s string) (StudyPolicy, error) {
	if p := StudyPolicy(s); slices.Contains(StudyPolicies, p) || p == StudyAlone {
		return p, nil
	}
	return "", fmt.Errorf("policy %q: want one of %v or %s", s, StudyPolicies, StudyAlone)
}

// engine returns the engine policy and auction rule ("" keeps the
// configuration's) of p.
func (p StudyPolicy) engine() (engine.Policy, string) {
	switch p {
	case StudyWeights:
		return engine.PolicyWeights, ""
	case StudyThermalCap:
		return engine.PolicyThermalCap, ""
	case StudyOracle:
		return engine.PolicyOracle, ""
	case StudyMaxwellGSP:
		return engine.PolicyMaxwell, "gsp"
	case StudyMaxwellVCG:
		return engine.PolicyMaxwell, "vcg"
	}
	return engine.PolicyCFS, ""
}

// StudyOptions configure Study.
type StudyOptions struct {
	Scenarios []scenario.Scenario
	// Policies are run on every scenario; nil means StudyPolicies.
	Policies []StudyPolicy
	// Repeats is how many times each run is made (1 or more),
	// interleaved: every policy once, then every policy again in the
	// opposite order (ABC CBA …), so that a drift of the host cancels.
	Repeats int
	// Duration overrides each scenario's; 0 keeps it (60 s where the
	// scenario gives none).
	Duration time.Duration
	Dir      string
	// Progress hears a line per run.
	Progress io.Writer
}

// RunFigures are one run's figures, as MeasureRun reads them from its
// directory.
type RunFigures struct {
	Dir    string `json:"dir"`
	Repeat int    `json:"repeat"`
	// Useful is the useful agents' work in Unit, and its rates per joule
	// of host energy (total, and above idle where idle is known). Unit is
	// that of the scenario's first useful agent; useful agents that work
	// in other units are counted in Other, by counter, not summed with
	// it.
	Useful          float64            `json:"useful"`
	Unit            string             `json:"unit"`
	Other           map[string]float64 `json:"other_useful,omitempty"`
	EnergyJoules    float64            `json:"energy_joules"`
	DynamicJoules   *float64           `json:"dynamic_energy_joules,omitempty"`
	EnergySource    string             `json:"energy_source"`
	UsefulPerJoule  float64            `json:"useful_per_joule"`
	UsefulPerDynJ   *float64           `json:"useful_per_dynamic_joule,omitempty"`
	TempMeanCelsius float64            `json:"temperature_mean_celsius"`
	TempMaxCelsius  float64            `json:"temperature_max_celsius"`
	// AboveShare is the share of the samples above the setpoint + 1 K.
	AboveShare float64 `json:"above_setpoint_share"`
	// Apoptoses are when cells died of insolvency, in seconds from the
	// start; FalseApoptoses counts the useful ones among them.
	Apoptoses      map[string]float64 `json:"apoptoses_seconds,omitempty"`
	FalseApoptoses int                `json:"false_apoptoses"`
	// ServiceP99Micros is the worst p99 latency of the useful services
	// (an upper bound: the histogram's bucket), if any ran.
	ServiceP99Micros *float64 `json:"service_p99_us,omitempty"`
	// UsefulCPUShare is the useful agents' share of the CPUs.
	UsefulCPUShare float64 `json:"useful_cpu_share"`
}

// Stat is a figure over repeats: the median and the spread (min–max), and
// a 95 % interval of the mean where there are 5 runs or more.
type Stat struct {
	N      int         `json:"n"`
	Median float64     `json:"median"`
	Min    float64     `json:"min"`
	Max    float64     `json:"max"`
	CI95   *[2]float64 `json:"ci95,omitempty"`
}

// PolicyFigures are one policy's runs on a scenario and their statistics.
type PolicyFigures struct {
	Policy         StudyPolicy     `json:"policy"`
	Runs           []RunFigures    `json:"runs"`
	UsefulPerJoule Stat            `json:"useful_per_joule"`
	UsefulPerDynJ  *Stat           `json:"useful_per_dynamic_joule,omitempty"`
	TempMean       Stat            `json:"temperature_mean_celsius"`
	TempMax        Stat            `json:"temperature_max_celsius"`
	AboveShare     Stat            `json:"above_setpoint_share"`
	FalseApoptoses Stat            `json:"false_apoptoses"`
	ServiceP99     *Stat           `json:"service_p99_us,omitempty"`
	Apoptoses      map[string]Stat `json:"apoptoses_seconds,omitempty"`
	// VsCFS and VsOracle are the median useful work per joule over the
	// cfs's and the oracle's, where both ran.
	VsCFS    *float64 `json:"vs_cfs,omitempty"`
	VsOracle *float64 `json:"vs_oracle,omitempty"`
}

// ScenarioFigures are a scenario's policies.
type ScenarioFigures struct {
	Name            string          `json:"name"`
	Description     string          `json:"description"`
	DurationSeconds float64         `json:"duration_seconds"`
	CPUs            int             `json:"cpus"`
	SetpointCelsius float64         `json:"setpoint_celsius"`
	Unit            string          `json:"unit"`
	Policies        []PolicyFigures `json:"policies"`
	// Bound is the analytic bound of any policy's useful work per joule
	// over cfs's on this host: 1 / the useful agents' CPU share under cfs
	// (every CPU-second given to useful work, at the same energy per
	// CPU-second), where cfs ran.
	Bound *float64 `json:"bound_vs_cfs,omitempty"`
	Plot  string   `json:"plot,omitempty"`
}

// StudyResult is what `maxwell study --json` prints and study.json holds.
type StudyResult struct {
	Repeats   int               `json:"repeats"`
	Scenarios []ScenarioFigures `json:"scenarios"`
}

// Study runs every scenario under every policy, Repeats times,
// interleaved, each run in a directory of its own under o.Dir
// (SCENARIO/POLICY-R), and summarises them: study.json, and one plot per
// scenario (SCENARIO.png).
func (env Env) Study(ctx context.Context, o StudyOptions) (StudyResult, error) {
	res := StudyResult{Repeats: o.Repeats}
	if o.Repeats < 1 {
		return res, fmt.Errorf("study: %d repeats: want 1 or more", o.Repeats)
	}
	if len(o.Scenarios) == 0 {
		return res, errors.New("study: no scenario")
	}
	policies := o.Policies
	if len(policies) == 0 {
		policies = StudyPolicies
	}
	for _, sc := range o.Scenarios {
		d := o.Duration
		if d == 0 {
			d = sc.Duration
		}
		if d == 0 {
			d = 60 * time.Second
		}
		senv, err := env.forScenario(sc)
		if err != nil {
			return res, err
		}
		sf := ScenarioFigures{Name: sc.Name, Description: sc.Description, DurationSeconds: d.Seconds(), CPUs: len(senv.CPUs),
			SetpointCelsius: senv.Config.Engine.SetpointCelsius}
		runs := make(map[StudyPolicy][]RunFigures)
		for r := range o.Repeats {
			order := slices.Clone(policies)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, p := range order {
				dir := filepath.Join(o.Dir, sc.Name, string(p)+"-"+strconv.Itoa(r+1))
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "study: %s under %s, run %d of %d (%v)\n", sc.Name, p, r+1, o.Repeats, d)
				}
				if err := senv.studyRun(ctx, sc, p, d, dir); err != nil {
					return res, fmt.Errorf("study: %s under %s, run %d: %w", sc.Name, p, r+1, err)
				}
				f, err := MeasureRun(dir, sc, senv.Config.Engine.SetpointCelsius)
				if err != nil {
					return res, err
				}
				f.Repeat = r + 1
				runs[p] = append(runs[p], f)
			}
		}
		for _, p := range policies {
			sf.Policies = append(sf.Policies, policyFigures(p, runs[p]))
			if sf.Unit == "" && len(runs[p]) > 0 {
				sf.Unit = runs[p][0].Unit
			}
		}
		sf.ratios()
		if sf.Plot, err = sf.plot(o.Dir); err != nil {
			return res, err
		}
		res.Scenarios = append(res.Scenarios, sf)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return res, err
	}
	return res, os.WriteFile(filepath.Join(o.Dir, "study.json"), append(b, '\n'), 0o644)
}

// forScenario is env with the scenario's CPUs and thermal limit.
func (env Env) forScenario(sc scenario.Scenario) (Env, error) {
	if sc.CPUs > 0 {
		if sc.CPUs > len(env.CPUs) {
			return env, fmt.Errorf("study: %s wants %d CPUs, this run may use %d (%v)", sc.Name, sc.CPUs, len(env.CPUs), env.CPUs)
		}
		env.CPUs = env.CPUs[:sc.CPUs]
	}
	if t := sc.Thermal.SetpointCelsius; t > 0 {
		env.Config.Engine.SetpointCelsius = t
	}
	if t := sc.Thermal.CriticalCelsius; t > 0 {
		env.Config.Engine.CriticalCelsius = t
	}
	if err := env.Config.Validate(); err != nil {
		return env, fmt.Errorf("study: %s: %w", sc.Name, err)
	}
	return env, nil
}

// studyRun makes one run of sc under p.
func (env Env) studyRun(ctx context.Context, sc scenario.Scenario, p StudyPolicy, d time.Duration, dir string) error {
	pol, rule := p.engine()
	if rule != "" {
		env.Config.Engine.Rule = rule
	}
	agents, err := env.scenarioAgents(sc, pol == engine.PolicyMaxwell, d)
	if err != nil {
		return err
	}
	if p == StudyAlone {
		useful := sc.Useful()
		agents = slices.DeleteFunc(agents, func(r api.SpawnRequest) bool { _, ok := useful[r.Name]; return !ok })
	}
	_, err = env.run(ctx, runSpec{kind: string(p), policy: pol, parasites: sc.Parasites(), agents: agents, duration: d, dir: dir})
	return err
}

// scenarioAgents turns sc's cells into spawn requests: the built-in
// workloads run as `maxwell agent …`, bidding by their strategy when the
// economy runs an auction (bidding); a command runs as given.
func (env Env) scenarioAgents(sc scenario.Scenario, bidding bool, d time.Duration) ([]api.SpawnRequest, error) {
	slot := economy.SlotEnergy(env.Config)
	endow := economy.DemoEndowment(env.Config, len(env.CPUs), d)
	var out []api.SpawnRequest
	for _, c := range sc.Cells() {
		a := c.Agent
		f := strconv.FormatFloat
		var argv []string
		multipleFlag := "--valuation"
		switch a.Workload {
		case scenario.Scientist:
			argv = []string{env.Exe, "agent", "scientist"}
		case scenario.Miner:
			argv = []string{env.Exe, "agent", "miner", "--churn-mib-per-sec", f(a.ChurnMiBPerSec, 'f', -1, 64)}
			multipleFlag = "--greed"
		case scenario.Service:
			argv = []string{env.Exe, "agent", "service"}
			if a.Rate > 0 {
				argv = append(argv, "--rate", strconv.Itoa(a.Rate))
			}
		case scenario.Sort:
			argv = []string{env.Exe, "agent", "sort"}
			if a.RunMiB > 0 {
				argv = append(argv, "--run-mib", strconv.Itoa(a.RunMiB))
			}
		case scenario.Command:
			argv = slices.Clone(a.Command)
		}
		if a.Workload != scenario.Command {
			argv = append(argv, "--threads", strconv.Itoa(a.Threads))
			if bidding && a.Strategy != scenario.None {
				argv = append(argv, "--bidding", "--strategy", string(a.Strategy), multipleFlag, f(a.Multiple, 'f', -1, 64))
			}
		}
		req := api.SpawnRequest{Name: c.Name, Argv: argv, Wallet: units.Credits(a.EndowmentCredits),
			TapRate: units.Credits(a.Tap.CreditsPerSecond), TapCap: units.Credits(a.Tap.CapCredits)}
		if req.Wallet == 0 {
			req.Wallet = endow
		}
		if a.StandingBid > 0 {
			req.MaxBid, req.Units = units.Credits(a.StandingBid*float64(slot)), 1
		}
		if a.Income != nil {
			req.Income = &api.Income{Counter: workload.CounterPrimes, CreditsPerUnit: a.Income.CreditsPerUnit}
		}
		if err := req.Validate(); err != nil {
			return nil, fmt.Errorf("study: %s: agent %s: %w", sc.Name, c.Name, err)
		}
		out = append(out, req)
	}
	return out, nil
}

// MeasureRun reads a study run's figures from its directory: the useful
// work is the last count of each useful cell's useful counter (as sc says
// which are useful), the temperature's samples are compared with
// setpoint + 1 K, and the deaths are the summary's. A test checks a
// study.json against its run directories with it.
func MeasureRun(dir string, sc scenario.Scenario, setpoint float64) (RunFigures, error) {
	run, err := record.ReadRun(dir)
	if err != nil {
		return RunFigures{}, fmt.Errorf("study: %w", err)
	}
	sum := record.Summarize(run)
	f := RunFigures{Dir: dir, EnergyJoules: sum.EnergyJoules, DynamicJoules: sum.DynamicEnergyJoules, EnergySource: sum.EnergySource,
		TempMeanCelsius: sum.TemperatureMeanCelsius, TempMaxCelsius: sum.TemperatureMaxCelsius}
	useful := sc.Useful()
	main := ""
	for _, c := range sc.Cells() {
		if counter, ok := useful[c.Name]; ok {
			main = counter
			break
		}
	}
	for _, a := range sum.Agents {
		counter, isUseful := useful[a.Name]
		if a.DiedAtSeconds != nil {
			if f.Apoptoses == nil {
				f.Apoptoses = map[string]float64{}
			}
			f.Apoptoses[a.Name] = *a.DiedAtSeconds
			if isUseful {
				f.FalseApoptoses++
			}
		}
		if !isUseful {
			continue
		}
		f.UsefulCPUShare += a.CPUShare
		if counter != main {
			if f.Other == nil {
				f.Other = map[string]float64{}
			}
			f.Other[counter] += float64(a.Counters[counter])
		} else {
			f.Useful += float64(a.Counters[counter])
			if a.Useful != nil && f.Unit == "" {
				f.Unit = a.Useful.Unit
			}
		}
		if _, ok := a.Counters[workload.CounterLatencyLE+"inf"]; ok {
			if p99, err := workload.LatencyQuantile(a.Counters, 0.99); err == nil {
				v := float64(p99)
				if f.ServiceP99Micros == nil || v > *f.ServiceP99Micros {
					f.ServiceP99Micros = &v
				}
			}
		}
	}
	if f.Unit == "" {
		f.Unit = main // the agents never said their unit: the counter's name
	}
	if f.EnergyJoules > 0 {
		f.UsefulPerJoule = f.Useful / f.EnergyJoules
	}
	if f.DynamicJoules != nil && *f.DynamicJoules > 0 {
		v := f.Useful / *f.DynamicJoules
		f.UsefulPerDynJ = &v
	}
	above := 0
	for _, s := range run.Samples {
		if float64(s.Host.Temperature) > setpoint+1 {
			above++
		}
	}
	if len(run.Samples) > 0 {
		f.AboveShare = float64(above) / float64(len(run.Samples))
	}
	return f, nil
}

// policyFigures gathers a policy's runs into statistics.
func policyFigures(p StudyPolicy, runs []RunFigures) PolicyFigures {
	pf := PolicyFigures{Policy: p, Runs: runs}
	get := func(f func(RunFigures) float64) Stat {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		return stat(v)
	}
	pf.UsefulPerJoule = get(func(r RunFigures) float64 { return r.UsefulPerJoule })
	pf.TempMean = get(func(r RunFigures) float64 { return r.TempMeanCelsius })
	pf.TempMax = get(func(r RunFigures) float64 { return r.TempMaxCelsius })
	pf.AboveShare = get(func(r RunFigures) float64 { return r.AboveShare })
	pf.FalseApoptoses = get(func(r RunFigures) float64 { return float64(r.FalseApoptoses) })
	all := func(has func(RunFigures) bool) bool {
		for _, r := range runs {
			if !has(r) {
				return false
			}
		}
		return len(runs) > 0
	}
	if all(func(r RunFigures) bool { return r.UsefulPerDynJ != nil }) {
		s := get(func(r RunFigures) float64 { return *r.UsefulPerDynJ })
		pf.UsefulPerDynJ = &s
	}
	if all(func(r RunFigures) bool { return r.ServiceP99Micros != nil }) {
		s := get(func(r RunFigures) float64 { return *r.ServiceP99Micros })
		pf.ServiceP99 = &s
	}
	// Time to each apoptosis, over the runs in which it happened.
	deaths := map[string][]float64{}
	for _, r := range runs {
		for c, t := range r.Apoptoses {
			deaths[c] = append(deaths[c], t)
		}
	}
	for c, ts := range deaths {
		if pf.Apoptoses == nil {
			pf.Apoptoses = map[string]Stat{}
		}
		pf.Apoptoses[c] = stat(ts)
	}
	return pf
}

// ratios sets each policy's median useful work per joule over cfs's and
// the oracle's, and the bound.
func (sf *ScenarioFigures) ratios() {
	find := func(p StudyPolicy) *PolicyFigures {
		for i := range sf.Policies {
			if sf.Policies[i].Policy == p && len(sf.Policies[i].Runs) > 0 {
				return &sf.Policies[i]
			}
		}
		return nil
	}
	cfs, oracle := find(StudyCFS), find(StudyOracle)
	for i := range sf.Policies {
		pf := &sf.Policies[i]
		if cfs != nil && cfs.UsefulPerJoule.Median > 0 {
			v := pf.UsefulPerJoule.Median / cfs.UsefulPerJoule.Median
			pf.VsCFS = &v
		}
		if oracle != nil && oracle.UsefulPerJoule.Median > 0 {
			v := pf.UsefulPerJoule.Median / oracle.UsefulPerJoule.Median
			pf.VsOracle = &v
		}
	}
	if cfs != nil {
		shares := make([]float64, len(cfs.Runs))
		for i, r := range cfs.Runs {
			shares[i] = r.UsefulCPUShare
		}
		if s := stat(shares).Median; s > 0 {
			b := 1 / s
			sf.Bound = &b
		}
	}
}

// plot draws the scenario's figure into dir/NAME.png.
func (sf *ScenarioFigures) plot(dir string) (string, error) {
	var bars []plot.Bar
	estimated := false
	var cfsRate float64
	for _, pf := range sf.Policies {
		if len(pf.Runs) == 0 {
			continue
		}
		s := pf.UsefulPerJoule
		bars = append(bars, plot.Bar{Label: string(pf.Policy), Median: s.Median, Min: s.Min, Max: s.Max})
		estimated = estimated || pf.Runs[0].EnergySource == "estimated"
		if pf.Policy == StudyCFS {
			cfsRate = s.Median
		}
	}
	if len(bars) == 0 {
		return "", nil
	}
	var bound *float64
	if sf.Bound != nil && cfsRate > 0 {
		b := *sf.Bound * cfsRate
		bound = &b
	}
	caption := []string{fmt.Sprintf("%s: %s; %d CPUs, %.0f s a run, setpoint %.0f °C; bars: median of the runs, whiskers: lowest to highest",
		sf.Name, strings.TrimSuffix(sf.Description, "."), sf.CPUs, sf.DurationSeconds, sf.SetpointCelsius)}
	if estimated {
		caption = append(caption, "energy estimated: the linear utilisation power model (docs/BENCHMARKS.md names it); the bound assumes the same energy per CPU-second")
	}
	fig, err := plot.StudyFigure(sf.Name+".png", sf.Name+": "+sf.Unit+" per joule by policy", sf.Unit, bars, bound, estimated, caption)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fig.Name)
	fh, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := fig.WritePNG(fh); err != nil {
		fh.Close()
		return "", err
	}
	return path, fh.Close()
}

// stat summarises v: median, min, max, and a 95 % t interval of the mean
// for 5 values or more.
func stat(v []float64) Stat {
	s := Stat{N: len(v)}
	if len(v) == 0 {
		return s
	}
	w := slices.Clone(v)
	sort.Float64s(w)
	s.Min, s.Max = w[0], w[len(w)-1]
	if n := len(w); n%2 == 1 {
		s.Median = w[n/2]
	} else {
		s.Median = (w[n/2-1] + w[n/2]) / 2
	}
	if n := len(w); n >= 5 {
		var mean, ss float64
		for _, x := range w {
			mean += x
		}
		mean /= float64(n)
		for _, x := range w {
			ss += (x - mean) * (x - mean)
		}
		sd := math.Sqrt(ss / float64(n-1))
		h := tQuantile975(n-1) * sd / math.Sqrt(float64(n))
		s.CI95 = &[2]float64{mean - h, mean + h}
	}
	return s
}

// tQuantile975 is Student's t 0.975 quantile for df degrees of freedom.
func tQuantile975(df int) float64 {
	table := []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086}
	if df < len(table) {
		return table[df]
	}
	return 1.96 + 2.4/float64(df) // within 0.1 % of the table beyond 20
}

// latencySpread prints a p99 Stat in µs: a bucket's bound, or ">BOUND"
// where the quantile lies past the histogram's last bound (which
// workload.LatencyQuantile reports as twice it).
func latencySpread(s Stat) string {
	last := float64(workload.LatencyBounds[len(workload.LatencyBounds)-1])
	f := func(v float64) string {
		if v > last {
			return ">" + strconv.FormatFloat(last, 'f', -1, 64)
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	if s.N <= 1 || s.Min == s.Max {
		return f(s.Median)
	}
	return f(s.Median) + " [" + f(s.Min) + "–" + f(s.Max) + "]"
}

// WriteText prints the study for people: one table per scenario.
func (r StudyResult) WriteText(w io.Writer) error {
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
	spread := func(s Stat) string {
		if s.N <= 1 {
			return g(s.Median)
		}
		out := g(s.Median) + " [" + g(s.Min) + "–" + g(s.Max) + "]"
		if s.CI95 != nil {
			out += " ci95 " + g(s.CI95[0]) + "–" + g(s.CI95[1])
		}
		return out
	}
	ratio := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatFloat(*v, 'f', 2, 64) + "×"
	}
	for _, sf := range r.Scenarios {
		est := ""
		for _, pf := range sf.Policies {
			if len(pf.Runs) > 0 && pf.Runs[0].EnergySource == "estimated" {
				est = "; energy estimated (power model)"
			}
		}
		fmt.Fprintf(w, "\n%s: %s\n%d CPUs, %.0f s a run, %d run(s) per policy, setpoint %.0f °C%s\n",
			sf.Name, sf.Description, sf.CPUs, sf.DurationSeconds, r.Repeats, sf.SetpointCelsius, est)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "POLICY\t%s/J\t%s/J ABOVE IDLE\tVS CFS\tVS ORACLE\tT MEAN °C\tT MAX °C\t>SETPOINT+1K\tFALSE APOPTOSES\tAPOPTOSES (s)\tSERVICE P99 µs\n", sf.Unit, sf.Unit)
		for _, pf := range sf.Policies {
			dyn, p99 := "-", "-"
			if pf.UsefulPerDynJ != nil {
				dyn = spread(*pf.UsefulPerDynJ)
			}
			if pf.ServiceP99 != nil {
				p99 = latencySpread(*pf.ServiceP99)
			}
			var deaths []string
			for c, s := range pf.Apoptoses {
				deaths = append(deaths, fmt.Sprintf("%s %s (%d/%d)", c, g(s.Median), s.N, len(pf.Runs)))
			}
			sort.Strings(deaths)
			d := "-"
			if len(deaths) > 0 {
				d = strings.Join(deaths, ", ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t%.0f %%\t%s\t%s\t%s\n", pf.Policy, spread(pf.UsefulPerJoule), dyn,
				ratio(pf.VsCFS), ratio(pf.VsOracle), pf.TempMean.Median, pf.TempMax.Median, 100*pf.AboveShare.Median,
				g(pf.FalseApoptoses.Max), d, p99)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if sf.Bound != nil {
			fmt.Fprintf(w, "bound on this host: %.2f× cfs (1 / the useful agents' CPU share under cfs)\n", *sf.Bound)
		}
		if sf.Plot != "" {
			fmt.Fprintf(w, "plot: %s\n", sf.Plot)
		}
	}
	return nil
}
