package api

import (
	"context"
	"fmt"
	"math"
	"net/http"

	"github.com/maxwellhq/maxwell/internal/units"
)

// SetRequest changes a living cell's terms while it runs; a field left
// out stays as it is. Changing a tap moves no money by itself; the
// change is an event.
type SetRequest struct {
	// MaxBid and Units are the standing bid the daemon makes for the
	// cell every tick (credits per slot, slots); a MaxBid of 0 removes
	// it, leaving the cell to bid for itself.
	MaxBid *units.Credits `json:"max_bid_credits,omitempty"`
	Units  *int           `json:"units,omitempty"`
	// TapRate and TapCap are its income without work: credits per
	// second while its balance is below the cap.
	TapRate *units.Credits `json:"tap_credits_per_second,omitempty"`
	TapCap  *units.Credits `json:"tap_cap_credits,omitempty"`
}

// Validate checks r for what any daemon would refuse.
func (r SetRequest) Validate() error {
	bad := func(format string, a ...any) error {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf(format, a...)}
	}
	switch {
	case r.MaxBid == nil && r.Units == nil && r.TapRate == nil && r.TapCap == nil:
		return bad("set: nothing to change (max_bid_credits, units, tap_credits_per_second, tap_cap_credits)")
	case r.MaxBid != nil && *r.MaxBid < 0, r.TapRate != nil && *r.TapRate < 0, r.TapCap != nil && *r.TapCap < 0:
		return bad("set: amounts must not be negative")
	case r.Units != nil && (*r.Units < 1 || *r.Units > MaxUnits):
		return bad("set: units %d: want 1..%d", *r.Units, MaxUnits)
	case r.Units != nil && r.MaxBid == nil:
		return bad("set: units without max_bid_credits: units size the standing bid")
	}
	return nil
}

// HostRequest changes the host's limits while the daemon runs; a field
// left out stays as it is.
type HostRequest struct {
	// SetpointCelsius is the temperature the price holds.
	SetpointCelsius *float64 `json:"setpoint_celsius,omitempty"`
	// PowerBudgetWatts is the host's power budget, priced like heat:
	// the price follows whichever limit binds. 0 removes it.
	PowerBudgetWatts *float64 `json:"power_budget_watts,omitempty"`
}

// Validate checks r for what any daemon would refuse.
func (r HostRequest) Validate() error {
	bad := func(format string, a ...any) error {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf(format, a...)}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case r.SetpointCelsius == nil && r.PowerBudgetWatts == nil:
		return bad("host set: nothing to change (setpoint_celsius, power_budget_watts)")
	case r.SetpointCelsius != nil && (!finite(*r.SetpointCelsius) || *r.SetpointCelsius < 0 || *r.SetpointCelsius > 150):
		return bad("host set: setpoint %v °C: want 0..150", *r.SetpointCelsius)
	case r.PowerBudgetWatts != nil && (!finite(*r.PowerBudgetWatts) || *r.PowerBudgetWatts < 0 || *r.PowerBudgetWatts > 1e6):
		return bad("host set: power budget %v W: want 0 (none) to 1e6", *r.PowerBudgetWatts)
	}
	return nil
}

// set serves POST /v1/cells/{name}/set.
func (s *Server) set(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := ValidCellName(name); err != nil {
		s.fail(w, r, err)
		return
	}
	var req SetRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := req.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.call(r)
	defer cancel()
	if err := s.b.Set(ctx, name, req); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setHost serves POST /v1/host.
func (s *Server) setHost(w http.ResponseWriter, r *http.Request) {
	var req HostRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := req.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.call(r)
	defer cancel()
	if err := s.b.SetHost(ctx, req); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Set changes a cell's terms (SetRequest).
func (c *Client) Set(ctx context.Context, name string, req SetRequest) error {
	if err := ValidCellName(name); err != nil {
		return err
	}
	return c.do(ctx, c.timeout(), http.MethodPost, cellPath(name, "set"), req, nil)
}

// SetHost changes the host's limits (HostRequest).
func (c *Client) SetHost(ctx context.Context, req HostRequest) error {
	return c.do(ctx, c.timeout(), http.MethodPost, "/v1/host", req, nil)
}
