package plot

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/maxwellhq/maxwell/internal/record"
)

// ErrEmpty is wrapped by Load when a run directory holds no samples.
var ErrEmpty = errors.New("run has no samples")

// Data is one run directory read into memory.
type Data struct {
	// Name labels the run in file names and legends: the directory's base
	// name unless the caller sets another.
	Name string
	Run  record.Run
}

// Load reads the run directory dir with record.ReadRun. Errors name the
// directory and the file at fault; a malformed file gives an error
// wrapping record.ErrCorrupt, a run with no samples one wrapping ErrEmpty.
func Load(dir string) (Data, error) {
	d := Data{Name: filepath.Base(filepath.Clean(dir))}
	run, err := record.ReadRun(dir)
	if err != nil {
		return d, fmt.Errorf("%s: %w", dir, err)
	}
	if len(run.Samples) == 0 {
		return d, fmt.Errorf("%s: %s: %w", dir, record.HostFile, ErrEmpty)
	}
	d.Run = run
	return d, nil
}

// hasMarket reports whether d ran under the economy (it has market.csv).
func hasMarket(d Data) bool {
	for _, s := range d.Run.Samples {
		if s.Market != nil {
			return true
		}
	}
	return false
}

func hasWallets(d Data) bool {
	for _, s := range d.Run.Samples {
		if len(s.Wallets) > 0 {
			return true
		}
	}
	return false
}
