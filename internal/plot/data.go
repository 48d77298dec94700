package plot

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/record"
	"github.com/maxwellhq/maxwell/internal/units"
)

// ErrEmpty is wrapped by Load when a run directory holds no samples.
var ErrEmpty = errors.New("run has no samples")

// Data is one run directory read into memory.
type Data struct {
	// Name labels the run in file names and legends: the directory's base
	// name unless the caller sets another.
	Name string
	Run  record.Run
	// SetpointFrom names the file the run's setpoint was read from when
	// meta.json lacks it (runs recorded before it was kept): the engine
	// journal; "" otherwise.
	SetpointFrom string
}

// journalFile is the engine journal a run under the economy keeps in its
// directory (package lab writes it): its first line is the engine's
// configuration.
const journalFile = "engine.jsonl"

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
	if run.Meta.Setpoint == 0 {
		if sp := journalSetpoint(filepath.Join(dir, journalFile)); sp != 0 {
			d.Run.Meta.Setpoint, d.SetpointFrom = sp, journalFile
		}
	}
	return d, nil
}

// journalSetpoint returns the controller's setpoint from the configuration
// that opens the engine journal at path, or 0 where there is none (a run
// not under the economy) or it cannot be read: the chart then draws no
// setpoint, and loses nothing else.
func journalSetpoint(path string) units.Celsius {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 1<<20)).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return 0
	}
	var e engine.JournalEntry
	if json.Unmarshal(line, &e) != nil || e.Config == nil {
		return 0
	}
	return e.Config.Controller.Setpoint
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
