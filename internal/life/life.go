// Package life names where a cell is in its life under the economy. The
// engine decides the state, the API serves it, the dashboard, the metrics
// and the records show it: all with this one type.
package life

import "fmt"

// State is where a cell is in its life.
type State string

// The states, in life order.
const (
	// Running: the cell won CPU slots this tick and runs on them.
	Running State = "running"
	// Paused: the cell is frozen until it wins a slot (it bid too little,
	// bid nothing, or an operator paused it).
	Paused State = "paused"
	// Hibernating: the cell could not pay and is frozen until funded.
	Hibernating State = "hibernating"
	// Dead: the cell is gone (apoptosis, killed, or it exited) and its
	// wallet is closed.
	Dead State = "dead"
)

// States lists every state, in life order.
func States() []State { return []State{Running, Paused, Hibernating, Dead} }

// Rank is s's place in life order, for sorting: Running first, Dead last;
// an unknown state ranks after Dead.
func (s State) Rank() int {
	for i, t := range States() {
		if s == t {
			return i
		}
	}
	return len(States())
}

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	switch s {
	case Running, Paused, Hibernating, Dead:
		return true
	}
	return false
}

// UnmarshalText implements encoding.TextUnmarshaler: only the states above
// are accepted.
func (s *State) UnmarshalText(b []byte) error {
	v := State(b)
	if !v.Valid() {
		return fmt.Errorf("life: unknown cell state %q (want running, paused, hibernating or dead)", b)
	}
	*s = v
	return nil
}
