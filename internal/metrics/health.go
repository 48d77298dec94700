package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
)

// Health is what /healthz answers, as JSON.
type Health struct {
	// OK reports that the tick loop is alive: a tick was decided within
	// StaleAfterSeconds (or, before the first, the daemon started within
	// it).
	OK bool `json:"ok"`
	// Tick is the last tick decided, 0 before the first; AgeSeconds how
	// long ago it was decided (before the first: how long ago the daemon
	// started).
	Tick       uint64  `json:"tick"`
	AgeSeconds float64 `json:"age_seconds"`
	// StaleAfterSeconds is how old the last tick may be.
	StaleAfterSeconds float64 `json:"stale_after_seconds"`
	// Reason says in words why the loop is not alive; "" when it is.
	Reason string `json:"reason,omitempty"`
}

// CheckHealth judges the tick loop's liveness from st: alive if a tick was
// decided less than staleTicks tick lengths ago (and never less than
// MinStale), by the state's own clock.
func CheckHealth(st api.State, staleTicks int) Health {
	stale := max(time.Duration(float64(staleTicks)*st.TickSeconds*float64(time.Second)), MinStale)
	h := Health{Tick: st.Tick, StaleAfterSeconds: stale.Seconds()}
	var age time.Duration
	if st.Tick == 0 || st.TickTime.IsZero() {
		age = st.Time.Sub(st.Started)
		h.Reason = fmt.Sprintf("no tick decided in the %.1f s since the daemon started", age.Seconds())
	} else {
		age = st.Time.Sub(st.TickTime)
		h.Reason = fmt.Sprintf("last tick (%d) decided %.1f s ago", st.Tick, age.Seconds())
	}
	h.AgeSeconds = max(age.Seconds(), 0)
	h.OK = age < stale
	if h.OK {
		h.Reason = ""
	} else {
		h.Reason += fmt.Sprintf(", more than %.1f s (%d tick lengths): the tick loop is stuck", stale.Seconds(), staleTicks)
	}
	return h
}

// healthz serves the tick loop's liveness: 200 while it is alive, 503
// when it is not or the state cannot be read; the body is a Health.
func (x *Exporter) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), Timeout)
	defer cancel()
	var h Health
	st, err := x.opts.State(ctx)
	if err != nil {
		h = Health{Reason: "the daemon's state cannot be read: " + err.Error()}
	} else {
		h = CheckHealth(st, x.opts.StaleTicks)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !h.OK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}
