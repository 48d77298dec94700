package ledger

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Format is how WriteExport and WriteHistory write.
type Format int

// The formats.
const (
	FormatTable Format = iota + 1 // a table for people (History)
	FormatCSV                     // CSV with a header row
	FormatJSONL                   // a JSON object a line (Export)
	FormatJSON                    // one JSON document (History)
)

// String names the format as its flag does.
func (f Format) String() string {
	switch f {
	case FormatTable:
		return "table"
	case FormatCSV:
		return "csv"
	case FormatJSONL:
		return "jsonl"
	case FormatJSON:
		return "json"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Moment is a bound of an export or a history: a tick, or a time that the
// ledger's clock anchors turn into one. The zero Moment is no bound.
type Moment struct {
	Tick uint64
	// Time, when set, is the bound instead of Tick.
	Time time.Time
	set  bool
}

// TickMoment is the bound at tick t.
func TickMoment(t uint64) Moment { return Moment{Tick: t, set: true} }

// TimeMoment is the bound at time t.
func TimeMoment(t time.Time) Moment { return Moment{Time: t, set: true} }

// IsZero reports whether m is no bound.
func (m Moment) IsZero() bool { return !m.set }

// String returns m as ParseMoment reads it.
func (m Moment) String() string {
	switch {
	case !m.set:
		return ""
	case !m.Time.IsZero():
		return m.Time.Format(time.RFC3339Nano)
	}
	return strconv.FormatUint(m.Tick, 10)
}

// ParseMoment reads a bound as an operator writes it: a tick ("1234"), a
// duration back from now ("90s", "10m", "2h30m") or an RFC 3339 time
// ("2026-12-01T18:00:00Z"); "" is no bound.
func ParseMoment(s string, now time.Time) (Moment, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Moment{}, nil
	}
	if t, err := strconv.ParseUint(s, 10, 64); err == nil {
		if t > math.MaxInt64 {
			return Moment{}, fmt.Errorf("tick %s out of range", s)
		}
		return TickMoment(t), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return Moment{}, fmt.Errorf("%q: a duration back from now is positive", s)
		}
		return TimeMoment(now.Add(-d)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return TimeMoment(t), nil
	}
	return Moment{}, fmt.Errorf("%q: want a tick (1234), a duration back from now (90s, 10m, 2h) or an RFC 3339 time (2026-12-01T18:00:00Z)", s)
}

// Bounds is what a pair of Moments came to in ticks.
type Bounds struct {
	Filter Filter
	// Empty: the bounds hold no tick (an end before tick 0).
	Empty bool
	// SinceBasis and UntilBasis say how a time bound became a tick
	// ("" for a tick given as such, or none).
	SinceBasis TimeBasis
	UntilBasis TimeBasis
}

// Resolve turns since and until into ticks for the wallet cell ("" for
// every account), with the ledger's clock anchors where they are times.
func (l *Ledger) Resolve(ctx context.Context, cell string, since, until Moment) (Bounds, error) {
	b := Bounds{Filter: Filter{Cell: cell}}
	if since.set {
		b.Filter.SinceTick = since.Tick
		if !since.Time.IsZero() {
			n, basis, err := l.tickAt(ctx, l.db, since.Time, true)
			if err != nil {
				return b, fmt.Errorf("ledger: the tick at %s: %w", since, classify(err))
			}
			b.Filter.SinceTick, b.SinceBasis = uint64(max(n, 0)), basis
		}
	}
	if until.set {
		n := int64(until.Tick)
		if until.Time.IsZero() {
			if n == 0 {
				return b, fmt.Errorf("ledger: %w: an end at tick 0 ends before the first tick: give tick 1 or later", ErrInvalid)
			}
			if since.Time.IsZero() && uint64(n) < b.Filter.SinceTick {
				return b, fmt.Errorf("ledger: %w: ticks %d to %d: the end lies before the start", ErrInvalid, b.Filter.SinceTick, n)
			}
		} else {
			var err error
			if n, b.UntilBasis, err = l.tickAt(ctx, l.db, until.Time, false); err != nil {
				return b, fmt.Errorf("ledger: the tick at %s: %w", until, classify(err))
			}
		}
		if n <= 0 || uint64(n) < b.Filter.SinceTick {
			b.Empty = true // the times hold no tick
		} else {
			b.Filter.UntilTick = uint64(n)
		}
	}
	return b, nil
}

// RecordWriter writes records as CSV (with a header row) or JSON lines.
type RecordWriter struct {
	csv  *csv.Writer
	json *json.Encoder
}

// recordHeader is the header row of records in CSV.
var recordHeader = []string{"tick", "last_tick", "time", "time_basis", "rollup", "count", "wallet", "kind", "amount", "balance", "key", "id", "memo", "terms"}

// NewRecordWriter returns a writer of records to w in format, FormatCSV
// or FormatJSONL; a CSV writer writes its header row at once.
func NewRecordWriter(w io.Writer, format Format) (*RecordWriter, error) {
	switch format {
	case FormatCSV:
		rw := &RecordWriter{csv: csv.NewWriter(w)}
		return rw, rw.csv.Write(recordHeader)
	case FormatJSONL:
		return &RecordWriter{json: json.NewEncoder(w)}, nil
	}
	return nil, fmt.Errorf("ledger: %w: records are written as CSV or JSON lines, not %s", ErrInvalid, format)
}

// Write writes r.
func (rw *RecordWriter) Write(r Record) error {
	if rw.json != nil {
		return rw.json.Encode(r)
	}
	id, terms := "", ""
	if r.ID != 0 {
		id = strconv.FormatInt(r.ID, 10)
	}
	if c := r.Terms; c != nil {
		terms = fmt.Sprintf("tap_rate=%d tap_cap=%d was_rate=%d was_cap=%d", c.TapRate, c.TapCap, c.WasRate, c.WasCap)
	}
	return rw.csv.Write([]string{u64(r.Tick), u64(r.LastTick), csvTime(r.Time), string(r.TimeBasis), strconv.FormatBool(r.Rollup),
		strconv.FormatInt(r.Count, 10), r.Wallet, string(r.Kind), credits(r.Amount), optCredits(r.Balance), r.Key, id, r.Memo, terms})
}

// Flush writes what is buffered.
func (rw *RecordWriter) Flush() error {
	if rw.csv != nil {
		rw.csv.Flush()
		return rw.csv.Error()
	}
	return nil
}

func u64(v uint64) string            { return strconv.FormatUint(v, 10) }
func credits(c units.Credits) string { return strconv.FormatInt(int64(c), 10) }

func optCredits(c *units.Credits) string {
	if c == nil {
		return ""
	}
	return credits(*c)
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ReadOptions is what WriteExport and WriteHistory read and how they
// write it.
type ReadOptions struct {
	// Cell names one wallet; "" is every account (an export only).
	Cell         string
	Since, Until Moment
	// Format is FormatCSV or FormatJSONL for an export; FormatTable,
	// FormatCSV or FormatJSON for a history.
	Format Format
	// Tick is the engine's tick period, for the times of ticks that no
	// clock anchor covers; 0 means DefaultTick.
	Tick time.Duration
}

// openRead opens the ledger at path read-only, so that it may be read
// while the daemon writes, and resolves o's bounds.
func openRead(ctx context.Context, path string, o ReadOptions) (*Ledger, Bounds, error) {
	l, err := Open(ctx, path, Options{ReadOnly: true, Tick: o.Tick})
	if err != nil {
		return nil, Bounds{}, err
	}
	b, err := l.Resolve(ctx, o.Cell, o.Since, o.Until)
	if err == nil && o.Cell != "" {
		_, err = l.Account(ctx, o.Cell)
	}
	if err != nil {
		l.Close()
		return nil, b, err
	}
	return l, b, nil
}

// WriteExport writes the postings of the ledger at path that o selects
// (Export), opened read-only.
func WriteExport(ctx context.Context, w io.Writer, path string, o ReadOptions) error {
	if o.Format != FormatCSV && o.Format != FormatJSONL {
		return fmt.Errorf("ledger: %w: an export is CSV or JSON lines, not %s", ErrInvalid, o.Format)
	}
	l, b, err := openRead(ctx, path, o)
	if err != nil {
		return err
	}
	defer l.Close()
	bw := bufio.NewWriter(w)
	rw, err := NewRecordWriter(bw, o.Format)
	if err != nil {
		return err
	}
	if !b.Empty {
		err = l.Export(ctx, b.Filter, rw.Write)
	}
	return errors.Join(err, rw.Flush(), bw.Flush())
}

// WriteHistory writes the history of a wallet of the ledger at path
// (History), opened read-only: as a table for people, as CSV, or as one
// JSON document {"wallet", "since_tick", "until_tick", "points"}.
func WriteHistory(ctx context.Context, w io.Writer, path string, o ReadOptions) error {
	if o.Cell == "" {
		return fmt.Errorf("ledger: %w: a history is of one wallet: name it", ErrInvalid)
	}
	bw := bufio.NewWriter(w)
	hw, err := newHistoryWriter(bw, o.Format)
	if err != nil {
		return err
	}
	l, b, err := openRead(ctx, path, o)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := hw.begin(b); err != nil {
		return err
	}
	if !b.Empty {
		err = l.History(ctx, b.Filter, hw.point)
	}
	return errors.Join(err, hw.end(), bw.Flush())
}

// basisNote says how a time bound became a tick.
func basisNote(b TimeBasis) string {
	switch b {
	case TimeClock:
		return " (the time given, by the ledger's clock anchors)"
	case TimeEstimated:
		return " (the time given, estimated: no clock anchor before it)"
	}
	return ""
}

// historyWriter writes points in one format.
type historyWriter struct {
	w      io.Writer
	format Format
	csv    *csv.Writer
	tw     *tabwriter.Writer
	n      int
	// estimated, unknown: a time printed was estimated, a balance was
	// not known (the table's footnotes).
	estimated, unknown bool
}

func newHistoryWriter(w io.Writer, f Format) (*historyWriter, error) {
	switch f {
	case FormatTable, FormatCSV, FormatJSON:
		return &historyWriter{w: w, format: f}, nil
	}
	return nil, fmt.Errorf("ledger: %w: a history is a table, CSV or JSON, not %s", ErrInvalid, f)
}

// historyHeader is the header row of a history in CSV.
var historyHeader = []string{"tick", "last_tick", "time", "time_basis", "rollup", "balance",
	"payment", "energy", "tax", "rent", "tap", "income", "endow", "fund", "mint", "refund", "close", "terms_changes"}

// tableBlock is how many points the table aligns at a time.
const tableBlock = 1000

func (hw *historyWriter) begin(b Bounds) error {
	f := b.Filter
	switch hw.format {
	case FormatCSV:
		hw.csv = csv.NewWriter(hw.w)
		return hw.csv.Write(historyHeader)
	case FormatJSON:
		head, err := json.Marshal(struct {
			Wallet    string `json:"wallet"`
			SinceTick uint64 `json:"since_tick"`
			UntilTick uint64 `json:"until_tick,omitempty"`
		}{f.Cell, f.SinceTick, f.UntilTick})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(hw.w, "%s,\n  \"points\": [", head[:len(head)-1])
		return err
	}
	span := fmt.Sprintf("from tick %d%s", f.SinceTick, basisNote(b.SinceBasis))
	if f.UntilTick != 0 {
		span += fmt.Sprintf(" to tick %d%s", f.UntilTick, basisNote(b.UntilBasis))
	}
	if b.Empty {
		span = "in no tick: the times given hold none"
	}
	fmt.Fprintf(hw.w, "history of wallet %s %s; amounts in credits (1 credit = 1 µJ), what it paid negative\n", f.Cell, span)
	hw.tw = tabwriter.NewWriter(hw.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	return hw.header()
}

func (hw *historyWriter) header() error {
	_, err := fmt.Fprintln(hw.tw, "TICK\tTIME (UTC)\tBALANCE\tPAYMENT\tENERGY\tTAX\tRENT\tTAP\tINCOME\tOTHER\t")
	return err
}

func (hw *historyWriter) point(p Point) error {
	defer func() { hw.n++ }()
	switch hw.format {
	case FormatCSV:
		return hw.csv.Write([]string{u64(p.Tick), u64(p.LastTick), csvTime(p.Time), string(p.TimeBasis), strconv.FormatBool(p.Rollup),
			optCredits(p.Balance), credits(p.Payment), credits(p.Energy), credits(p.Tax), credits(p.Rent), credits(p.Tap),
			credits(p.Income), credits(p.Endow), credits(p.Fund), credits(p.Mint), credits(p.Refund), credits(p.Close),
			strconv.Itoa(p.TermsChanges)})
	case FormatJSON:
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		sep := ","
		if hw.n == 0 {
			sep = ""
		}
		_, err = fmt.Fprintf(hw.w, "%s\n    %s", sep, b)
		return err
	}
	if hw.n > 0 && hw.n%tableBlock == 0 {
		if err := hw.tw.Flush(); err != nil {
			return err
		}
	}
	ticks := u64(p.Tick)
	if p.Rollup {
		ticks = fmt.Sprintf("%d-%d", p.Tick, p.LastTick)
	}
	when := "-"
	if p.Time != nil {
		when = p.Time.UTC().Format("2006-01-02 15:04:05.000")
		if p.TimeBasis == TimeEstimated {
			when, hw.estimated = "~"+when, true
		}
	}
	balance := "?"
	if p.Balance != nil {
		balance = credits(*p.Balance)
	} else {
		hw.unknown = true
	}
	var other []string
	for _, k := range []Kind{KindEndow, KindFund, KindMint, KindRefund, KindClose} {
		if a := *p.field(k); a != 0 {
			other = append(other, fmt.Sprintf("%s %+d", k, a))
		}
	}
	if p.TermsChanges > 0 {
		other = append(other, fmt.Sprintf("terms ×%d", p.TermsChanges))
	}
	_, err := fmt.Fprintf(hw.tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", ticks, when, balance,
		p.Payment, p.Energy, p.Tax, p.Rent, p.Tap, p.Income, strings.Join(other, ", "))
	return err
}

func (hw *historyWriter) end() error {
	switch hw.format {
	case FormatCSV:
		hw.csv.Flush()
		return hw.csv.Error()
	case FormatJSON:
		_, err := fmt.Fprint(hw.w, "\n  ]\n}\n")
		return err
	}
	if err := hw.tw.Flush(); err != nil {
		return err
	}
	if hw.n == 0 {
		fmt.Fprintln(hw.w, "(nothing posted in those ticks)")
	}
	if hw.estimated {
		fmt.Fprintln(hw.w, "~: estimated time: no clock anchor at or before the tick; reckoned by the tick period, assuming the engine ran without a gap")
	}
	if hw.unknown {
		fmt.Fprintln(hw.w, "?: the balance is not known there (see docs/LEDGER.md, Export and history)")
	}
	return nil
}
