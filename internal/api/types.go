package api

import (
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"

	"fmt"
	"strings"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell/vm"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

// State is a snapshot of the daemon: the host's thermal state, the market,
// every cell, and what happened recently. Money is in credits (one credit
// is one µJ of host energy). Every float is finite: JSON has no NaN.
type State struct {
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// Started is when the daemon started.
	Started time.Time `json:"started"`
	// Tick is the last auction tick decided; 0 before the first.
	// TickTime is when it was decided (zero before the first).
	Tick     uint64    `json:"tick"`
	TickTime time.Time `json:"tick_time,omitzero"`
	// TickSeconds is the length of one tick, in seconds.
	TickSeconds float64 `json:"tick_seconds"`
	// Slots is the number of CPU slots sold each tick.
	Slots       int         `json:"slots"`
	Temperature Temperature `json:"temperature"`
	Power       Power       `json:"power"`
	// Policy is how the economy decides who runs: "maxwell" (the
	// auction) or "cfs" (no control: the baseline).
	Policy string `json:"policy"`
	// EnergyJoules is the host energy spent since the economy started, in
	// joules, from Power's source; BusyCPUSeconds is the busy time of the
	// CPUs sold over the same span. Both are cumulative: rates over any
	// window are their differences.
	EnergyJoules   float64 `json:"energy_joules_total"`
	BusyCPUSeconds float64 `json:"busy_cpu_seconds_total"`
	// IdleEnergyJoules is the part of EnergyJoules that is idle power
	// (Power.IdleWatts) × time, where the power model knows the idle
	// power; 0 with a sensor, which does not tell it apart.
	IdleEnergyJoules float64 `json:"idle_energy_joules_total,omitempty"`
	// Multiplier is the thermal price multiplier (≥ 1).
	Multiplier float64 `json:"multiplier"`
	// Binding says which limit sets the price: "temperature", "power"
	// (the host's power budget), or "" (neither: the price is at its
	// floor). PowerBudgetWatts is the budget, 0 for none.
	Binding          string  `json:"binding,omitempty"`
	PowerBudgetWatts float64 `json:"power_budget_watts,omitempty"`
	// Profile says which host profile (maxwell calibrate) tunes the
	// price controller, or that none does.
	Profile string `json:"profile,omitempty"`
	// Reserve is the reserve price, credits per slot.
	Reserve units.Credits `json:"reserve_credits"`
	// Clearing is the last auction's clearing price, credits per slot; 0
	// when it sold nothing.
	Clearing units.Credits `json:"clearing_credits"`
	// FailSafe reports that the temperature could not be read and the
	// price is at its ceiling.
	FailSafe bool `json:"fail_safe"`
	// Apoptoses counts the cells killed for insolvency since the daemon
	// started.
	Apoptoses uint64 `json:"apoptoses_total"`
	// LedgerErrors counts the ticks whose postings the ledger refused
	// (nobody is charged or frozen while it refuses).
	LedgerErrors uint64 `json:"ledger_errors_total,omitempty"`
	// AgentRefused and AgentProtocolErrors count the connections the
	// agent hub refused (a peer in no cell) and the agents' protocol
	// errors, each one, including those that a flood's summary event
	// stands for.
	AgentRefused        uint64 `json:"agent_refused_total,omitempty"`
	AgentProtocolErrors uint64 `json:"agent_protocol_errors_total,omitempty"`
	// Cells has one row per cell, in admission order, dead ones included.
	Cells []Cell `json:"cells"`
	// Events are the recent events, oldest first. EventsLost counts the
	// events that a watcher of the economy's event stream fell too far
	// behind to receive.
	Events     []event.Event `json:"events"`
	EventsLost uint64        `json:"events_lost,omitempty"`
	// History is the recent price history, oldest first, for sparklines.
	History []PricePoint `json:"history"`
}

// BurnWindow is the window of Cell.BurnRate.
const BurnWindow = 10 * time.Second

// Source says where a figure came from: a sensor or a model.
type Source struct {
	// Kind is the kind of source, e.g. "rapl", "hwmon", "thermal_zone",
	// "model".
	Kind string `json:"kind"`
	// Name identifies the source within its kind, e.g. "x86_pkg_temp" or
	// "linear-utilisation".
	Name string `json:"name"`
	// Tier is 1 (calibrated sensor), 2 (sensor) or 3 (model).
	Tier int `json:"tier"`
	// Estimated reports that the figure is a model's estimate.
	Estimated bool `json:"estimated"`
	// Model names the model and its parameters, for estimates.
	Model string `json:"model,omitempty"`
}

// SourceOf describes a sensors.Source.
func SourceOf(s sensors.Source) Source {
	return Source{Kind: string(s.Kind), Name: s.Name, Tier: int(s.Tier), Estimated: s.Estimated(), Model: s.Model}
}

// Temperature is the host's temperature and the controller's target.
type Temperature struct {
	// Celsius is the temperature in °C; meaningless when Error is set.
	Celsius float64 `json:"celsius"`
	// Setpoint is the controller's target temperature in °C.
	Setpoint float64 `json:"setpoint_celsius"`
	// Error says why the temperature could not be read; "" if it was.
	Error  string `json:"error,omitempty"`
	Source Source `json:"source"`
}

// Power is the host's power draw.
type Power struct {
	// Watts is the power in W, the mean over the last tick; meaningless
	// when Error is set.
	Watts float64 `json:"watts"`
	// IdleWatts is the host's idle power where the power model gives it;
	// 0 when unknown (a real counter does not tell it apart).
	IdleWatts float64 `json:"idle_watts,omitempty"`
	// Error says why the power could not be read; "" if it was.
	Error  string `json:"error,omitempty"`
	Source Source `json:"source"`
}

// Cell is one cell's row in a State.
type Cell struct {
	Name  string     `json:"name"`
	State life.State `json:"state"`
	// PID is the cell's first process; 0 once it has been reaped.
	PID int `json:"pid,omitempty"`
	// Backend is how the cell is contained, e.g. "cgroup2", "hybrid",
	// "cgroup1", "signal" or "oci".
	Backend string   `json:"backend"`
	Argv    []string `json:"argv,omitempty"`
	// User is the user the cell's program runs as ("" for the daemon's
	// own); OwnerUID is the user who asked for the cell, whose it is to
	// fund, pause and kill (-1 for a cell the daemon adopted rather than
	// spawned, e.g. a Kubernetes pod's).
	User     string `json:"user,omitempty"`
	OwnerUID int    `json:"owner_uid"`
	// Cgroup is the cell's cgroup below each hierarchy's root, as
	// /proc/PID/cgroup lists it: the cgroup an adopted cell governs, or
	// the one the daemon made; "" for a cell in no cgroup (backend
	// "signal"). ContainerID is the OCI runtime's ID of a container
	// cell, "" for others.
	Cgroup      string        `json:"cgroup,omitempty"`
	ContainerID string        `json:"container_id,omitempty"`
	Balance     units.Credits `json:"balance_credits"`
	Endowment   units.Credits `json:"endowment_credits"`
	// TapRate is income in credits per second while the balance is
	// below TapCap.
	TapRate units.Credits `json:"tap_credits_per_second,omitempty"`
	TapCap  units.Credits `json:"tap_cap_credits,omitempty"`
	// BurnRate is what the cell spent (payment, tax and rent) per second
	// over the last BurnWindow (since admission if it is younger): the
	// rate of Paid + Tax + Rent over that window. 0 for a dead cell.
	BurnRate float64 `json:"burn_rate_credits_per_second"`
	// Payment is what the cell paid in the last tick.
	Payment units.Credits `json:"payment_credits"`
	// Paid and Tax are the totals paid for CPU slots and as Landauer's
	// tax on freed memory since admission.
	Paid units.Credits `json:"paid_credits_total"`
	Tax  units.Credits `json:"tax_credits_total"`
	// Rent is the total paid in memory rent since admission.
	Rent units.Credits `json:"rent_credits_total,omitempty"`
	// Income is what the cell has earned for checked useful work since
	// admission; IncomeStopped says why it earns no more, if a recount
	// failed.
	Income        units.Credits `json:"income_credits_total,omitempty"`
	IncomeStopped string        `json:"income_stopped,omitempty"`
	// FreedBytes is the memory the cell has freed since admission.
	FreedBytes uint64 `json:"freed_bytes_total"`
	// Energy is the host energy attributed to the cell since admission,
	// in joules; EnergyEstimated reports that it comes from a model.
	Energy          float64 `json:"energy_joules_total"`
	EnergyEstimated bool    `json:"energy_estimated"`
	// CPUShare is the cell's share of the CPUs sold over the last tick,
	// in [0, 1]; CPUSeconds its CPU time since admission.
	CPUShare   float64 `json:"cpu_share"`
	CPUSeconds float64 `json:"cpu_seconds_total"`
	// MemoryBytes is the cell's memory use at the last tick.
	MemoryBytes uint64 `json:"memory_bytes"`
	// BidPrice (credits per slot) and BidUnits (slots) are the cell's
	// bid in the last auction; Won is the slots it won.
	BidPrice units.Credits `json:"bid_price_credits"`
	BidUnits int           `json:"bid_units"`
	Won      int           `json:"won"`
	// WonSlots is the slots won since admission (one per slot per
	// tick), Ticks the ticks the cell has been decided in.
	WonSlots uint64 `json:"won_slots_total"`
	Ticks    uint64 `json:"ticks_total"`
	// Counters are the cumulative counters the cell's agent last
	// reported, and Useful the one it declared its useful work (nil: it
	// declared none, or no agent connected).
	Counters map[string]uint64 `json:"counters,omitempty"`
	Useful   *Useful           `json:"useful,omitempty"`
	// Standing reports that the daemon bids for the cell by the policy
	// given at spawn (a program that does not speak the agent protocol).
	Standing bool `json:"standing,omitempty"`
}

// Useful is a cell's useful-work counter, as its agent declared it.
type Useful struct {
	Counter string `json:"counter"`
	Unit    string `json:"unit,omitempty"`
	// Work is the counter's last reported value.
	Work uint64 `json:"work"`
}

// PricePoint is one tick of the price history.
type PricePoint struct {
	Tick uint64    `json:"tick"`
	Time time.Time `json:"time"`
	// Celsius is the temperature in °C that priced the tick.
	Celsius    float64 `json:"celsius"`
	Multiplier float64 `json:"multiplier"`
	// Reserve and Clearing are in credits per slot; Clearing is 0 on a
	// tick that sold nothing.
	Reserve  units.Credits `json:"reserve_credits"`
	Clearing units.Credits `json:"clearing_credits"`
}

// SpawnRequest asks the daemon to start a program in a new cell under the
// economy.
type SpawnRequest struct {
	// Name names the cell (letters, digits, '.', '_', '-'; at most 64
	// bytes); "" lets the daemon choose one.
	Name string `json:"name,omitempty"`
	// Argv is the command and its arguments; Argv[0] is looked up in the
	// daemon's PATH if it holds no slash.
	Argv []string `json:"argv"`
	// Env is the program's environment, "KEY=value" each.
	Env []string `json:"env,omitempty"`
	// Dir is the program's working directory; "" means the daemon's.
	Dir string `json:"dir,omitempty"`
	// Wallet is the endowment, in credits.
	Wallet units.Credits `json:"wallet_credits"`
	// TapRate is income in credits per second, paid while the balance is
	// below TapCap (credits); a TapCap of 0 means the wallet.
	TapRate units.Credits `json:"tap_credits_per_second,omitempty"`
	TapCap  units.Credits `json:"tap_cap_credits,omitempty"`
	// MaxBid is the standing bid, in credits per slot, that the daemon
	// makes every tick for a program that does not speak the agent
	// protocol; 0 means the program bids for itself.
	MaxBid units.Credits `json:"max_bid_credits,omitempty"`
	// Units is the number of slots the standing bid asks for; 0 means 1.
	Units int `json:"units,omitempty"`
	// CPUs pins the cell to these CPUs; empty means no pinning.
	CPUs []int `json:"cpus,omitempty"`
	// OCIRootfs, if set, runs the program in an OCI container on this
	// root filesystem.
	OCIRootfs string `json:"oci_rootfs,omitempty"`
	// User is who the program runs as: a user name or a numeric UID; ""
	// means the daemon's own user (for a daemon serving its control API,
	// package access decides it from the caller and the policy).
	User string `json:"user,omitempty"`
	// VM, if set, runs the program in a microVM: Argv, Env and Dir are
	// then the guest's.
	VM *VMRequest `json:"vm,omitempty"`
	// Income, if set, pays the cell for its useful work, as far as the
	// host can check it (docs/INCOME.md).
	Income *Income `json:"income,omitempty"`

	// OwnerUID is the user the cell belongs to. It never travels: the
	// daemon sets it from the caller's kernel credentials.
	OwnerUID int `json:"-"`
}

// Income is pay for useful work: CreditsPerUnit for each unit of Counter
// the cell's agent reports, for as long as every recount of its claims by
// the host holds. Only counters the host can check earn (today the
// Scientist's "primes").
type Income struct {
	Counter        string  `json:"counter"`
	CreditsPerUnit float64 `json:"credits_per_unit"`
}

// VMRequest is how a spawned cell's microVM is made. Paths are the
// daemon's (absolute); "" takes the daemon's default.
type VMRequest struct {
	// VMM is the monitor: "qemu" (the default) or "firecracker".
	VMM vm.VMM `json:"vmm,omitempty"`
	// Kernel is the guest kernel; Initrd the initramfs (QEMU only);
	// RootFS a root file system image the command runs in (with QEMU,
	// mounted by the initramfs's init; with Firecracker, required, the
	// root device). Unset, QEMU boots the daemon's guest image
	// (`maxwell vm image`).
	Kernel string `json:"kernel,omitempty"`
	Initrd string `json:"initrd,omitempty"`
	RootFS string `json:"rootfs,omitempty"`
	// MemoryMiB and VCPUs size the VM; 0 means the daemon's default.
	MemoryMiB int `json:"memory_mib,omitempty"`
	VCPUs     int `json:"vcpus,omitempty"`
}

// Limits on a SpawnRequest.
const (
	MaxNameLen = 64
	MaxUnits   = 4096
	MaxCPU     = 8191
	// MinVMMemoryMiB and MaxVMMemoryMiB bound VMRequest.MemoryMiB (a
	// guest kernel needs a few dozen MiB; 1 TiB is beyond any host this
	// runs on); MaxVCPUs bounds VMRequest.VCPUs (QEMU microvm's limit).
	MinVMMemoryMiB = 32
	MaxVMMemoryMiB = 1 << 20
	MaxVCPUs       = 255
)

// Validate checks r for what any daemon would refuse. The error wraps
// ErrBadRequest.
func (r *SpawnRequest) Validate() error {
	bad := func(format string, args ...any) error {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
	}
	if r.Name != "" {
		if err := ValidName(r.Name); err != nil {
			return err
		}
	}
	if len(r.Argv) == 0 || r.Argv[0] == "" {
		return bad("argv: a command is required")
	}
	for i, a := range r.Argv {
		if hasNUL(a) {
			return bad("argv[%d]: holds a NUL byte", i)
		}
	}
	for i, e := range r.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || hasNUL(e) {
			return bad("env[%d] %q: want KEY=value", i, e)
		}
	}
	if hasNUL(r.Dir) || hasNUL(r.OCIRootfs) || hasNUL(r.User) {
		return bad("dir, oci_rootfs and user must not hold a NUL byte")
	}
	if err := validTerms(bad, r.Wallet, r.TapRate, r.TapCap, r.MaxBid, r.Units); err != nil {
		return err
	}
	for _, c := range r.CPUs {
		if c < 0 || c > MaxCPU {
			return bad("cpus: CPU %d out of range 0..%d", c, MaxCPU)
		}
	}
	if in := r.Income; in != nil {
		if in.Counter == "" || !(in.CreditsPerUnit > 0) || in.CreditsPerUnit > 1e9 {
			return bad("income: want a counter and credits_per_unit in (0, 1e9], got %q and %v", in.Counter, in.CreditsPerUnit)
		}
	}
	if r.VM != nil {
		if r.OCIRootfs != "" {
			return bad("vm and oci_rootfs: a cell is a microVM or a container, not both")
		}
		if r.Dir != "" && !strings.HasPrefix(r.Dir, "/") {
			return bad("dir %q: a microVM's working directory is an absolute path in the guest", r.Dir)
		}
		return r.VM.validate(bad)
	}
	return nil
}

// validate checks a VMRequest for what any daemon would refuse.
func (v *VMRequest) validate(bad func(string, ...any) error) error {
	switch v.VMM {
	case "", vm.VMMQEMU, vm.VMMFirecracker:
	default:
		return bad("vm.vmm %q: want %s or %s", v.VMM, vm.VMMQEMU, vm.VMMFirecracker)
	}
	for _, f := range []struct{ key, path string }{{"kernel", v.Kernel}, {"initrd", v.Initrd}, {"rootfs", v.RootFS}} {
		if hasNUL(f.path) {
			return bad("vm.%s must not hold a NUL byte", f.key)
		}
		if f.path != "" && !strings.HasPrefix(f.path, "/") {
			return bad("vm.%s %q: want an absolute path (the daemon's)", f.key, f.path)
		}
	}
	switch {
	case v.MemoryMiB != 0 && (v.MemoryMiB < MinVMMemoryMiB || v.MemoryMiB > MaxVMMemoryMiB):
		return bad("vm.memory_mib %d: want %d..%d", v.MemoryMiB, MinVMMemoryMiB, MaxVMMemoryMiB)
	case v.VCPUs < 0 || v.VCPUs > MaxVCPUs:
		return bad("vm.vcpus %d: want 1..%d", v.VCPUs, MaxVCPUs)
	case v.VMM == vm.VMMFirecracker && v.Initrd != "":
		return bad("vm.initrd: Firecracker boots a kernel and a root file system, no initramfs")
	case v.VMM == vm.VMMFirecracker && (v.Kernel == "" || v.RootFS == ""):
		return bad("vm: Firecracker needs a kernel (vmlinux) and a root file system image")
	}
	return nil
}

// normalize fills in the documented defaults.
func (r *SpawnRequest) normalize() {
	normalizeTerms(r.Wallet, r.TapRate, &r.TapCap, r.MaxBid, &r.Units)
}

// validTerms checks a request's wallet, tap and standing bid.
func validTerms(bad func(string, ...any) error, wallet, tapRate, tapCap, maxBid units.Credits, n int) error {
	switch {
	case wallet < 0:
		return bad("wallet_credits %d: must not be negative", wallet)
	case tapRate < 0:
		return bad("tap_credits_per_second %d: must not be negative", tapRate)
	case tapCap < 0:
		return bad("tap_cap_credits %d: must not be negative", tapCap)
	case wallet == 0 && tapRate == 0:
		return bad("wallet_credits is 0 and there is no tap: the cell could never pay")
	case n < 0 || n > MaxUnits:
		return bad("units %d: want 0..%d", n, MaxUnits)
	case n > 0 && maxBid == 0:
		return bad("units %d without max_bid_credits: units size the standing bid", n)
	case maxBid < 0:
		return bad("max_bid_credits %d: must not be negative", maxBid)
	}
	return nil
}

// normalizeTerms fills in the documented defaults: a tap's cap is the
// wallet, a standing bid is for one slot.
func normalizeTerms(wallet, tapRate units.Credits, tapCap *units.Credits, maxBid units.Credits, n *int) {
	if tapRate > 0 && *tapCap == 0 {
		*tapCap = wallet
	}
	if maxBid > 0 && *n == 0 {
		*n = 1
	}
}

// CellInfo describes a cell just spawned.
type CellInfo struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	Backend string `json:"backend"`
}

// FundRequest is the body of a fund call.
type FundRequest struct {
	// Credits is the amount to add, > 0.
	Credits units.Credits `json:"credits"`
}

// Ping is the answer to a ping.
type Ping struct {
	// API is the API version, "v1".
	API string `json:"api"`
	// PID is the daemon's process ID.
	PID int `json:"pid"`
}

// ValidName checks a cell name: 1 to 64 bytes of letters, digits, '.', '_'
// and '-', and not "." or "..". The error wraps ErrBadRequest.
func ValidName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > MaxNameLen {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("cell name %q: want 1..%d letters, digits, '.', '_' or '-'", name, MaxNameLen)}
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("cell name %q holds %q: want letters, digits, '.', '_' or '-'", name, r)}
		}
	}
	return nil
}

func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }
