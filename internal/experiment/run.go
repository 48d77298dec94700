// Package experiment runs Maxwell's experiments on an economy the way an
// operator would use one: it spawns the agents through the economy's
// operations, watches its state and events at a fixed interval, records
// everything in a run directory, and kills what is left when the time is
// up. The economy decides who runs (under engine.PolicyMaxwell, the
// auction; under engine.PolicyCFS, nothing: the baseline); the recorder
// only watches, so both are measured by the same code.
package experiment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Economy is what a run needs of an economy: an operator's operations.
// *economy.Economy is one.
type Economy interface {
	Spawn(ctx context.Context, req api.SpawnRequest) (api.CellInfo, error)
	Kill(ctx context.Context, name string) error
	State(ctx context.Context) (api.State, error)
	Watch(ctx context.Context) <-chan event.Event
	Sources() economy.Sources
}

// Run is one experiment run: what to spawn and how to watch it.
type Run struct {
	Kind     string // recorded in meta.json and the summary, e.g. "baseline"
	Duration time.Duration
	Interval time.Duration
	// CPUs are the CPUs the economy sells (recorded; the shares are of
	// their capacity).
	CPUs []int
	// Agents are spawned in this order, each with a Name.
	Agents []api.SpawnRequest
	// ConnectTimeout is how long an agent has to report before the run
	// records that it never did.
	ConnectTimeout time.Duration
	Dir            string // run directory, created; it must not hold a run yet
	// Clock must be the economy's: events are timed by it.
	Clock clock.Clock
	Log   *slog.Logger
	// OnEvent, if set, sees every event as it is recorded.
	OnEvent func(record.Event)
}

func (r *Run) validate() error {
	switch {
	case r.Duration <= 0:
		return fmt.Errorf("run duration %v must be positive", r.Duration)
	case r.Interval <= 0:
		return fmt.Errorf("sample interval %v must be positive", r.Interval)
	case len(r.CPUs) == 0:
		return errors.New("run needs at least one CPU")
	case len(r.Agents) == 0:
		return errors.New("run needs at least one agent")
	case r.Clock == nil:
		return errors.New("run has no clock")
	}
	for _, a := range r.Agents {
		if a.Name == "" {
			return errors.New("every agent of a run needs a name")
		}
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// watched is what the run tracks about one agent between samples.
type watched struct {
	name   string
	cpu    time.Duration
	heard  bool
	silent bool
	dead   bool
}

// Execute spawns the agents on econ, samples the economy's state every
// Interval until the duration is over, ctx is cancelled or every agent has
// died, kills the agents still alive and writes the summary. Whatever
// happens, the run directory keeps every sample taken.
func (r *Run) Execute(ctx context.Context, econ Economy) (record.Summary, error) {
	if err := r.validate(); err != nil {
		return record.Summary{}, err
	}
	st0, err := econ.State(ctx)
	if err != nil {
		return record.Summary{}, fmt.Errorf("economy state at start: %w", err)
	}
	src := econ.Sources()
	// The run's clock starts before the agents do: the first interval
	// covers their launch, and every elapsed time shares one origin.
	start := r.Clock.Now()
	ticker := r.Clock.NewTicker(r.Interval)
	defer ticker.Stop()
	deadline := r.Clock.NewTimer(r.Duration)
	defer deadline.Stop()
	meta := record.Meta{Kind: r.Kind, Started: start.UTC(), CPUs: r.CPUs, SampleInterval: record.Duration(r.Interval),
		EnergySource: src.Energy, TempSource: src.Temperature, IdlePower: src.IdlePower, Setpoint: units.Celsius(st0.Temperature.Setpoint)}
	for _, a := range r.Agents {
		meta.Agents = append(meta.Agents, record.AgentMeta{Name: a.Name, Command: a.Argv})
	}
	w, err := record.Create(r.Dir, meta)
	if err != nil {
		return record.Summary{}, err
	}
	note := func(e event.Event) {
		re := record.Event{Elapsed: record.Duration(e.Time.Sub(start)), Kind: e.Kind, Cell: e.Cell, Detail: e.Detail}
		if err := w.Event(re); err != nil {
			r.Log.Error("record event", "err", err)
		}
		if r.OnEvent != nil {
			r.OnEvent(re)
		}
	}
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	events := econ.Watch(watchCtx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range events {
			note(e)
		}
	}()
	finish := func(runErr error) (record.Summary, error) {
		stopWatch()
		wg.Wait()
		sum, err := w.Close()
		return sum, errors.Join(runErr, err)
	}

	note(event.Event{Time: start, Kind: event.Started, Detail: fmt.Sprintf("%s run of %v on CPUs %s: energy %s, temperature %s; Landauer meter %s",
		r.Kind, r.Duration, cpuset.Format(r.CPUs), src.Energy, src.Temperature, src.Meter)})
	agents := make([]*watched, 0, len(r.Agents))
	for _, a := range r.Agents {
		if _, err := econ.Spawn(ctx, a); err != nil {
			r.killAll(econ, agents)
			return finish(fmt.Errorf("spawn agent %s: %w", a.Name, err))
		}
		agents = append(agents, &watched{name: a.Name})
	}
	s := sampler{r: r, econ: econ, w: w, agents: agents, start: start, prev: st0, prevAt: start,
		e0: units.EnergyFromJoules(st0.EnergyJoules), note: func(k event.Kind, cell, detail string) {
			note(event.Event{Time: r.Clock.Now(), Kind: k, Cell: cell, Detail: detail})
		}}
	sampleErr := s.loop(ctx, ticker, deadline)
	r.killAll(econ, agents)
	return finish(sampleErr)
}

// killAll kills the run's agents that are still alive.
func (r *Run) killAll(econ Economy, agents []*watched) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := econ.State(ctx)
	if err != nil {
		r.Log.Warn("economy state at the end of the run", "err", err)
	}
	for _, a := range agents {
		if c, ok := cellIn(st, a.name); ok && c.State == life.Dead {
			continue
		}
		if err := econ.Kill(ctx, a.name); err != nil && !errors.Is(err, api.ErrConflict) {
			r.Log.Warn("kill agent at the end of the run", "cell", a.name, "err", err)
		}
	}
}

func cellIn(st api.State, name string) (api.Cell, bool) {
	for _, c := range st.Cells {
		if c.Name == name {
			return c, true
		}
	}
	return api.Cell{}, false
}

// sampler turns the economy's state into the run's samples.
type sampler struct {
	r      *Run
	econ   Economy
	w      *record.Writer
	agents []*watched
	start  time.Time
	prev   api.State
	prevAt time.Time
	e0     units.Energy
	temp   units.Celsius // the last good temperature
	note   func(k event.Kind, cell, detail string)
}

// loop samples at every tick until the deadline or the run ends.
func (s *sampler) loop(ctx context.Context, ticker clock.Ticker, deadline clock.Timer) error {
	r := s.r
	for {
		select {
		case <-ctx.Done():
			s.note(event.RunInterrupted, "", context.Cause(ctx).Error())
			return s.sample(context.WithoutCancel(ctx))
		case <-deadline.Chan():
			return s.sample(ctx)
		case <-ticker.Chan():
			// A tick that lands at the deadline is the last sample; the
			// deadline timer then has nothing left to add.
			if r.Clock.Now().Sub(s.start) >= r.Duration-r.Interval/4 {
				return s.sample(ctx)
			}
			if err := s.sample(ctx); err != nil {
				return err
			}
			if s.allDead() {
				s.note(event.RunEnded, "", "every agent has ended")
				return nil
			}
		}
	}
}

func (s *sampler) allDead() bool {
	for _, a := range s.agents {
		if !a.dead {
			return false
		}
	}
	return true
}

// sample records the economy's state now.
func (s *sampler) sample(ctx context.Context) error {
	st, err := s.econ.State(ctx)
	if err != nil {
		return fmt.Errorf("economy state: %w", err)
	}
	now := s.r.Clock.Now()
	dt := now.Sub(s.prevAt)
	capacity := dt.Seconds() * float64(len(s.r.CPUs))
	energy := units.EnergyFromJoules(st.EnergyJoules)
	if st.Temperature.Error == "" {
		s.temp = units.Celsius(st.Temperature.Celsius)
	}
	smp := record.Sample{Elapsed: now.Sub(s.start), Host: record.HostSample{
		Temperature: s.temp, // a failed reading keeps the last good one
		Energy:      energy - min(s.e0, energy),
	}}
	if dt > 0 {
		smp.Host.Power = units.AveragePower(units.EnergyFromJoules(st.EnergyJoules-s.prev.EnergyJoules), dt)
		if capacity > 0 {
			smp.Host.Utilisation = min(1, max(0, (st.BusyCPUSeconds-s.prev.BusyCPUSeconds)/capacity))
		}
	}
	for _, a := range s.agents {
		c, ok := cellIn(st, a.name)
		if !ok {
			continue
		}
		cpu := time.Duration(c.CPUSeconds * float64(time.Second))
		cs := record.CellSample{Cell: a.name, CPUTime: cpu, Energy: units.EnergyFromJoules(c.Energy),
			MemoryBytes: c.MemoryBytes, Counters: c.Counters}
		if capacity > 0 {
			cs.CPUShare = min(1, max(0, (cpu-a.cpu).Seconds()/capacity))
		}
		if c.Useful != nil {
			cs.UsefulCounter, cs.UsefulUnit = c.Useful.Counter, c.Useful.Unit
		}
		a.cpu = cpu
		a.dead = c.State == life.Dead
		if c.Counters != nil && !a.heard {
			a.heard = true
			s.note(event.AgentReporting, a.name, "first counters received")
		}
		if c.Counters == nil && !a.heard && !a.silent && smp.Elapsed >= s.r.ConnectTimeout {
			a.silent = true
			s.note(event.AgentSilent, a.name, fmt.Sprintf("no report within %v; its work counters stay empty", s.r.ConnectTimeout))
		}
		smp.Cells = append(smp.Cells, cs)
		if st.Policy == string(engine.PolicyMaxwell) {
			smp.Wallets = append(smp.Wallets, record.WalletSample{Cell: a.name, Balance: c.Balance, State: c.State, Paid: c.Paid, Tax: c.Tax})
		}
	}
	if st.Policy == string(engine.PolicyMaxwell) && st.Tick > 0 {
		smp.Market = &record.MarketSample{Tick: st.Tick, Multiplier: st.Multiplier, Reserve: st.Reserve, Clearing: st.Clearing, FailSafe: st.FailSafe}
	}
	s.prev, s.prevAt = st, now
	return s.w.Write(smp)
}
