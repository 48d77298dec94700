// Package experiment runs Maxwell's experiments: it launches agents in
// cells, samples telemetry, cell statistics and agent counters at a fixed
// interval, and records everything in a run directory.
//
// The baseline is the control experiment: the Scientist and the Miner run
// under plain Linux scheduling, pinned to the same CPUs so that they
// compete, and nothing of Maxwell's economy acts on them.
package experiment

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Launcher starts cells. *cell.Manager is one.
type Launcher interface {
	Start(ctx context.Context, spec cell.Spec) (cell.Cell, error)
}

// CounterSource gives each cell's latest agent counters. *hub.Hub is one.
type CounterSource interface {
	Counters(cell string) (map[string]uint64, time.Time, bool)
}

// Utilisation gives the busy fraction of the run's CPUs since its previous
// call. *model.CPUSampler is one.
type Utilisation interface {
	Sample() (float64, error)
}

// Governor governs the cells while a run samples them: Maxwell's economy.
// A run without one is the baseline.
type Governor interface {
	// Govern acts on the cells until ctx ends, then leaves none of them
	// frozen. note records an event in the run.
	Govern(ctx context.Context, cells map[string]cell.Cell, note func(kind, cell, detail string)) error
	// Snapshot returns the economy's prices and wallets for the recorder.
	Snapshot() (*record.MarketSample, []record.WalletSample)
}

// AgentSpec is one agent to launch: its cell name and command line.
type AgentSpec struct {
	Name string
	Path string
	Args []string
	Env  []string
}

// Run is one experiment run: what to launch and how to measure it.
type Run struct {
	Kind     string // recorded in meta.json and the summary, e.g. "baseline"
	Duration time.Duration
	Interval time.Duration
	// CPUs are the CPUs every agent is pinned to.
	CPUs   []int
	Agents []AgentSpec
	// ConnectTimeout is how long an agent has to report before the run
	// records that it never connected.
	ConnectTimeout time.Duration
	Dir            string // run directory, created; must be empty

	Cells    Launcher
	Counters CounterSource
	Energy   sensors.EnergyCounter
	Temp     sensors.Thermometer
	Util     Utilisation
	// IdlePower is the host's idle power where known (model), else 0.
	IdlePower units.Power
	// Governor, if set, runs the economy on the cells; nil is the baseline.
	Governor Governor
	Clock    clock.Clock
	Log      *slog.Logger
	// OnEvent, if set, sees every event as it is recorded (the demo tells
	// the story from them).
	OnEvent func(record.Event)

	mu    sync.Mutex
	cells []*cellState // launched so far, for CellForPID
	note  func(kind, cell, detail string)
}

// Note records an event that happened outside the run's own loop, such as
// an agent connecting to the hub. Before the run starts and after it ends,
// notes go to the log only.
func (r *Run) Note(kind, cell, detail string) {
	r.mu.Lock()
	note := r.note
	r.mu.Unlock()
	if note != nil {
		note(kind, cell, detail)
		return
	}
	if r.Log != nil {
		r.Log.Info("event", "kind", kind, "cell", cell, "detail", detail)
	}
}

// CellForPID names the cell that process pid belongs to, so that the agent
// hub can tell who is talking from the kernel's peer credentials.
func (r *Run) CellForPID(pid int) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cs := range r.cells {
		if cs.c.Contains(pid) {
			return cs.spec.Name, true
		}
	}
	return "", false
}

// cellState is what the run tracks about one launched agent.
type cellState struct {
	spec   AgentSpec
	c      cell.Cell
	log    *os.File
	cpu    time.Duration // CPU time at the last sample (a new cell starts at 0)
	energy units.Energy
	mem    uint64
	heard  bool
	exited bool
	silent bool // "never connected" already recorded
}

// Execute launches the agents, samples them until the duration is over, ctx
// is cancelled or every agent has exited, stops the agents and writes the
// summary. Whatever happens, the run directory keeps every sample taken.
func (r *Run) Execute(ctx context.Context) (record.Summary, error) {
	if err := r.validate(); err != nil {
		return record.Summary{}, err
	}
	// The run's clock starts before the agents do: the first interval
	// covers their launch, and every elapsed time shares one origin.
	e0, err := r.Energy.ReadEnergy()
	if err != nil {
		return record.Summary{}, fmt.Errorf("read energy at start: %w", err)
	}
	if _, err := r.Util.Sample(); err != nil {
		return record.Summary{}, fmt.Errorf("read CPU utilisation at start: %w", err)
	}
	start := r.Clock.Now()
	w, err := record.Create(r.Dir, record.Meta{
		Kind:           r.Kind,
		Started:        start.UTC(),
		CPUs:           r.CPUs,
		SampleInterval: record.Duration(r.Interval),
		EnergySource:   r.Energy.Source(),
		TempSource:     r.Temp.Source(),
		IdlePower:      r.IdlePower,
		Agents:         r.agentMeta(),
	})
	if err != nil {
		return record.Summary{}, err
	}
	event := func(kind, cellName, detail string) {
		e := record.Event{Elapsed: record.Duration(r.Clock.Now().Sub(start)), Kind: kind, Cell: cellName, Detail: detail}
		r.Log.Info("event", "kind", kind, "cell", cellName, "detail", detail)
		if err := w.Event(e); err != nil {
			r.Log.Error("record event", "err", err)
		}
		if r.OnEvent != nil {
			r.OnEvent(e)
		}
	}

	r.mu.Lock()
	r.note = event
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.note = nil
		r.mu.Unlock()
	}()

	cells, launchErr := r.launch(ctx, event)
	defer func() {
		for _, cs := range cells {
			if err := cs.c.Close(); err != nil {
				r.Log.Warn("close cell", "cell", cs.spec.Name, "err", err)
			}
			cs.log.Close()
		}
	}()
	if launchErr != nil {
		event("run_failed", "", launchErr.Error())
		sum, cerr := w.Close()
		return sum, errors.Join(launchErr, cerr)
	}

	var govErr error
	stopGov := func() {}
	if r.Governor != nil {
		gctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		byName := make(map[string]cell.Cell, len(cells))
		for _, cs := range cells {
			byName[cs.spec.Name] = cs.c
		}
		go func() {
			defer close(done)
			govErr = r.Governor.Govern(gctx, byName, event)
		}()
		stopGov = func() { cancel(); <-done }
	}
	sampleErr := r.sampleLoop(ctx, start, e0, cells, w, event)
	stopGov()
	if govErr != nil && !errors.Is(govErr, context.Canceled) {
		event("governor_failed", "", govErr.Error())
		sampleErr = errors.Join(sampleErr, govErr)
	}
	for _, cs := range cells {
		if !cs.exited {
			if err := cs.c.Close(); err != nil {
				event("cell_close_failed", cs.spec.Name, err.Error())
			}
		}
	}
	sum, cerr := w.Close()
	return sum, errors.Join(sampleErr, cerr)
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
	case r.Cells == nil || r.Counters == nil || r.Energy == nil || r.Temp == nil || r.Util == nil || r.Clock == nil:
		return errors.New("run is missing a dependency")
	}
	if r.Log == nil {
		r.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

func (r *Run) agentMeta() []record.AgentMeta {
	out := make([]record.AgentMeta, len(r.Agents))
	for i, a := range r.Agents {
		out[i] = record.AgentMeta{Name: a.Name, Command: append([]string{a.Path}, a.Args...)}
	}
	return out
}

// launch starts every agent in its own cell, each with its output in
// <dir>/<name>.log.
func (r *Run) launch(ctx context.Context, event func(kind, cell, detail string)) ([]*cellState, error) {
	var cells []*cellState
	for _, a := range r.Agents {
		logf, err := os.Create(filepath.Join(r.Dir, a.Name+".log"))
		if err != nil {
			return cells, fmt.Errorf("agent %s: %w", a.Name, err)
		}
		c, err := r.Cells.Start(ctx, cell.Spec{
			Name: a.Name, Path: a.Path, Args: a.Args, Env: a.Env,
			CPUs: r.CPUs, Stdout: logf, Stderr: logf,
		})
		if err != nil {
			logf.Close()
			return cells, fmt.Errorf("start agent %s: %w", a.Name, err)
		}
		cs := &cellState{spec: a, c: c, log: logf}
		cells = append(cells, cs)
		r.mu.Lock()
		r.cells = append(r.cells, cs)
		r.mu.Unlock()
		event("agent_started", a.Name, fmt.Sprintf("pid %d, backend %s, cpus %v", c.PID(), c.Backend(), r.CPUs))
	}
	return cells, nil
}

// sampleLoop samples every Interval from start, when the host energy
// counter read e0, until the run ends.
func (r *Run) sampleLoop(ctx context.Context, start time.Time, e0 units.Energy, cells []*cellState, w *record.Writer, event func(kind, cell, detail string)) error {
	var (
		prevAt     = start
		prevEnergy = e0
		hostEnergy units.Energy
		lastTemp   units.Celsius
	)
	sample := func() error {
		now := r.Clock.Now()
		el := now.Sub(start)
		e, err := r.Energy.ReadEnergy()
		if err != nil {
			return fmt.Errorf("read energy: %w", err)
		}
		de := e - prevEnergy
		if e < prevEnergy {
			de = 0 // EnergyCounter promises monotonic; never go negative
		}
		hostEnergy += de
		util, err := r.Util.Sample()
		if err != nil {
			event("sensor_error", "", "CPU utilisation: "+err.Error())
		}
		temp, err := r.Temp.ReadTemperature()
		if err != nil {
			event("sensor_error", "", "temperature: "+err.Error())
			temp = lastTemp
		}
		lastTemp = temp

		iv := Interval{Elapsed: now.Sub(prevAt), Energy: de, Utilisation: util, NumCPU: len(r.CPUs)}
		for _, cs := range cells {
			prev := cs.cpu
			if st, err := cs.c.Stats(); err == nil {
				cs.cpu = max(st.CPUTime, prev)
				cs.mem = st.MemoryBytes
			} else if !cs.exited {
				event("stats_error", cs.spec.Name, err.Error())
			}
			iv.CellCPU = append(iv.CellCPU, cs.cpu-prev)
		}
		sp := Attribute(iv)
		smp := record.Sample{Elapsed: el, Host: record.HostSample{
			Temperature: temp, Power: units.AveragePower(de, iv.Elapsed), Energy: hostEnergy, Utilisation: util,
		}}
		for i, cs := range cells {
			cs.energy += sp.Energy[i]
			counters, _, ok := r.Counters.Counters(cs.spec.Name)
			if ok && !cs.heard {
				cs.heard = true
				event("agent_reporting", cs.spec.Name, "first counters received")
			}
			if !ok && !cs.heard && !cs.silent && el >= r.ConnectTimeout {
				cs.silent = true
				event("agent_silent", cs.spec.Name, fmt.Sprintf("no report within %v; its work counters stay empty", r.ConnectTimeout))
			}
			smp.Cells = append(smp.Cells, record.CellSample{
				Cell: cs.spec.Name, CPUTime: cs.cpu, CPUShare: sp.Share[i],
				Energy: cs.energy, MemoryBytes: cs.mem, Counters: counters,
			})
		}
		if r.Governor != nil {
			smp.Market, smp.Wallets = r.Governor.Snapshot()
		}
		prevAt, prevEnergy = now, e
		return w.Write(smp)
	}
	ticker := r.Clock.NewTicker(r.Interval)
	defer ticker.Stop()
	deadline := r.Clock.NewTimer(r.Duration)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			event("run_interrupted", "", context.Cause(ctx).Error())
			return sample()
		case <-deadline.Chan():
			return sample()
		case <-ticker.Chan():
			// A tick that lands at the deadline is the last sample; the
			// deadline timer then has nothing left to add.
			if r.Clock.Now().Sub(start) >= r.Duration-r.Interval/4 {
				return sample()
			}
			if err := sample(); err != nil {
				return err
			}
			for _, cs := range cells {
				if cs.exited {
					continue
				}
				select {
				case <-cs.c.Done():
					cs.exited = true
					werr := cs.c.Wait(ctx)
					detail := "exited"
					if werr != nil {
						detail = werr.Error()
					}
					event("agent_exited", cs.spec.Name, detail)
				default:
				}
			}
			if allExited(cells) {
				event("run_ended", "", "every agent has exited")
				return nil
			}
		}
	}
}

func allExited(cells []*cellState) bool {
	for _, cs := range cells {
		if !cs.exited {
			return false
		}
	}
	return true
}
