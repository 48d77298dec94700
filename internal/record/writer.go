package record

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"
)

// File names inside a run directory.
const (
	MetaFile     = "meta.json"
	HostFile     = "host.csv"
	CellsFile    = "cells.csv"
	CountersFile = "counters.csv"
	MarketFile   = "market.csv"
	WalletsFile  = "wallets.csv"
	EventsFile   = "events.jsonl"
	SummaryFile  = "summary.json"
)

var (
	hostHeader     = []string{"elapsed_seconds", "temperature_celsius", "power_watts", "energy_joules", "utilisation"}
	cellsHeader    = []string{"elapsed_seconds", "cell", "cpu_seconds", "cpu_share", "energy_joules", "memory_bytes", "useful_counter", "useful_unit"}
	countersHeader = []string{"elapsed_seconds", "cell", "counter", "value"}
	marketHeader   = []string{"elapsed_seconds", "tick", "multiplier", "reserve_price", "clearing_price", "fail_safe"}
	walletsHeader  = []string{"elapsed_seconds", "cell", "balance", "state", "paid", "tax"}
)

// ErrClosed is returned by a Writer that has been closed.
var ErrClosed = errors.New("record: writer closed")

// Writer appends samples and events to a run directory. It is safe for
// concurrent use.
type Writer struct {
	dir string

	mu       sync.Mutex
	closed   bool
	meta     Meta
	samples  []Sample
	events   []Event
	files    []*os.File
	host     *csv.Writer
	cells    *csv.Writer
	counters *csv.Writer
	market   *csv.Writer // nil until the first sample with a market
	wallets  *csv.Writer
	eventsF  *os.File
}

// Create makes the run directory dir (which must not already hold a run),
// writes meta.json and the CSV headers, and returns a Writer for it.
func Create(dir string, meta Meta) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	// A directory may hold other things (a run's ledger), but not a run.
	if _, err := os.Stat(filepath.Join(dir, MetaFile)); err == nil {
		return nil, fmt.Errorf("%s already holds a run", dir)
	}
	if err := writeJSON(filepath.Join(dir, MetaFile), meta); err != nil {
		return nil, err
	}
	w := &Writer{dir: dir, meta: meta}
	open := func(name string, header []string) (*csv.Writer, error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		w.files = append(w.files, f)
		cw := csv.NewWriter(f)
		if err := cw.Write(header); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		cw.Flush()
		return cw, cw.Error()
	}
	var err error
	fail := func(err error) (*Writer, error) {
		for _, f := range w.files {
			f.Close()
		}
		return nil, err
	}
	if w.host, err = open(HostFile, hostHeader); err != nil {
		return fail(err)
	}
	if w.cells, err = open(CellsFile, cellsHeader); err != nil {
		return fail(err)
	}
	if w.counters, err = open(CountersFile, countersHeader); err != nil {
		return fail(err)
	}
	if w.eventsF, err = os.Create(filepath.Join(dir, EventsFile)); err != nil {
		return fail(fmt.Errorf("create %s: %w", EventsFile, err))
	}
	w.files = append(w.files, w.eventsF)
	return w, nil
}

// Dir returns the run directory.
func (w *Writer) Dir() string { return w.dir }

// Write appends one sample to the CSV files and flushes them.
func (w *Writer) Write(s Sample) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	el := seconds(s.Elapsed)
	if err := w.host.Write([]string{
		el,
		strconv.FormatFloat(float64(s.Host.Temperature), 'g', -1, 64),
		strconv.FormatFloat(float64(s.Host.Power), 'g', -1, 64),
		joules(uint64(s.Host.Energy)),
		strconv.FormatFloat(s.Host.Utilisation, 'g', -1, 64),
	}); err != nil {
		return fmt.Errorf("write %s: %w", HostFile, err)
	}
	for _, c := range s.Cells {
		if err := w.cells.Write([]string{
			el, c.Cell, seconds(c.CPUTime),
			strconv.FormatFloat(c.CPUShare, 'g', -1, 64),
			joules(uint64(c.Energy)),
			strconv.FormatUint(c.MemoryBytes, 10),
			c.UsefulCounter, c.UsefulUnit,
		}); err != nil {
			return fmt.Errorf("write %s: %w", CellsFile, err)
		}
		for _, name := range sortedKeys(c.Counters) {
			if err := w.counters.Write([]string{el, c.Cell, name, strconv.FormatUint(c.Counters[name], 10)}); err != nil {
				return fmt.Errorf("write %s: %w", CountersFile, err)
			}
		}
	}
	if s.Market != nil || len(s.Wallets) > 0 {
		if err := w.writeEconomy(el, s); err != nil {
			return err
		}
	}
	for _, cw := range []*csv.Writer{w.host, w.cells, w.counters, w.market, w.wallets} {
		if cw == nil {
			continue
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("flush run files: %w", err)
		}
	}
	w.samples = append(w.samples, cloneSample(s))
	return nil
}

// writeEconomy writes a sample's market and wallet rows, creating their
// files on first use so that runs without an economy have none.
func (w *Writer) writeEconomy(el string, s Sample) error {
	if w.market == nil {
		for _, f := range []struct {
			name   string
			header []string
			cw     **csv.Writer
		}{{MarketFile, marketHeader, &w.market}, {WalletsFile, walletsHeader, &w.wallets}} {
			fh, err := os.Create(filepath.Join(w.dir, f.name))
			if err != nil {
				return fmt.Errorf("create %s: %w", f.name, err)
			}
			w.files = append(w.files, fh)
			*f.cw = csv.NewWriter(fh)
			if err := (*f.cw).Write(f.header); err != nil {
				return fmt.Errorf("write %s: %w", f.name, err)
			}
		}
	}
	if m := s.Market; m != nil {
		if err := w.market.Write([]string{el, strconv.FormatUint(m.Tick, 10),
			strconv.FormatFloat(m.Multiplier, 'g', -1, 64), strconv.FormatInt(int64(m.Reserve), 10),
			strconv.FormatInt(int64(m.Clearing), 10), strconv.FormatBool(m.FailSafe)}); err != nil {
			return fmt.Errorf("write %s: %w", MarketFile, err)
		}
	}
	for _, wl := range s.Wallets {
		if err := w.wallets.Write([]string{el, wl.Cell, strconv.FormatInt(int64(wl.Balance), 10), string(wl.State),
			strconv.FormatInt(int64(wl.Paid), 10), strconv.FormatInt(int64(wl.Tax), 10)}); err != nil {
			return fmt.Errorf("write %s: %w", WalletsFile, err)
		}
	}
	return nil
}

// Event appends one event to events.jsonl.
func (w *Writer) Event(e Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if _, err := w.eventsF.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", EventsFile, err)
	}
	w.events = append(w.events, e)
	return nil
}

// Run returns what has been written so far.
func (w *Writer) Run() Run {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := Run{Meta: w.meta, Samples: make([]Sample, len(w.samples)), Events: append([]Event(nil), w.events...)}
	for i, s := range w.samples {
		r.Samples[i] = cloneSample(s)
	}
	return r
}

// Close summarises the samples written, writes summary.json, closes the
// files and returns the summary. It is safe to call more than once; later
// calls return ErrClosed.
func (w *Writer) Close() (Summary, error) {
	run := w.Run()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return Summary{}, ErrClosed
	}
	w.closed = true
	var errs []error
	sum := Summarize(run)
	if err := writeJSON(filepath.Join(w.dir, SummaryFile), sum); err != nil {
		errs = append(errs, err)
	}
	for _, f := range w.files {
		if err := f.Sync(); err != nil {
			errs = append(errs, err)
		}
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return sum, errors.Join(errs...)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// seconds formats d in seconds with nanosecond precision.
func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 9, 64) }

// joules formats an energy in µJ as joules with µJ precision.
func joules(uj uint64) string {
	return fmt.Sprintf("%d.%06d", uj/1_000_000, uj%1_000_000)
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func cloneSample(s Sample) Sample {
	out := s
	if s.Market != nil {
		m := *s.Market
		out.Market = &m
	}
	out.Wallets = append([]WalletSample(nil), s.Wallets...)
	out.Cells = make([]CellSample, len(s.Cells))
	for i, c := range s.Cells {
		out.Cells[i] = c
		if c.Counters != nil {
			out.Cells[i].Counters = make(map[string]uint64, len(c.Counters))
			for k, v := range c.Counters {
				out.Cells[i].Counters[k] = v
			}
		}
	}
	return out
}
