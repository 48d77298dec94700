package record

import (
	"slices"

	"github.com/maxwellhq/maxwell/internal/event"

	"math"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Run is a whole run: its metadata, samples and events.
type Run struct {
	Meta    Meta
	Samples []Sample
	Events  []Event
}

// Summary is the result of a run, as written to summary.json.
type Summary struct {
	Kind            string  `json:"kind"`
	DurationSeconds float64 `json:"duration_seconds"`
	Samples         int     `json:"samples"`
	// EnergyJoules is the host energy spent over the run.
	EnergyJoules float64 `json:"energy_joules"`
	// EnergySource is "measured" or "estimated".
	EnergySource string `json:"energy_source"`
	// EnergySourceDetail names the sensor or model.
	EnergySourceDetail string `json:"energy_source_detail"`
	// DynamicEnergyJoules is the energy above the host's idle power, present
	// only where idle power is known.
	DynamicEnergyJoules *float64 `json:"dynamic_energy_joules,omitempty"`
	IdlePowerWatts      float64  `json:"idle_power_watts,omitempty"`
	MeanPowerWatts      float64  `json:"power_mean_watts"`
	// Useful is the run's useful work: for each unit some agent declared
	// its useful work in (see AgentSummary.Useful), the total over those
	// agents and that total per joule of host energy. Agents that declared
	// nothing did no useful work as far as the run's scores go.
	Useful []UsefulWork `json:"useful"`
	// TemperatureSource is "measured" or "estimated".
	TemperatureSource       string  `json:"temperature_source"`
	TemperatureSourceDetail string  `json:"temperature_source_detail"`
	TemperatureMeanCelsius  float64 `json:"temperature_mean_celsius"`
	TemperatureMaxCelsius   float64 `json:"temperature_max_celsius"`
	// Agents are in the order of their first appearance in the samples.
	Agents []AgentSummary `json:"agents"`
	Events int            `json:"events"`
}

// AgentSummary is one agent's share of a run.
type AgentSummary struct {
	Name string `json:"name"`
	// CPUShare is the agent's CPU time over the capacity of the run's CPUs
	// for the run's duration, in [0, 1].
	CPUShare     float64 `json:"cpu_share"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	EnergyJoules float64 `json:"energy_joules"`
	// Counters are the agent's last reported work counters.
	Counters map[string]uint64 `json:"counters"`
	// Useful is the agent's useful work, if it declared a counter for it.
	Useful *AgentUseful `json:"useful,omitempty"`
	// Wallet is the agent's last wallet figures, in runs under the economy.
	Wallet *WalletSample `json:"wallet,omitempty"`
	// DiedAtSeconds is when the agent's apoptosis happened, if it did.
	DiedAtSeconds *float64 `json:"died_at_seconds,omitempty"`
}

// AgentUseful is one agent's useful work: the counter it declared, its unit
// (the counter's name where the agent gave none) and the counter's last
// value.
type AgentUseful struct {
	Counter string `json:"counter"`
	Unit    string `json:"unit"`
	Work    uint64 `json:"work"`
}

// UsefulWork is a run's useful work in one unit.
type UsefulWork struct {
	Unit string `json:"unit"`
	// Agents are the agents whose work is counted, in summary order.
	Agents   []string `json:"agents"`
	Work     uint64   `json:"work"`
	PerJoule float64  `json:"per_joule"`
	// PerDynamicJoule is Work per joule above idle, where idle is known.
	PerDynamicJoule *float64 `json:"per_dynamic_joule,omitempty"`
}

// UsefulIn returns the run's useful work in unit, and whether there was
// any.
func (s Summary) UsefulIn(unit string) (UsefulWork, bool) {
	for _, u := range s.Useful {
		if u.Unit == unit {
			return u, true
		}
	}
	return UsefulWork{}, false
}

// Summarize computes a run's summary from its samples. It is a pure
// function of its input, so the summary can be recomputed from the files of
// a run directory.
func Summarize(r Run) Summary {
	s := Summary{
		Kind:                    r.Meta.Kind,
		Samples:                 len(r.Samples),
		EnergySource:            r.Meta.EnergySource.Label(),
		EnergySourceDetail:      r.Meta.EnergySource.String(),
		TemperatureSource:       r.Meta.TempSource.Label(),
		TemperatureSourceDetail: r.Meta.TempSource.String(),
		Events:                  len(r.Events),
		Agents:                  []AgentSummary{},
		Useful:                  []UsefulWork{},
	}
	if len(r.Samples) == 0 {
		return s
	}
	last := r.Samples[len(r.Samples)-1]
	dur := last.Elapsed
	s.DurationSeconds = dur.Seconds()
	s.EnergyJoules = last.Host.Energy.Joules()
	if dur > 0 {
		s.MeanPowerWatts = float64(units.AveragePower(last.Host.Energy, dur))
	}

	var sumT float64
	s.TemperatureMaxCelsius = math.Inf(-1)
	for _, smp := range r.Samples {
		t := float64(smp.Host.Temperature)
		sumT += t
		s.TemperatureMaxCelsius = math.Max(s.TemperatureMaxCelsius, t)
	}
	s.TemperatureMeanCelsius = sumT / float64(len(r.Samples))

	// The last sample a cell appears in holds its final cumulative figures;
	// a cell that died early keeps its last values.
	index := map[string]int{}
	for _, smp := range r.Samples {
		for _, c := range smp.Cells {
			i, ok := index[c.Cell]
			if !ok {
				i = len(s.Agents)
				index[c.Cell] = i
				s.Agents = append(s.Agents, AgentSummary{Name: c.Cell})
			}
			a := &s.Agents[i]
			a.CPUSeconds = c.CPUTime.Seconds()
			a.EnergyJoules = c.Energy.Joules()
			a.Counters = copyCounters(c.Counters)
			if c.UsefulCounter != "" {
				unit := c.UsefulUnit
				if unit == "" {
					unit = c.UsefulCounter
				}
				a.Useful = &AgentUseful{Counter: c.UsefulCounter, Unit: unit, Work: c.Counters[c.UsefulCounter]}
			}
		}
	}
	for _, smp := range r.Samples {
		for _, w := range smp.Wallets {
			if i, ok := index[w.Cell]; ok {
				w := w
				s.Agents[i].Wallet = &w
			}
		}
	}
	for _, e := range r.Events {
		if i, ok := index[e.Cell]; ok && e.Kind == event.Apoptosis && s.Agents[i].DiedAtSeconds == nil {
			at := time.Duration(e.Elapsed).Seconds()
			s.Agents[i].DiedAtSeconds = &at
		}
	}
	capacity := dur.Seconds() * float64(max(len(r.Meta.CPUs), 1))
	for i := range s.Agents {
		a := &s.Agents[i]
		if capacity > 0 {
			a.CPUShare = a.CPUSeconds / capacity
		}
		if a.Useful != nil {
			j := slices.IndexFunc(s.Useful, func(u UsefulWork) bool { return u.Unit == a.Useful.Unit })
			if j < 0 {
				j = len(s.Useful)
				s.Useful = append(s.Useful, UsefulWork{Unit: a.Useful.Unit})
			}
			s.Useful[j].Agents = append(s.Useful[j].Agents, a.Name)
			s.Useful[j].Work += a.Useful.Work
		}
	}
	var dyn float64
	if r.Meta.IdlePower > 0 {
		s.IdlePowerWatts = float64(r.Meta.IdlePower)
		dyn = math.Max(0, s.EnergyJoules-float64(r.Meta.IdlePower)*dur.Seconds())
		s.DynamicEnergyJoules = &dyn
	}
	for i := range s.Useful {
		u := &s.Useful[i]
		if s.EnergyJoules > 0 {
			u.PerJoule = float64(u.Work) / s.EnergyJoules
		}
		if dyn > 0 {
			v := float64(u.Work) / dyn
			u.PerDynamicJoule = &v
		}
	}
	return s
}

func copyCounters(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Estimated reports whether any figure of the summary is a model estimate.
func (s Summary) Estimated() bool {
	return s.EnergySource == "estimated" || s.TemperatureSource == "estimated"
}
