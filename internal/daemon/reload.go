package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/maxwellhq/maxwell/internal/access"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/economy"
)

// reloader reads the daemon's configuration and policy again when asked
// (SIGHUP): each is validated first, and a file that does not validate is
// refused, with the reason as an event and in the log, and the old one
// kept.
type reloader struct {
	econ       *economy.Economy
	ctl        *access.Control
	load       func() (config.Config, error)
	policyFile string
	socketGID  int
	log        *slog.Logger
}

// run reloads at every receive on asked until ctx ends.
func (r reloader) run(ctx context.Context, asked <-chan struct{}) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-asked:
			r.reload()
		}
	}
}

// reload reads both files and applies what validates.
func (r reloader) reload() {
	if r.load != nil {
		cfg, err := r.load()
		if err == nil {
			var changed, later []string
			if changed, later, err = r.econ.Reconfigure(cfg); err == nil {
				r.log.Info("configuration reloaded", "changed", changed, "kept_until_restart", later)
			}
		}
		if err != nil {
			r.refuse(fmt.Errorf("configuration: %w", err))
		}
	}
	if r.policyFile != "" {
		p, err := access.Load(r.policyFile, r.socketGID)
		if err != nil {
			r.refuse(fmt.Errorf("policy: %w", err))
			return
		}
		r.ctl.SetPolicy(p)
		r.log.Info("policy reloaded", "policy", p.Describe())
	}
}

func (r reloader) refuse(err error) {
	r.log.Warn("reload refused; the old file stays in force", "err", err)
	r.econ.Refused(err)
}
