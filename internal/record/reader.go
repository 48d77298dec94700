package record

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// ErrCorrupt is wrapped by ReadRun errors caused by malformed files.
var ErrCorrupt = errors.New("run directory is corrupt")

// ReadRun reads a run directory written by a Writer. A run cut short (no
// summary.json, a torn last line) reads as far as its files are whole; a
// malformed file gives an error wrapping ErrCorrupt that names the file and
// line.
func ReadRun(dir string) (Run, error) {
	var r Run
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return r, fmt.Errorf("read run: %w", err)
	}
	if err := json.Unmarshal(b, &r.Meta); err != nil {
		return r, fmt.Errorf("%w: %s: %v", ErrCorrupt, MetaFile, err)
	}

	byElapsed := map[string]int{}
	err = readCSV(dir, HostFile, hostHeader, func(line int, rec []string) error {
		el, err := parseSeconds(rec[0])
		if err != nil {
			return err
		}
		var f [3]float64
		for i, col := range []int{1, 2, 4} {
			if f[i], err = strconv.ParseFloat(rec[col], 64); err != nil || math.IsNaN(f[i]) {
				return fmt.Errorf("column %s: bad number %q", hostHeader[col], rec[col])
			}
		}
		e, err := parseJoules(rec[3])
		if err != nil {
			return err
		}
		byElapsed[rec[0]] = len(r.Samples)
		r.Samples = append(r.Samples, Sample{Elapsed: el, Host: HostSample{
			Temperature: units.Celsius(f[0]), Power: units.Power(f[1]), Energy: e, Utilisation: f[2],
		}})
		return nil
	})
	if err != nil {
		return r, err
	}
	cellIndex := func(rec []string) (*CellSample, error) {
		i, ok := byElapsed[rec[0]]
		if !ok {
			return nil, fmt.Errorf("no host sample at elapsed %s", rec[0])
		}
		s := &r.Samples[i]
		for j := range s.Cells {
			if s.Cells[j].Cell == rec[1] {
				return &s.Cells[j], nil
			}
		}
		s.Cells = append(s.Cells, CellSample{Cell: rec[1]})
		return &s.Cells[len(s.Cells)-1], nil
	}
	err = readCSV(dir, CellsFile, cellsHeader, func(line int, rec []string) error {
		c, err := cellIndex(rec)
		if err != nil {
			return err
		}
		if c.CPUTime, err = parseSeconds(rec[2]); err != nil {
			return err
		}
		if c.CPUShare, err = strconv.ParseFloat(rec[3], 64); err != nil {
			return fmt.Errorf("column cpu_share: %w", err)
		}
		if c.Energy, err = parseJoules(rec[4]); err != nil {
			return err
		}
		if c.MemoryBytes, err = strconv.ParseUint(rec[5], 10, 64); err != nil {
			return fmt.Errorf("column memory_bytes: %w", err)
		}
		c.UsefulCounter, c.UsefulUnit = rec[6], rec[7]
		return nil
	})
	if err != nil {
		return r, err
	}
	err = readCSV(dir, CountersFile, countersHeader, func(line int, rec []string) error {
		c, err := cellIndex(rec)
		if err != nil {
			return err
		}
		v, err := strconv.ParseUint(rec[3], 10, 64)
		if err != nil {
			return fmt.Errorf("column value: %w", err)
		}
		if c.Counters == nil {
			c.Counters = map[string]uint64{}
		}
		c.Counters[rec[2]] = v
		return nil
	})
	if err != nil {
		return r, err
	}
	if err := readEconomy(dir, &r, byElapsed); err != nil {
		return r, err
	}
	r.Events, err = readEvents(filepath.Join(dir, EventsFile))
	return r, err
}

// readCSV reads name, checks its header and calls row for each record. The
// last record may be torn (a run killed mid-write): if it does not parse it
// is dropped; a bad record anywhere else is an error.
func readCSV(dir, name string, header []string, row func(line int, rec []string) error) error {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("read run: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	got, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%w: %s: header: %v", ErrCorrupt, name, err)
	}
	if !slices.Equal(got, header) {
		return fmt.Errorf("%w: %s: header %v, want %v", ErrCorrupt, name, got, header)
	}
	type numbered struct {
		line int
		rec  []string
	}
	var recs []numbered
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return fmt.Errorf("%w: %s line %d: %v", ErrCorrupt, name, line, err)
		}
		recs = append(recs, numbered{line, rec})
	}
	for i, r := range recs {
		err := func() error {
			if len(r.rec) != len(header) {
				return fmt.Errorf("%d fields, want %d", len(r.rec), len(header))
			}
			return row(r.line, r.rec)
		}()
		if err != nil {
			if i == len(recs)-1 {
				return nil // torn last line
			}
			return fmt.Errorf("%w: %s line %d: %v", ErrCorrupt, name, r.line, err)
		}
	}
	return nil
}

// readEconomy reads market.csv and wallets.csv where the run has them.
func readEconomy(dir string, r *Run, byElapsed map[string]int) error {
	if _, err := os.Stat(filepath.Join(dir, MarketFile)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	at := func(el string) (*Sample, error) {
		i, ok := byElapsed[el]
		if !ok {
			return nil, fmt.Errorf("no host sample at elapsed %s", el)
		}
		return &r.Samples[i], nil
	}
	err := readCSV(dir, MarketFile, marketHeader, func(line int, rec []string) error {
		s, err := at(rec[0])
		if err != nil {
			return err
		}
		var m MarketSample
		if m.Tick, err = strconv.ParseUint(rec[1], 10, 64); err != nil {
			return fmt.Errorf("column tick: %w", err)
		}
		if m.Multiplier, err = strconv.ParseFloat(rec[2], 64); err != nil || math.IsNaN(m.Multiplier) {
			return fmt.Errorf("column multiplier: bad number %q", rec[2])
		}
		if m.Reserve, err = parseCredits(rec[3]); err != nil {
			return fmt.Errorf("column reserve_price: %w", err)
		}
		if m.Clearing, err = parseCredits(rec[4]); err != nil {
			return fmt.Errorf("column clearing_price: %w", err)
		}
		if m.FailSafe, err = strconv.ParseBool(rec[5]); err != nil {
			return fmt.Errorf("column fail_safe: %w", err)
		}
		s.Market = &m
		return nil
	})
	if err != nil {
		return err
	}
	return readCSV(dir, WalletsFile, walletsHeader, func(line int, rec []string) error {
		s, err := at(rec[0])
		if err != nil {
			return err
		}
		w := WalletSample{Cell: rec[1]}
		if err := w.State.UnmarshalText([]byte(rec[3])); err != nil {
			return fmt.Errorf("column state: %w", err)
		}
		for i, p := range []*units.Credits{&w.Balance, nil, &w.Paid, &w.Tax} {
			if p == nil {
				continue
			}
			if *p, err = parseCredits(rec[2+i]); err != nil {
				return fmt.Errorf("column %s: %w", walletsHeader[2+i], err)
			}
		}
		s.Wallets = append(s.Wallets, w)
		return nil
	})
}

func readEvents(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read run: %w", err)
	}
	defer f.Close()
	var evs []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return evs, fmt.Errorf("%w: %s line %d: %v", ErrCorrupt, EventsFile, line, err)
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		return evs, fmt.Errorf("%w: %s: %v", ErrCorrupt, EventsFile, err)
	}
	return evs, nil
}

func parseCredits(s string) (units.Credits, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	return units.Credits(v), err
}

func parseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > math.MaxInt64/1e9 {
		return 0, fmt.Errorf("bad seconds %q", s)
	}
	return time.Duration(math.Round(f * 1e9)), nil
}

// parseJoules parses "J.UUUUUU" exactly into µJ.
func parseJoules(s string) (units.Energy, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > math.MaxUint64/1e6 {
		return 0, fmt.Errorf("bad joules %q", s)
	}
	return units.Energy(math.Round(f * 1e6)), nil
}
