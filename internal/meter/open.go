package meter

import (
	"log/slog"
)

// Options configure Open.
type Options struct {
	// EBPF configures the eBPF meter.
	EBPF EBPFOptions
	// Accounting configures the fallback.
	Accounting AccountingOptions
	// NoEBPF skips the eBPF meter.
	NoEBPF bool
	// Logger receives a warning when Open falls back; nil discards it.
	Logger *slog.Logger
}

// Open returns the eBPF meter where it loads and attaches, and otherwise
// the accounting meter, whose Source says it is approximate and why eBPF
// is not used. It does not fail: the fallback always opens (its Watch
// fails for cgroups it cannot read).
func Open(opts Options) Meter {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reason := "disabled by configuration"
	if !opts.NoEBPF {
		eo := opts.EBPF
		if eo.Logger == nil {
			eo.Logger = log
		}
		m, err := OpenEBPF(eo)
		if err == nil {
			return m
		}
		reason = err.Error()
	}
	ao := opts.Accounting
	ao.Reason = reason
	log.Warn("Landauer meter: eBPF unavailable, falling back to kernel memory accounting; freed-memory figures are approximate", "reason", reason)
	return OpenAccounting(ao)
}
