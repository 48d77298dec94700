// Package record writes a run directory: the time series an experiment
// sampled (CSV), the events that happened (JSON lines) and the summary
// (summary.json), and reads them back.
//
// A run directory holds:
//
//	meta.json     what ran: kind, CPUs, sources of every figure, models,
//	              the controller's setpoint
//	host.csv      one row per sample: elapsed_seconds, temperature_celsius,
//	              power_watts, energy_joules (cumulative), utilisation
//	cells.csv     one row per cell per sample: elapsed_seconds, cell,
//	              cpu_seconds (cumulative), cpu_share, energy_joules
//	              (cumulative, attributed), memory_bytes, useful_counter and
//	              useful_unit (the useful-work counter the cell's agent
//	              declared, empty if none)
//	counters.csv  one row per cell per counter per sample: elapsed_seconds,
//	              cell, counter, value (cumulative, as the agent reported)
//	market.csv    runs under the economy only: elapsed_seconds, tick,
//	              multiplier, reserve_price, clearing_price (credits per
//	              slot), fail_safe
//	wallets.csv   runs under the economy only: elapsed_seconds, cell,
//	              balance, state, paid, tax (credits, cumulative)
//	events.jsonl  one JSON object per line: elapsed, kind, cell, detail
//	summary.json  the Summary, written when the run ends
//
// Every row is flushed as soon as it is written, so a run that is cut short
// keeps everything sampled up to that moment. The summary is computed by
// Summarize from the samples alone, so anyone can recompute it from the CSV
// files (ReadRun) and check it.
package record

import (
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"

	"time"

	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Meta describes a run: what ran and where each figure comes from.
type Meta struct {
	Kind string `json:"kind"` // "baseline", "maxwell", ...
	// Started is the wall-clock start, for people; all logic uses elapsed
	// time.
	Started        time.Time      `json:"started"`
	CPUs           []int          `json:"cpus"`
	SampleInterval Duration       `json:"sample_interval"`
	EnergySource   sensors.Source `json:"energy_source"`
	TempSource     sensors.Source `json:"temperature_source"`
	// IdlePower is the host's idle power where it is known (from the power
	// model), so that dynamic energy above idle can be reported; 0 when
	// unknown.
	IdlePower units.Power `json:"idle_power_watts,omitempty"`
	// Setpoint is the temperature the economy's controller held (under a
	// policy that governs) when the run started; 0 in runs recorded before
	// it was kept.
	Setpoint units.Celsius `json:"setpoint_celsius,omitempty"`
	// Agents names the cells and the command each ran.
	Agents []AgentMeta `json:"agents"`
}

// AgentMeta names one agent's cell and what it ran.
type AgentMeta struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Backend string   `json:"backend"`
}

// Sample is everything measured at one instant.
type Sample struct {
	// Elapsed is the time since the run started.
	Elapsed time.Duration
	Host    HostSample
	Cells   []CellSample
	// Market and Wallets are present in runs under Maxwell's economy.
	Market  *MarketSample
	Wallets []WalletSample
}

// MarketSample is the economy's price at one instant. Money is in credits
// (1 credit = 1 µJ of host energy).
type MarketSample struct {
	Tick       uint64
	Multiplier float64
	// Reserve and Clearing are the last auction's prices per slot.
	Reserve  units.Credits
	Clearing units.Credits
	FailSafe bool
}

// WalletSample is one wallet at one instant.
type WalletSample struct {
	Cell    string
	Balance units.Credits
	State   life.State
	Paid    units.Credits // auction payments so far
	Tax     units.Credits // Landauer tax (and rent) so far
}

// HostSample is the host's state at one instant.
type HostSample struct {
	Temperature units.Celsius
	// Power is the mean power since the previous sample.
	Power units.Power
	// Energy is the host energy spent since the run started.
	Energy units.Energy
	// Utilisation is the busy fraction of the run's CPUs since the previous
	// sample, in [0, 1].
	Utilisation float64
}

// CellSample is one cell's state at one instant.
type CellSample struct {
	Cell string
	// CPUTime is the cell's cumulative CPU time since the run started.
	CPUTime time.Duration
	// CPUShare is the cell's CPU time since the previous sample divided by
	// the capacity of the run's CPUs over that interval, in [0, 1].
	CPUShare float64
	// Energy is the host energy attributed to the cell since the run
	// started (see package experiment for the attribution rule).
	Energy      units.Energy
	MemoryBytes uint64
	// Counters are the agent's cumulative work counters as last reported
	// to the host (e.g. "primes", "hashes").
	Counters map[string]uint64
	// UsefulCounter names the counter the agent declared its useful work,
	// in UsefulUnit; "" if it declared none.
	UsefulCounter string
	UsefulUnit    string
}

// Event is something that happened during a run.
type Event struct {
	Elapsed Duration   `json:"elapsed"`
	Kind    event.Kind `json:"kind"`
	Cell    string     `json:"cell,omitempty"`
	Detail  string     `json:"detail"`
}
