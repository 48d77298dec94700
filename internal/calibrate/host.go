package calibrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/maxwellhq/maxwell/internal/ledger"

	"github.com/maxwellhq/maxwell/internal/clock"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/cpuset"
	"github.com/maxwellhq/maxwell/internal/model"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/telemetry"
)

// HostOptions configure Host.
type HostOptions struct {
	Roots  sensors.Roots
	Config config.Config
	// Idle, Step, Interval, Threads and TauC are the experiment's (see
	// Config); Threads 0 means one per CPU this process may use.
	Idle, Step, Interval, TauC time.Duration
	Threads                    int
	// ProfilePath, if set, is where the host profile is stored
	// (DefaultProfilePath where the daemon looks for it).
	ProfilePath string
	// Progress, if set, hears what the experiment is about to do.
	Progress io.Writer
}

// Host calibrates this host: a load step with real busy threads, measured
// with the host's own telemetry (or the model and twin where it has no
// sensor), fitted and tuned; the profile is stored at opts.ProfilePath.
func Host(ctx context.Context, opts HostOptions) (Result, error) {
	threads := opts.Threads
	if threads == 0 {
		cpus, err := cpuset.Allowed()
		if err != nil {
			return Result{}, err
		}
		threads = len(cpus)
	}
	if threads < 0 {
		return Result{}, fmt.Errorf("calibrate: %d threads: want a positive number", threads)
	}
	// Refuse a profile that could not be stored before the step, not
	// after it.
	if opts.ProfilePath != "" {
		if err := storable(opts.ProfilePath); err != nil {
			return Result{}, err
		}
	}
	clk := clock.System()
	tel, err := telemetry.Open(opts.Roots, opts.Config, clk)
	if err != nil {
		return Result{}, err
	}
	var twinTau time.Duration
	if tel.Temp.Source().Estimated() {
		twinTau = model.TwinParams{R: opts.Config.ThermalTwin.ResistanceKPerW, C: opts.Config.ThermalTwin.CapacitanceJPerK}.Tau()
	}
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "calibrate: %v idle, then %d busy threads for %v; temperature from %s\n", opts.Idle, threads, opts.Step, tel.Temp.Source())
	}
	res, err := Run(ctx, Config{Idle: opts.Idle, Step: opts.Step, Interval: opts.Interval, Threads: threads, TauC: opts.TauC},
		tel.Energy, tel.Temp, twinTau, &BusyLoad{}, clk)
	if err != nil {
		return res, err
	}
	if opts.ProfilePath != "" {
		if err := res.Profile.Save(opts.ProfilePath); err != nil {
			return res, fmt.Errorf("%w at %s: %w", ErrProfileNotStored, opts.ProfilePath, err)
		}
	}
	return res, nil
}

// ErrProfileNotStored: the host profile cannot be stored where it was
// asked to be.
var ErrProfileNotStored = errors.New("calibrate: cannot store the host profile")

// storable makes path's directory and checks that a file can be created
// in it, as Profile.Save will.
func storable(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w at %s: %w", ErrProfileNotStored, path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".probe*")
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrProfileNotStored, path, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// WriteText prints the fit and the tuning; profile names where the profile
// went ("" none).
func (res Result) WriteText(w io.Writer, profile string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "temperature\t%s (%s)\n", res.TemperatureSource, res.TemperatureSource.Label())
	fmt.Fprintf(tw, "power step\t%.2f W (%s: %s)\n", res.PowerStepWatts, res.EnergySource.Label(), res.EnergySource.Name)
	fmt.Fprintf(tw, "K\t%.3f K/W\n", res.K)
	fmt.Fprintf(tw, "τ\t%.3f s\n", res.TauSeconds)
	if res.TwinTauSeconds != nil {
		fmt.Fprintf(tw, "twin τ = R·C\t%.3f s (fit off by %.1f%%)\n", *res.TwinTauSeconds, 100*(res.TauSeconds-*res.TwinTauSeconds)/(*res.TwinTauSeconds))
	}
	fmt.Fprintf(tw, "θ\t%.3f s\n", res.ThetaSeconds)
	fmt.Fprintf(tw, "SIMC Kc\t%.3f W/K\n", res.Kc)
	fmt.Fprintf(tw, "SIMC τI\t%.3f s\n", res.TauISeconds)
	if profile != "" {
		fmt.Fprintf(tw, "profile\t%s\n", profile)
	}
	return tw.Flush()
}

// DefaultProfilePath is where `maxwell calibrate` stores the host profile
// and the daemon and the experiments look for it: beside the ledger.
func DefaultProfilePath() string {
	return filepath.Join(filepath.Dir(ledger.DefaultPath()), "profile.json")
}
