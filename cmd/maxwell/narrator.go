package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

// narrator tells the demo's story: the events that matter as they happen,
// and the state of the economy every few seconds.
type narrator struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (n *narrator) printf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "[%6.1fs] "+format+"\n", append([]any{time.Since(n.start).Seconds()}, args...)...)
}

// event narrates the events a person wants to see.
func (n *narrator) event(e record.Event) {
	switch e.Kind {
	case "apoptosis":
		n.printf("APOPTOSIS: the %s could not pay and is killed: %s", e.Cell, e.Detail)
	case "hibernate", "low_balance", "fail_safe", "sensor_recovered", "ledger_unavailable", "ledger_recovered", "meter_error", "exited", "agent_exited", "agent_silent", "run_interrupted", "governor_failed":
		cell := ""
		if e.Cell != "" {
			cell = e.Cell + ": "
		}
		n.printf("%s: %s%s", strings.ReplaceAll(e.Kind, "_", " "), cell, e.Detail)
	}
}

// status prints the economy's state every five seconds until ctx ends.
func (n *narrator) status(ctx context.Context, d *engine.Driver, temp sensors.Thermometer) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		dec := d.Last()
		if dec.Tick == 0 {
			continue
		}
		c, err := temp.ReadTemperature()
		tstr := fmt.Sprintf("%.1f °C", float64(c))
		if err != nil {
			tstr = "temperature unreadable"
		}
		if temp.Source().Estimated() {
			tstr += " (est.)"
		}
		var cells []string
		for _, r := range dec.Cells {
			s := fmt.Sprintf("%s %s", r.Name, r.State)
			if r.State == engine.Running {
				s += fmt.Sprintf(" on %d CPU", r.Won)
			}
			s += fmt.Sprintf(", %.1f J", float64(r.Balance)/1e6)
			cells = append(cells, s)
		}
		n.printf("%s | price ×%.2f, reserve %.3f J/slot | %s", tstr, dec.Multiplier, float64(dec.Reserve)/1e6, strings.Join(cells, " | "))
	}
}
