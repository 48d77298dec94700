package economy

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Set changes a living cell's terms while it runs (api.SetRequest): its
// tap, in the ledger first and then in the engine, and its standing bid.
// The change is an event.
func (e *Economy) Set(ctx context.Context, name string, req api.SetRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	m, err := e.cell(name)
	if err != nil {
		return err
	}
	st, w, ok := e.driver.Cell(name)
	if !ok {
		return fmt.Errorf("%w: %s", api.ErrNotFound, name)
	}
	if st == life.Dead {
		return fmt.Errorf("%w: %s is dead", api.ErrConflict, name)
	}
	rate, cap := w.TapRate, w.TapCap
	if req.TapRate != nil {
		rate = *req.TapRate
	}
	if req.TapCap != nil {
		cap = *req.TapCap
	}
	if rate > 0 && cap == 0 {
		cap = w.Endowment // as at spawn: a cap of 0 means the wallet
	}
	var what []string
	var record func() error
	if rate != w.TapRate || cap != w.TapCap {
		e.mu.Lock()
		e.fundSeq++
		key := "terms/cell:" + name + "/" + strconv.FormatInt(e.started.UnixNano(), 10) + "/" + strconv.FormatUint(e.fundSeq, 10)
		e.mu.Unlock()
		record = func() error { return e.lg.SetTerms(ctx, key, name, rate, cap) }
		what = append(what, fmt.Sprintf("tap %d credits/s below %d", rate, cap))
	}
	var bid *engine.Bid
	if req.MaxBid != nil {
		units := 1
		if req.Units != nil {
			units = *req.Units
		}
		if *req.MaxBid == 0 {
			units = 0
			what = append(what, "no standing bid: it bids for itself")
		} else {
			what = append(what, fmt.Sprintf("standing bid %d×%d credits", units, *req.MaxBid))
		}
		bid = &engine.Bid{Price: *req.MaxBid, Units: units}
	}
	if err := e.driver.SetTerms(name, rate, cap, bid, record); err != nil {
		return apiError(err)
	}
	if bid != nil {
		e.mu.Lock()
		m.standing = bid.Units > 0
		e.mu.Unlock()
	}
	if len(what) > 0 {
		e.note(event.Event{Kind: event.TermsChanged, Cell: name, Detail: strings.Join(what, "; ")})
	}
	return nil
}

// SetHost changes the host's limits while the economy runs
// (api.HostRequest): the setpoint the price holds, and a power budget in
// watts priced against whichever binds. The change is an event.
func (e *Economy) SetHost(ctx context.Context, req api.HostRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	var h engine.HostSettings
	var what []string
	if v := req.SetpointCelsius; v != nil {
		sp := units.Celsius(*v)
		h.SetpointCelsius = &sp
		what = append(what, fmt.Sprintf("setpoint %.1f °C", *v))
	}
	if v := req.PowerBudgetWatts; v != nil {
		b := units.Power(*v)
		h.PowerBudget = &b
		if *v == 0 {
			what = append(what, "no power budget")
		} else {
			what = append(what, fmt.Sprintf("power budget %.1f W", *v))
		}
	}
	if err := e.driver.SetHost(h); err != nil {
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	e.note(event.Event{Kind: event.HostChanged, Detail: strings.Join(what, "; ")})
	return nil
}
