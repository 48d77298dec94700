package economy

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/units"
)

// live is what of the configuration may change while the economy runs.
type live struct {
	mu  sync.Mutex
	cfg config.Config
}

// config returns the configuration in force (Open's, changed by
// Reconfigure).
func (e *Economy) config() config.Config {
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	return e.live.cfg
}

// Reconfigure applies a new, validated configuration while the economy
// runs, as a daemon does on SIGHUP: the setpoint and the controller's gains
// (bumplessly, journaled), the startup grace, the share of claimed work
// recounted for new income and the cell logs' size for new cells. It
// returns what it changed and the settings that differ but take a restart
// (the tick, the power model, …), which it leaves as they were. The change
// is an event.
func (e *Economy) Reconfigure(cfg config.Config) (changed, needRestart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	old := e.config()
	var h engine.HostSettings
	if cfg.Engine.SetpointCelsius != old.Engine.SetpointCelsius {
		sp := units.Celsius(cfg.Engine.SetpointCelsius)
		h.SetpointCelsius = &sp
		changed = append(changed, fmt.Sprintf("engine.setpoint_celsius %v → %v", old.Engine.SetpointCelsius, cfg.Engine.SetpointCelsius))
	}
	if cfg.Engine.Gains != old.Engine.Gains {
		g := control.Gains{Kp: cfg.Engine.Gains.Kp, Ki: cfg.Engine.Gains.Ki, Kd: cfg.Engine.Gains.Kd}
		h.Gains = &g
		o, n := old.Engine.Gains, cfg.Engine.Gains
		changed = append(changed, fmt.Sprintf("engine.gains kp %g ki %g kd %g → kp %g ki %g kd %g", o.Kp, o.Ki, o.Kd, n.Kp, n.Ki, n.Kd))
	}
	if h.SetpointCelsius != nil || h.Gains != nil {
		if err := e.driver.SetHost(h); err != nil {
			return nil, nil, err
		}
	}
	if cfg.Engine.StartupGrace != old.Engine.StartupGrace {
		e.driver.SetGrace(cfg.Engine.StartupGrace)
		changed = append(changed, fmt.Sprintf("engine.startup_grace %v → %v", old.Engine.StartupGrace, cfg.Engine.StartupGrace))
	}
	if cfg.Income != old.Income {
		changed = append(changed, fmt.Sprintf("income.verify_fraction %v → %v (for cells paid from now on)", old.Income.VerifyFraction, cfg.Income.VerifyFraction))
	}
	if cfg.CellLogs != old.CellLogs {
		changed = append(changed, fmt.Sprintf("cell_logs %d bytes × %d → %d bytes × %d (for cells started from now on)",
			old.CellLogs.MaxBytes, old.CellLogs.Keep, cfg.CellLogs.MaxBytes, cfg.CellLogs.Keep))
	}
	// What else differs takes a restart: keep it as it was.
	next := old
	next.Engine.SetpointCelsius, next.Engine.Gains, next.Engine.StartupGrace = cfg.Engine.SetpointCelsius, cfg.Engine.Gains, cfg.Engine.StartupGrace
	next.Income, next.CellLogs = cfg.Income, cfg.CellLogs
	needRestart = differences(next, cfg)
	e.live.mu.Lock()
	e.live.cfg = next
	e.live.mu.Unlock()
	detail := "nothing changed"
	if len(changed) > 0 {
		detail = strings.Join(changed, "; ")
	}
	if len(needRestart) > 0 {
		detail += "; kept until a restart: " + strings.Join(needRestart, ", ")
	}
	e.note(event.Event{Kind: event.ConfigReloaded, Detail: detail})
	return changed, needRestart, nil
}

// differences names the top-level sections, or engine settings, in which
// a and b differ.
func differences(a, b config.Config) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("yaml")
		if t.Field(i).Name == "Engine" {
			ea, eb := va.Field(i), vb.Field(i)
			for j := range ea.NumField() {
				if !reflect.DeepEqual(ea.Field(j).Interface(), eb.Field(j).Interface()) {
					out = append(out, "engine."+ea.Type().Field(j).Tag.Get("yaml"))
				}
			}
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	return out
}

// Refused records that a reload was refused, and why.
func (e *Economy) Refused(err error) {
	e.note(event.Event{Kind: event.ConfigRefused, Detail: err.Error() + "; the old one stays in force"})
}
