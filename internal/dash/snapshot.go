package dash

import (
	"github.com/maxwellhq/maxwell/internal/event"

	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"

	"context"
	"time"
)

// Snapshot is everything the dashboard shows at one moment. The daemon
// produces one per tick; the model replaces its previous one with it.
type Snapshot struct {
	// Tick is the auction tick the snapshot describes.
	Tick uint64
	// Uptime is the time since the daemon started.
	Uptime  time.Duration
	Thermal Thermal
	// Prices is the recent price history, oldest first.
	Prices []PricePoint
	// Auction is this tick's board: one row per bidder.
	Auction []BidRow
	// Wallets has one row per agent.
	Wallets []WalletRow
	// Events are the recent events, oldest first.
	Events []Event
}

// Reading is one figure and where it came from.
type Reading struct {
	Value float64
	// Tier is "calibrated", "sensor" or "model" (sensors.Tier's words).
	Tier string
	// Source names the sensor or model, e.g. `thermal_zone "x86_pkg_temp"`
	// or "linear-utilisation".
	Source string
}

// Estimated reports whether r comes from a model.
func (r Reading) Estimated() bool { return r.Tier == "model" }

// Thermal is the host's thermal state.
type Thermal struct {
	// Temperature is in °C.
	Temperature Reading
	// Setpoint is the controller's target temperature in °C.
	Setpoint float64
	// Power is the host's power in watts.
	Power Reading
	// History holds recent temperatures in °C, oldest first, for the
	// sparkline.
	History []float64
}

// PricePoint is one tick's prices per slot.
type PricePoint struct {
	Tick    uint64
	Reserve units.Credits
	// Clearing is meaningful only when Sold: a tick may sell nothing.
	Clearing units.Credits
	Sold     bool
}

// BidRow is one bidder on this tick's auction board.
type BidRow struct {
	Agent string
	Bid   units.Credits
	Won   bool
	// Slot is the slot won, counting from 1; 0 when the bid lost.
	Slot int
	// Weight is the won slot's share of the CPU, in [0, 1].
	Weight float64
	// Payment is what the agent pays for the slot this tick.
	Payment units.Credits
}

// WalletRow is one agent's wallet.
type WalletRow struct {
	Agent   string
	Balance units.Credits
	// BurnRate is what the agent spends per second, in credits, recently.
	BurnRate float64
	// TaxPaid is the memory tax paid since the agent started.
	TaxPaid units.Credits
	State   life.State
}

// Event is something that happened: an apoptosis, a fail-safe, a sensor
// change.
type Event struct {
	// At is the daemon's uptime when it happened.
	At     time.Duration
	Kind   event.Kind
	Agent  string
	Detail string
}

// Source feeds the dashboard. Next blocks until the next snapshot is ready
// or ctx is done; any error means the daemon is gone and ends the
// dashboard.
type Source interface {
	Next(ctx context.Context) (Snapshot, error)
}

// Actions changes agents through the daemon's control API. Each call must
// return when ctx is done.
type Actions interface {
	Pause(ctx context.Context, agent string) error
	Resume(ctx context.Context, agent string) error
	Kill(ctx context.Context, agent string) error
	// Fund adds amount (> 0) to agent's wallet.
	Fund(ctx context.Context, agent string, amount units.Credits) error
}

// SnapshotMsg delivers a Snapshot to the model.
type SnapshotMsg struct{ Snapshot Snapshot }

// DaemonGoneMsg tells the model the daemon is gone: it shows a banner and
// quits.
type DaemonGoneMsg struct{ Err error }

// actionDoneMsg reports the end of an action.
type actionDoneMsg struct {
	what string
	err  error
}

// quitMsg ends the program after the daemon-gone banner has been shown.
type quitMsg struct{}
