package lab

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/record"
)

// TestStoryAndLogTellEachEventOnce tells events on one writer both as the
// story (the narrator) and as the economy's log records through
// WithoutToldEvents, as demo --headless --log-level info does on stderr:
// every event the story tells appears once; the log keeps the others and
// every record that is not an event.
func TestStoryAndLogTellEachEventOnce(t *testing.T) {
	var out bytes.Buffer
	n := newNarrator(&out, nil)
	log := WithoutToldEvents(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	evs := []record.Event{
		{Kind: event.Apoptosis, Cell: "miner", Detail: "could not pay 5 credits"},
		{Kind: event.LowBalance, Cell: "miner", Detail: "below 20% of the endowment"},
		{Kind: event.Spawned, Cell: "scientist", Detail: "pid 42"},
		{Kind: event.Killed, Cell: "scientist", Detail: "by an operator"},
	}
	for _, e := range evs {
		// The economy logs every event (economy.note), then the story
		// hears it.
		log.Info("event", "kind", e.Kind, "cell", e.Cell, "detail", e.Detail)
		n.event(e)
	}
	log.Info("ledger schema migrated", "version", 3)
	log.With("part", "hub").Info("event", "kind", string(event.FailSafe), "detail", "thermal zone lost")
	n.event(record.Event{Kind: event.FailSafe, Detail: "thermal zone lost"})

	got := out.String()
	for _, tt := range []struct {
		detail string
		want   int
	}{
		{"could not pay 5 credits", 1},
		{"below 20% of the endowment", 1},
		{"by an operator", 1},
		{"thermal zone lost", 1},
		{"pid 42", 1}, // not told by the story: the log keeps it
		{"ledger schema migrated", 1},
	} {
		if n := strings.Count(got, tt.detail); n != tt.want {
			t.Errorf("%q appears %d times, want %d, in:\n%s", tt.detail, n, tt.want, got)
		}
	}
	if !strings.Contains(got, "APOPTOSIS: the miner could not pay") {
		t.Errorf("the story does not tell the apoptosis:\n%s", got)
	}
	if !strings.Contains(got, "msg=event kind=spawned") {
		t.Errorf("the log lost the spawn, which the story does not tell:\n%s", got)
	}
	if WithoutToldEvents(nil) != nil {
		t.Error("WithoutToldEvents(nil) is not nil")
	}
}
