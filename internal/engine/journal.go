package engine

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// JournalEntry is one line of an engine journal: everything that changed
// the core's state, in order, so that a run can be replayed exactly. One of
// its fields is set.
type JournalEntry struct {
	// Config opens a journal: the core's configuration.
	Config *Config `json:"config,omitempty"`
	// StartAt records Core.StartAt.
	StartAt uint64 `json:"start_at,omitempty"`
	// Admit, Fund and Kill are an operator's (or the demo's) changes.
	Admit *JournalAdmit `json:"admit,omitempty"`
	Fund  *JournalFund  `json:"fund,omitempty"`
	Kill  string        `json:"kill,omitempty"`
	// Host and Tap record Core.SetHost and Core.SetTap.
	Host *HostSettings `json:"host,omitempty"`
	Tap  *JournalTap   `json:"tap,omitempty"`
	// Tick is one tick: what came in, what was decided, and whether the
	// ledger took the postings (Committed) or not (abandoned).
	Tick *JournalTick `json:"tick,omitempty"`
}

// JournalAdmit records Core.Admit.
type JournalAdmit struct {
	Name   string `json:"name"`
	Wallet Wallet `json:"wallet"`
}

// JournalTap records Core.SetTap.
type JournalTap struct {
	Name string        `json:"name"`
	Rate units.Credits `json:"rate"`
	Cap  units.Credits `json:"cap"`
}

// JournalFund records Core.Fund.
type JournalFund struct {
	Name   string        `json:"name"`
	Amount units.Credits `json:"amount"`
}

// JournalTick records one Decide.
type JournalTick struct {
	Input     RecordedInput `json:"input"`
	Decision  Decision      `json:"decision"`
	Committed bool          `json:"committed"`
}

// RecordedInput is an Input that survives JSON: its error is its text.
type RecordedInput struct {
	Tick        uint64        `json:"tick"`
	Dt          time.Duration `json:"dt_ns"`
	Temperature float64       `json:"temperature_celsius"`
	TempErr     string        `json:"temperature_error,omitempty"`
	Power       units.Power   `json:"power_watts,omitempty"`
	Energy      units.Energy  `json:"energy_microjoules,omitempty"`
	Utilisation float64       `json:"utilisation,omitempty"`
	Cells       []CellInput   `json:"cells"`
}

// Record returns in as a RecordedInput.
func (in Input) Record() RecordedInput {
	r := RecordedInput{Tick: in.Tick, Dt: in.Dt, Temperature: float64(in.Temperature), Power: in.Power, Energy: in.Energy, Utilisation: in.Utilisation, Cells: in.Cells}
	if in.TempErr != nil {
		r.TempErr = in.TempErr.Error()
	}
	return r
}

// Input returns the Input r records.
func (r RecordedInput) Input() Input {
	in := Input{Tick: r.Tick, Dt: r.Dt, Temperature: units.Celsius(r.Temperature), Power: r.Power, Energy: r.Energy, Utilisation: r.Utilisation, Cells: r.Cells}
	if r.TempErr != "" {
		in.TempErr = errors.New(r.TempErr)
	}
	return in
}

// ErrDiverged is returned by Replay when a replayed decision differs from
// the recorded one.
var ErrDiverged = errors.New("replay diverged from the journal")

// Replay reads a journal and replays it on a fresh Core, checking that
// every decision comes out exactly as recorded. It returns the number of
// ticks replayed.
func Replay(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	var (
		core  *Core
		ticks int
		line  int
	)
	for sc.Scan() {
		line++
		var e JournalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return ticks, fmt.Errorf("journal line %d: %w", line, err)
		}
		if e.Config != nil {
			c, err := NewCore(*e.Config)
			if err != nil {
				return ticks, fmt.Errorf("journal line %d: %w", line, err)
			}
			core = c
			continue
		}
		if core == nil {
			return ticks, fmt.Errorf("journal line %d: no configuration before it", line)
		}
		var err error
		switch {
		case e.StartAt != 0:
			err = core.StartAt(e.StartAt)
		case e.Admit != nil:
			err = core.Admit(e.Admit.Name, e.Admit.Wallet)
		case e.Fund != nil:
			err = core.Fund(e.Fund.Name, e.Fund.Amount)
		case e.Kill != "":
			err = core.Kill(e.Kill)
		case e.Host != nil:
			err = core.SetHost(*e.Host)
		case e.Tap != nil:
			err = core.SetTap(e.Tap.Name, e.Tap.Rate, e.Tap.Cap)
		case e.Tick != nil:
			var d Decision
			if d, err = core.Decide(e.Tick.Input.Input()); err == nil {
				if !reflect.DeepEqual(normalise(d), normalise(e.Tick.Decision)) {
					got, _ := json.Marshal(d)
					want, _ := json.Marshal(e.Tick.Decision)
					return ticks, fmt.Errorf("%w at tick %d:\n got %s\nwant %s", ErrDiverged, d.Tick, got, want)
				}
				if e.Tick.Committed {
					core.Commit(d)
				} else {
					core.Abandon(d)
				}
				ticks++
			}
		}
		if err != nil {
			return ticks, fmt.Errorf("journal line %d: %w", line, err)
		}
	}
	return ticks, sc.Err()
}

// normalise makes a decision comparable after a JSON round trip: empty and
// nil slices are the same.
func normalise(d Decision) Decision {
	d.next = nil
	if len(d.Actions) == 0 {
		d.Actions = nil
	}
	if len(d.Postings) == 0 {
		d.Postings = nil
	}
	if len(d.Events) == 0 {
		d.Events = nil
	}
	if len(d.Cells) == 0 {
		d.Cells = nil
	}
	return d
}

// JournalWriter writes a journal as JSON lines, one entry a line, each
// flushed to the operating system as it is written.
type JournalWriter struct {
	mu  sync.Mutex
	w   io.Writer
	c   io.Closer
	err error
}

// NewJournalWriter writes a journal to w.
func NewJournalWriter(w io.Writer) *JournalWriter { return &JournalWriter{w: w} }

// CreateJournal creates a journal file at path.
func CreateJournal(path string) (*JournalWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("engine journal: %w", err)
	}
	return &JournalWriter{w: f, c: f}, nil
}

// Write appends e. It keeps the first error for Close to report, and
// writes nothing after it.
func (j *JournalWriter) Write(e JournalEntry) {
	b, err := json.Marshal(e)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	if err == nil {
		_, err = j.w.Write(append(b, '\n'))
	}
	j.err = err
}

// Close closes the journal and reports the first write error.
func (j *JournalWriter) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var cerr error
	if j.c != nil {
		cerr = j.c.Close()
	}
	return errors.Join(j.err, cerr)
}
