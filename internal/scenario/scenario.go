// Package scenario reads experiments from YAML: which agents run (a
// built-in workload or any command), how they bid, what they are given and
// paid, which of them do useful work and which are parasites, for how long,
// on how many CPUs, under which thermal limit. A study (package lab) runs a
// scenario under each policy; docs/SCENARIOS.md documents the format, and
// the repository's scenarios/ folder holds the shipped ones.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/verify"
	"github.com/maxwellhq/maxwell/internal/workload"
	"github.com/maxwellhq/maxwell/scenarios"
)

// ErrInvalid is wrapped by every error about a scenario's content.
var ErrInvalid = errors.New("invalid scenario")

// Workload is what an agent runs.
type Workload string

// The workloads.
const (
	Scientist Workload = "scientist" // primes (checkable)
	Miner     Workload = "miner"     // hashes and memory churn
	Service   Workload = "service"   // HTTP under an open-loop load; latency
	Sort      Workload = "sort"      // sorting in memory freed per run
	Command   Workload = "command"   // any program (Agent.Command)
)

// Strategy is how an agent bids: workload.Prudent or workload.Greedy, or
// None (it bids nothing itself: a standing bid, if any, bids for it).
type Strategy = workload.StrategyKind

// None is an agent that does not bid itself.
const None Strategy = "none"

// Scenario is one experiment.
type Scenario struct {
	Name        string        `yaml:"name"`
	Description string        `yaml:"description"`
	Duration    time.Duration `yaml:"duration"`
	// CPUs is how many CPUs the agents share (the first of those the run
	// may use); 0 means all of them.
	CPUs    int     `yaml:"cpus"`
	Thermal Thermal `yaml:"thermal"`
	Agents  []Agent `yaml:"agents"`
}

// Thermal is the limit every policy but cfs holds; 0 keeps the
// configuration's.
type Thermal struct {
	SetpointCelsius float64 `yaml:"setpoint_celsius"`
	CriticalCelsius float64 `yaml:"critical_celsius"`
}

// Agent is one agent, or Count of them alike.
type Agent struct {
	// Name names the agent's cell; with Count > 1 the cells are
	// NAME-1 … NAME-COUNT.
	Name  string `yaml:"name"`
	Count int    `yaml:"count"`
	// Workload is what it runs; Command is the program for Command.
	Workload Workload `yaml:"workload"`
	Command  []string `yaml:"command"`
	// UsefulCounter names a command's useful counter (the built-in
	// workloads have theirs).
	UsefulCounter string `yaml:"useful_counter"`
	Threads       int    `yaml:"threads"`
	// Strategy and Multiple say how it bids: Multiple × a slot's energy.
	Strategy Strategy `yaml:"strategy"`
	Multiple float64  `yaml:"multiple"`
	// StandingBid, for an agent that does not bid itself, is a standing
	// bid the host makes for it, in multiples of a slot's energy.
	StandingBid float64 `yaml:"standing_bid"`
	// Workload settings: the Miner's churn, the Service's rate, the
	// Sorter's run size.
	ChurnMiBPerSec float64 `yaml:"churn_mib_per_sec"`
	Rate           int     `yaml:"rate"`
	RunMiB         int     `yaml:"run_mib"`
	// EndowmentCredits is its wallet; 0 means the run's default (enough
	// for every slot at twice the base price for the whole run).
	EndowmentCredits int64 `yaml:"endowment_credits"`
	Tap              Tap   `yaml:"tap"`
	// Income pays it per unit of its useful work, if the host can check
	// it (the Scientist's primes).
	Income *Income `yaml:"income"`
	// Useful counts its useful work in the study's tables (and its death
	// as a false apoptosis); Parasite tells the oracle never to run it.
	Useful   bool `yaml:"useful"`
	Parasite bool `yaml:"parasite"`
}

// Tap is income without work: credits per second below a cap.
type Tap struct {
	CreditsPerSecond int64 `yaml:"credits_per_second"`
	CapCredits       int64 `yaml:"cap_credits"`
}

// Income is pay per unit of useful work.
type Income struct {
	CreditsPerUnit float64 `yaml:"credits_per_unit"`
}

// Load reads the scenario file at path.
func Load(path string) (Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return Scenario{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse reads a scenario. Unknown keys are errors, so a misspelt setting
// is not silently a default.
func Parse(b []byte) (Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return Scenario{}, fmt.Errorf("%w: empty", ErrInvalid)
		}
		return Scenario{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := s.validate(); err != nil {
		return Scenario{}, err
	}
	return s, nil
}

// usefulCounter is each workload's useful counter ("" for none).
func (a Agent) usefulCounter() string {
	switch a.Workload {
	case Scientist:
		return workload.CounterPrimes
	case Service:
		return workload.CounterRequests
	case Sort:
		return workload.CounterRecordsSorted
	case Command:
		return a.UsefulCounter
	}
	return ""
}

func (s *Scenario) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	switch {
	case s.Name == "":
		return bad("name: required")
	case s.Duration < 0 || s.Duration > 24*time.Hour:
		return bad("duration %v: want 0 (the study's) up to 24h", s.Duration)
	case s.CPUs < 0 || s.CPUs > 4096:
		return bad("cpus %d: want 0 (all) to 4096", s.CPUs)
	case len(s.Agents) == 0:
		return bad("agents: at least one")
	}
	t := s.Thermal
	if t.SetpointCelsius < 0 || t.SetpointCelsius > 150 || t.CriticalCelsius < 0 || t.CriticalCelsius > 150 ||
		t.SetpointCelsius > 0 && t.CriticalCelsius > 0 && t.CriticalCelsius <= t.SetpointCelsius {
		return bad("thermal: setpoint %v °C and critical %v °C: want 0 (the configuration's) or 0 < setpoint < critical ≤ 150", t.SetpointCelsius, t.CriticalCelsius)
	}
	names := map[string]bool{}
	useful := false
	for i := range s.Agents {
		a := &s.Agents[i]
		at := fmt.Sprintf("agents[%d] (%s)", i, a.Name)
		if a.Count == 0 {
			a.Count = 1
		}
		if a.Strategy == "" {
			a.Strategy = map[Workload]Strategy{Miner: workload.Greedy, Command: None}[a.Workload]
			if a.Strategy == "" {
				a.Strategy = workload.Prudent
			}
		}
		if a.Multiple == 0 && a.Strategy != None {
			a.Multiple = workload.DefaultValuation
			if a.Strategy == workload.Greedy {
				a.Multiple = workload.DefaultGreed
			}
		}
		switch {
		case a.Count < 1 || a.Count > 256:
			return bad("%s: count %d: want 1 to 256", at, a.Count)
		case api.ValidName(a.Name) != nil || len(a.Name) > 50:
			return bad("%s: name: want 1 to 50 letters, digits, '.', '_' or '-'", at)
		case a.Workload != Scientist && a.Workload != Miner && a.Workload != Service && a.Workload != Sort && a.Workload != Command:
			return bad("%s: workload %q: want scientist, miner, service, sort or command", at, a.Workload)
		case a.Workload == Command && len(a.Command) == 0:
			return bad("%s: workload command needs command: [program, args…]", at)
		case a.Workload != Command && (len(a.Command) > 0 || a.UsefulCounter != ""):
			return bad("%s: command and useful_counter are only for workload: command", at)
		case a.Workload == Command && a.Useful && a.UsefulCounter == "":
			return bad("%s: a useful command needs useful_counter: the counter its agent reports its work in", at)
		case a.Threads < 0 || a.Threads > 256:
			return bad("%s: threads %d: want 0 (every CPU) to 256", at, a.Threads)
		case a.Strategy != workload.Prudent && a.Strategy != workload.Greedy && a.Strategy != None:
			return bad("%s: strategy %q: want prudent, greedy or none", at, a.Strategy)
		case a.Strategy == None && a.Multiple != 0:
			return bad("%s: multiple without a strategy that bids", at)
		case a.Workload == Command && a.Strategy != None:
			return bad("%s: a command does not speak the strategies: use standing_bid", at)
		case !finite(a.Multiple) || a.Multiple < 0 || a.Multiple > 1e6, !finite(a.StandingBid) || a.StandingBid < 0 || a.StandingBid > 1e6:
			return bad("%s: multiple and standing_bid: want 0 to 1e6", at)
		case a.StandingBid > 0 && a.Strategy != None:
			return bad("%s: standing_bid is for an agent that does not bid itself (strategy: none)", at)
		case a.ChurnMiBPerSec < 0 || a.ChurnMiBPerSec > 1<<16 || a.Rate < 0 || a.Rate > 100_000 || a.RunMiB < 0 || a.RunMiB > 1<<14:
			return bad("%s: churn_mib_per_sec, rate or run_mib out of range", at)
		case a.EndowmentCredits < 0 || a.Tap.CreditsPerSecond < 0 || a.Tap.CapCredits < 0:
			return bad("%s: endowment and tap must not be negative", at)
		case a.Useful && a.Parasite:
			return bad("%s: useful and parasite at once", at)
		}
		if a.Income != nil {
			if c := a.usefulCounter(); !verify.Checkable(c) {
				return bad("%s: income: the host cannot check %s's work (%q), so it earns nothing; only the Scientist's primes can be checked", at, a.Workload, c)
			}
			if !(a.Income.CreditsPerUnit > 0) || a.Income.CreditsPerUnit > 1e9 {
				return bad("%s: income.credits_per_unit %v: want (0, 1e9]", at, a.Income.CreditsPerUnit)
			}
		}
		for _, n := range a.names() {
			if names[n] {
				return bad("%s: two agents named %s", at, n)
			}
			names[n] = true
		}
		useful = useful || a.Useful
	}
	if !useful {
		return bad("agents: none is useful: a study compares useful work per Joule")
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// names are the cells the agent runs as.
func (a Agent) names() []string {
	if a.Count <= 1 {
		return []string{a.Name}
	}
	out := make([]string, a.Count)
	for i := range out {
		out[i] = a.Name + "-" + strconv.Itoa(i+1)
	}
	return out
}

// Cell is one cell of a scenario: an agent, or one of Count alike.
type Cell struct {
	Name  string
	Agent Agent
}

// Cells expands the agents into their cells, in order.
func (s Scenario) Cells() []Cell {
	var out []Cell
	for _, a := range s.Agents {
		for _, n := range a.names() {
			out = append(out, Cell{Name: n, Agent: a})
		}
	}
	return out
}

// Useful returns the useful cells' names and their useful counters.
func (s Scenario) Useful() map[string]string {
	out := map[string]string{}
	for _, c := range s.Cells() {
		if c.Agent.Useful {
			out[c.Name] = c.Agent.usefulCounter()
		}
	}
	return out
}

// Parasites returns the parasites' names.
func (s Scenario) Parasites() []string {
	var out []string
	for _, c := range s.Cells() {
		if c.Agent.Parasite {
			out = append(out, c.Name)
		}
	}
	return out
}

// Find returns the scenario a user names: a file (a path, or a name that
// is a file) or one of the shipped scenarios (package scenarios) by name.
func Find(arg string) (Scenario, error) {
	if _, err := os.Stat(arg); err == nil {
		return Load(arg)
	}
	b, err := scenarios.Read(arg)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario %q: no such file, and not one of the shipped scenarios %v", arg, scenarios.Names())
	}
	s, err := Parse(b)
	if err != nil {
		return Scenario{}, fmt.Errorf("shipped scenario %s: %w", arg, err)
	}
	return s, nil
}
