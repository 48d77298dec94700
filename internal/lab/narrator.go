package lab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/units"
)

// statusEvery is how often the narrator tells the state of the economy.
const statusEvery = 5 * time.Second

// narrator tells a run's story as lines: the events that matter as they
// happen, and the state of the economy every few seconds. A nil writer
// tells nothing.
type narrator struct {
	mu    sync.Mutex
	w     io.Writer
	clock clock.Clock
	start time.Time
}

func newNarrator(w io.Writer, c clock.Clock) *narrator {
	if c == nil {
		c = clock.System()
	}
	return &narrator{w: w, clock: c, start: c.Now()}
}

func (n *narrator) printf(format string, args ...any) {
	if n.w == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "[%6.1fs] "+format+"\n", append([]any{n.clock.Now().Sub(n.start).Seconds()}, args...)...)
}

// intro says what the demo is about to do.
func (n *narrator) intro(env Env, ec engine.Config, endow units.Credits, d time.Duration) {
	if n.w == nil {
		return
	}
	floor := LandauerFloorPJPerByte(300)
	fmt.Fprintf(n.w, "maxwell demo: the Scientist and the Miner under the economy for %v on CPUs %s, in %s cells\n", d, cpuset.Format(env.CPUs), env.Cell)
	fmt.Fprintf(n.w, "  each wallet: %.1f J of credits (1 credit = 1 µJ), no income; a slot (one CPU for %v) costs %.3f J at base price; %s auction\n",
		endow.Joules(), ec.Tick, ec.SlotEnergy.Joules(), ec.Rule)
	fmt.Fprintf(n.w, "  heat: the price rises above %.0f °C; Landauer's tax: %d pJ per freed byte (%.2g × the Landauer floor of %.2g pJ/B at 300 K)\n",
		float64(ec.Controller.Setpoint), ec.TaxPicojoulesPerByte, float64(ec.TaxPicojoulesPerByte)/floor, floor)
}

// tells reports whether the story tells events of kind k: the ones a
// person wants to see.
func tells(k event.Kind) bool {
	switch k {
	case event.Apoptosis, event.Started, event.Hibernate, event.LowBalance, event.FailSafe, event.SensorRecovered,
		event.LedgerUnavailable, event.LedgerRecovered, event.MeterError, event.Exited,
		event.AgentSilent, event.RunInterrupted, event.RunEnded, event.Killed:
		return true
	}
	return false
}

// event narrates the events a person wants to see.
func (n *narrator) event(e record.Event) {
	switch {
	case e.Kind == event.Apoptosis:
		n.printf("APOPTOSIS: the %s could not pay and is killed: %s", e.Cell, e.Detail)
	case tells(e.Kind):
		cell := ""
		if e.Cell != "" {
			cell = e.Cell + ": "
		}
		n.printf("%s: %s%s", strings.ReplaceAll(string(e.Kind), "_", " "), cell, e.Detail)
	}
}

// WithoutToldEvents returns log less the economy's records of the events
// the demo's story tells (its "event" records of those kinds), so that a
// story and a log on one terminal (demo --headless --log-level info) say
// each event once. Every other record passes.
func WithoutToldEvents(log *slog.Logger) *slog.Logger {
	if log == nil {
		return nil
	}
	return slog.New(untold{log.Handler()})
}

// untold is the slog.Handler of WithoutToldEvents.
type untold struct{ slog.Handler }

// Handle implements slog.Handler.
func (h untold) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "event" {
		told := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key != "kind" {
				return true
			}
			switch v := a.Value.Resolve().Any().(type) {
			case event.Kind:
				told = tells(v)
			case string:
				told = tells(event.Kind(v))
			}
			return false
		})
		if told {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h untold) WithAttrs(attrs []slog.Attr) slog.Handler { return untold{h.Handler.WithAttrs(attrs)} }

// WithGroup implements slog.Handler.
func (h untold) WithGroup(name string) slog.Handler { return untold{h.Handler.WithGroup(name)} }

// watching wraps show (which may be nil) so that the narrator tells the
// economy's state every few seconds while the run lasts.
func (n *narrator) watching(show func(context.Context, Session) error) func(context.Context, Session) error {
	return func(ctx context.Context, s Session) error {
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.status(ctx, s)
		}()
		defer func() { <-done }()
		if show != nil {
			return show(ctx, s)
		}
		<-ctx.Done()
		return ctx.Err()
	}
}

// status tells the economy's state every statusEvery until ctx ends.
func (n *narrator) status(ctx context.Context, s Session) {
	t := n.clock.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
		st, err := s.Economy.State(ctx)
		if err != nil || st.Tick == 0 {
			continue
		}
		temp := fmt.Sprintf("%.1f °C", st.Temperature.Celsius)
		if st.Temperature.Error != "" {
			temp = "temperature unreadable"
		} else if st.Temperature.Source.Estimated {
			temp += " (est.)"
		}
		var cells []string
		for _, c := range st.Cells {
			line := fmt.Sprintf("%s %s", c.Name, c.State)
			if c.State == life.Running {
				line += fmt.Sprintf(" on %d CPU", c.Won)
			}
			cells = append(cells, line+fmt.Sprintf(", %.1f J", c.Balance.Joules()))
		}
		n.printf("%s | price ×%.2f, reserve %.3f J/slot | %s", temp, st.Multiplier, st.Reserve.Joules(), strings.Join(cells, " | "))
	}
}
