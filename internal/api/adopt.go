package api

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Insolvency is what the economy does with an adopted cell whose wallet
// runs dry. Maxwell neither starts nor kills an adopted cell's processes:
// it freezes them, or asks their owner to stop them.
type Insolvency string

// The insolvency policies of adopted cells.
const (
	// InsolvencyFreeze holds the cell frozen until it is funded (the
	// default).
	InsolvencyFreeze Insolvency = "freeze"
	// InsolvencyStop takes the cell out of the economy (thawed, its
	// wallet closed) and asks its owner to stop it: for a pod, an
	// eviction; for a cgroup adopted through the API, its StopArgv.
	InsolvencyStop Insolvency = "stop"
)

// AdoptRequest asks the daemon to govern a cgroup that someone else made
// (systemd, a container runtime, a person) as a cell: frozen until it wins
// CPU slots, CPU-limited, measured and metered like any cell, and found by
// its processes' PIDs on the agent socket. The daemon starts nothing in
// it and kills nothing in it.
type AdoptRequest struct {
	// Name names the cell (ValidCellName); "" takes the cgroup's last
	// path element.
	Name string `json:"name,omitempty"`
	// Cgroup is the cgroup's path below each hierarchy's root, as
	// /proc/<pid>/cgroup lists it, e.g. "/system.slice/nginx.service".
	Cgroup string `json:"cgroup"`
	// Wallet is the endowment, in credits.
	Wallet units.Credits `json:"wallet_credits"`
	// TapRate is income in credits per second, paid while the balance is
	// below TapCap (credits); a TapCap of 0 means the wallet.
	TapRate units.Credits `json:"tap_credits_per_second,omitempty"`
	TapCap  units.Credits `json:"tap_cap_credits,omitempty"`
	// MaxBid is the standing bid, in credits per slot, that the daemon
	// makes every tick for the cell; 0 means its processes bid for
	// themselves through the agent socket.
	MaxBid units.Credits `json:"max_bid_credits,omitempty"`
	// Units is the number of slots the standing bid asks for; 0 means 1.
	Units int `json:"units,omitempty"`
	// OnInsolvency is what happens when the wallet runs dry; "" means
	// InsolvencyFreeze.
	OnInsolvency Insolvency `json:"on_insolvency,omitempty"`
	// StopArgv is how the daemon asks the owner to stop the cell (for
	// example "systemctl stop nginx.service"): it runs it once, as
	// itself, outside every cell, when the cell goes insolvent under
	// InsolvencyStop or is killed. Required with InsolvencyStop.
	StopArgv []string `json:"stop_argv,omitempty"`
}

// Adopter is a Backend that can adopt cgroups. A Server whose Backend is
// not one answers POST /v1/adopt with ErrUnsupported.
type Adopter interface {
	// Adopt puts a validated request's cgroup under the economy.
	Adopt(ctx context.Context, req AdoptRequest) (CellInfo, error)
}

// ValidCellName checks the name of an existing cell: a spawned cell's
// (ValidName) or an adopted one's, whose segments are separated by '/'
// ("namespace/pod" for a Kubernetes pod; cell.ValidAdoptedName). The
// error wraps ErrBadRequest.
func ValidCellName(name string) error {
	if !strings.Contains(name, "/") {
		return ValidName(name)
	}
	if err := cell.ValidAdoptedName(name); err != nil {
		return &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	return nil
}

// Validate checks r for what any daemon would refuse, and fills in the
// name from the cgroup where r has none. The error wraps ErrBadRequest.
func (r *AdoptRequest) Validate() error {
	bad := func(format string, args ...any) error {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
	}
	c := r.Cgroup
	if c == "" || !strings.HasPrefix(c, "/") || hasNUL(c) || path.Clean(c) != c || c == "/" {
		return bad("cgroup %q: want a clean absolute path below the hierarchies' root, as /proc/PID/cgroup lists it (e.g. /system.slice/nginx.service)", c)
	}
	if r.Name == "" {
		r.Name = path.Base(c)
		if err := ValidCellName(r.Name); err != nil {
			return bad("no name given, and the cgroup's last element %q is no cell name: give one", r.Name)
		}
	}
	if err := ValidCellName(r.Name); err != nil {
		return err
	}
	switch r.OnInsolvency {
	case "", InsolvencyFreeze, InsolvencyStop:
	default:
		return bad("on_insolvency %q: want %s or %s", r.OnInsolvency, InsolvencyFreeze, InsolvencyStop)
	}
	if r.OnInsolvency == InsolvencyStop && (len(r.StopArgv) == 0 || r.StopArgv[0] == "") {
		return bad("on_insolvency %s needs stop_argv: the command that asks the cgroup's owner to stop it (Maxwell kills no adopted process)", InsolvencyStop)
	}
	for i, a := range r.StopArgv {
		if hasNUL(a) {
			return bad("stop_argv[%d]: holds a NUL byte", i)
		}
	}
	return validTerms(bad, r.Wallet, r.TapRate, r.TapCap, r.MaxBid, r.Units)
}

// normalize fills in the documented defaults.
func (r *AdoptRequest) normalize() {
	normalizeTerms(r.Wallet, r.TapRate, &r.TapCap, r.MaxBid, &r.Units)
	if r.OnInsolvency == "" {
		r.OnInsolvency = InsolvencyFreeze
	}
}
