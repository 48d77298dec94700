// Package event names what happens in Maxwell's economy, for people and
// programs: the engine's decisions (an apoptosis, a fail-safe), an
// operator's actions (a spawn, a fund), the agents' connections and an
// experiment's milestones. The control API serves these events, the
// dashboard shows them, run directories record them, and docs/EVENTS.md
// lists them (generated from Kinds, and checked against it by a test).
package event

import (
	"fmt"
	"time"
)

// Kind says what happened.
type Kind string

// The kinds of event.
const (
	// The engine's decisions.
	Apoptosis       Kind = "apoptosis"
	Hibernate       Kind = "hibernate"
	LowBalance      Kind = "low_balance"
	FailSafe        Kind = "fail_safe"
	SensorRecovered Kind = "sensor_recovered"
	Exited          Kind = "exited"
	IncomeStopped   Kind = "income_stopped"

	// The engine's dealings with the ledger, the meter and the cells.
	LedgerUnavailable Kind = "ledger_unavailable"
	LedgerRecovered   Kind = "ledger_recovered"
	MeterError        Kind = "meter_error"
	EngineError       Kind = "engine_error"
	PauseFailed       Kind = "pause_failed"
	ResumeFailed      Kind = "resume_failed"
	KillFailed        Kind = "kill_failed"

	// The economy's operations, as an operator (or an experiment) asks.
	Started Kind = "started"
	Spawned Kind = "spawned"
	Funded  Kind = "funded"
	Killed  Kind = "killed"
	Paused  Kind = "paused"
	Resumed Kind = "resumed"
	Settled Kind = "settled"
	// An operator's live changes.
	TermsChanged Kind = "terms_changed"
	HostChanged  Kind = "host_changed"
	// The daemon's configuration reloaded (SIGHUP).
	ConfigReloaded Kind = "config_reloaded"
	ConfigRefused  Kind = "config_refused"
	// Adopted cells: cgroups someone else made (a pod's), governed.
	Adopted  Kind = "adopted"
	Released Kind = "released"

	// The agents' connections to the hub.
	AgentConnected     Kind = "agent_connected"
	AgentDisconnected  Kind = "agent_disconnected"
	AgentRefused       Kind = "agent_refused"
	AgentProtocolError Kind = "agent_protocol_error"

	// An experiment's milestones.
	AgentReporting Kind = "agent_reporting"
	AgentSilent    Kind = "agent_silent"
	RunInterrupted Kind = "run_interrupted"
	RunEnded       Kind = "run_ended"
)

// Description is what one kind of event means.
type Description struct {
	Kind Kind
	// Cell tells whether events of the kind name a cell.
	Cell bool
	// Means says what happened, in a sentence.
	Means string
}

// Kinds describes every kind of event, in the order above.
func Kinds() []Description {
	return []Description{
		{Apoptosis, true, "The cell could not pay what it owed (its balance ran out), so it was killed and its wallet closed (insolvency: kill)."},
		{Hibernate, true, "The cell could not pay and is frozen until an operator funds it (insolvency: hibernate)."},
		{LowBalance, true, "The cell's balance fell below the configured share of its endowment (once, until funded above it again)."},
		{FailSafe, false, "The temperature could not be read or is implausible: the price multiplier is at its ceiling until it can be trusted."},
		{SensorRecovered, false, "The temperature can be trusted again: the controller prices from it again."},
		{Exited, true, "The cell's program ended on its own; its wallet was closed."},
		{IncomeStopped, true, "A recount by the host found a claim of useful work false (or inconsistent on its face): the cell earns no income from then on."},
		{LedgerUnavailable, false, "The ledger refused a tick's postings (a full disk, say): nobody is charged and nobody is frozen until it recovers."},
		{LedgerRecovered, false, "The ledger takes postings again: charging resumed."},
		{MeterError, false, "The Landauer meter could not be read: no tax on freed memory until it recovers."},
		{EngineError, false, "A tick could not be decided; the next one is tried."},
		{PauseFailed, true, "The cell could not be frozen after losing its slot."},
		{ResumeFailed, true, "The cell could not be thawed after winning a slot."},
		{KillFailed, true, "The cell could not be killed."},
		{Started, false, "The economy, or a run on it, started: the policy, telemetry and Landauer meter it runs with."},
		{Spawned, true, "A program was started in a new cell with a wallet."},
		{Funded, true, "An operator added credits to the cell's wallet."},
		{Killed, true, "An operator killed the cell; its wallet was closed."},
		{Paused, true, "An operator paused the cell: it is frozen, bids nothing and pays nothing."},
		{Resumed, true, "An operator resumed the cell: it bids again and runs when it wins."},
		{Settled, true, "A wallet a previous daemon left open was closed: its cell did not survive that daemon."},
		{TermsChanged, true, "An operator changed the cell's terms while it ran: its tap (recorded in the ledger) or its standing bid."},
		{HostChanged, false, "An operator changed the host's limits while the economy ran: the setpoint or the power budget."},
		{ConfigReloaded, false, "The daemon read its configuration again (SIGHUP): what changed, and what differs but waits for a restart."},
		{ConfigRefused, false, "The daemon was asked to read its configuration or policy again and refused the file: the reason; the old one stays."},
		{Adopted, true, "A cgroup someone else made (a pod's, a service's) was put under the economy as a cell with a wallet: frozen until it wins, never started or killed by Maxwell."},
		{Released, true, "The economy let go of an adopted cell (its pod went, or the node agent stopped): thawed, its processes left alone, its wallet settled."},
		{AgentConnected, true, "The cell's agent connected to the hub and said hello."},
		{AgentDisconnected, true, "The cell's agent's connection ended."},
		{AgentRefused, false, "A connection to the agent socket was refused (no cell, busy, bad hello)."},
		{AgentProtocolError, true, "The cell's agent sent a message the hub rejected."},
		{AgentReporting, true, "An experiment received the cell's first counters."},
		{AgentSilent, true, "An experiment received no counters from the cell within its connect timeout."},
		{RunInterrupted, false, "An experiment was stopped before its time."},
		{RunEnded, false, "An experiment ended early: every cell had ended."},
	}
}

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	for _, d := range Kinds() {
		if d.Kind == k {
			return true
		}
	}
	return false
}

// UnmarshalText implements encoding.TextUnmarshaler: only the kinds above
// are accepted.
func (k *Kind) UnmarshalText(b []byte) error {
	v := Kind(b)
	if !v.Valid() {
		return fmt.Errorf("event: unknown kind %q", b)
	}
	*k = v
	return nil
}

// Event is one thing that happened.
type Event struct {
	// Time is when it happened, on the economy's clock.
	Time time.Time `json:"time"`
	// Tick is the last tick the engine had decided by then.
	Tick uint64 `json:"tick"`
	Kind Kind   `json:"kind"`
	// Cell names the cell it happened to, if any.
	Cell string `json:"cell,omitempty"`
	// Detail says what happened in words.
	Detail string `json:"detail"`
}
