package ledger_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/clock/clocktest"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/ledger/ledgertest"
	"github.com/maxwellhq/maxwell/internal/units"
)

// historyLedger writes ledgertest.History's ledger and opens it read-only,
// closed at cleanup.
func historyLedger(t *testing.T) (*ledger.Ledger, ledgertest.Posted) {
	t.Helper()
	p := ledgertest.History(t, filepath.Join(t.TempDir(), "ledger.db"))
	l, err := ledger.Open(t.Context(), p.Path, ledger.Options{ReadOnly: true, Tick: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, p
}

// export returns what Export yields for f.
func export(t *testing.T, l *ledger.Ledger, f ledger.Filter) []ledger.Record {
	t.Helper()
	var rs []ledger.Record
	if err := l.Export(t.Context(), f, func(r ledger.Record) error { rs = append(rs, r); return nil }); err != nil {
		t.Fatalf("export %+v: %v", f, err)
	}
	return rs
}

// history returns what History yields for f.
func history(t *testing.T, l *ledger.Ledger, f ledger.Filter) []ledger.Point {
	t.Helper()
	var ps []ledger.Point
	if err := l.History(t.Context(), f, func(p ledger.Point) error { ps = append(ps, p); return nil }); err != nil {
		t.Fatalf("history %+v: %v", f, err)
	}
	return ps
}

func isPerTick(k ledger.Kind) bool {
	return slices.Contains([]ledger.Kind{ledger.KindTap, ledger.KindIncome, ledger.KindPayment, ledger.KindEnergy, ledger.KindTax, ledger.KindRent}, k)
}

// TestExport reads back everything ledgertest.History posted: every
// posting once (whole, per tick, rolled up), in tick order, with the
// balances the ledger knows and the times its clock anchors give.
func TestExport(t *testing.T) {
	ctx := t.Context()
	l, p := historyLedger(t)
	rs := export(t, l, ledger.Filter{})

	count := map[string]map[ledger.Kind]int64{}
	sum := map[string]map[ledger.Kind]units.Credits{}
	seen := map[string]bool{}
	var last uint64
	var rollups, perTick, whole, balances int
	for i, r := range rs {
		if count[r.Wallet] == nil {
			count[r.Wallet], sum[r.Wallet] = map[ledger.Kind]int64{}, map[ledger.Kind]units.Credits{}
		}
		count[r.Wallet][r.Kind] += r.Count
		sum[r.Wallet][r.Kind] += r.Amount
		if r.LastTick < last {
			t.Errorf("record %d %+v: out of tick order (after tick %d)", i, r, last)
		}
		last = r.LastTick
		switch {
		case r.Rollup:
			rollups++
			if r.Tick >= 30 || r.LastTick >= 30 || r.Tick > r.LastTick || r.Key != "" || r.ID != 0 || r.Count < 1 {
				t.Errorf("rollup record %+v: want a span below the watermark 30, no key", r)
			}
		case r.ID == 0:
			perTick++
			if r.Tick < 30 || r.Tick != r.LastTick || r.Count != 1 || r.Key != ledger.Key(r.Tick, r.Wallet, string(r.Kind)) || !isPerTick(r.Kind) {
				t.Errorf("per-tick record %+v: want one posting at or above the watermark 30 under its conventional key", r)
			}
		default:
			whole++
			if seen[r.Key] {
				t.Errorf("transaction %q read twice", r.Key)
			}
			seen[r.Key] = true
		}
		// The balances: known where the order is.
		if r.Balance != nil {
			balances++
		}
		switch {
		case r.ID != 0:
			want, ok := p.AfterTx[r.Key]
			if !ok {
				t.Errorf("record %+v: no such transaction posted", r)
			}
			if inside := p.Inside[r.Key]; inside != (r.Balance == nil) || r.Balance != nil && *r.Balance != want {
				t.Errorf("record %+v: balance %v, want %d (inside a rollup: %t, then none)", r, r.Balance, want, inside)
			}
		case r.Balance != nil:
			if want, ok := p.AfterTick[r.Wallet][r.LastTick]; !ok || *r.Balance != want {
				t.Errorf("record %+v: balance %d, want %d after %s's postings of tick %d", r, *r.Balance, want, r.Wallet, r.LastTick)
			}
		}
		// The times: from the anchors at ticks 1 and 20; tick 0, before
		// the first, reckoned back from it.
		basis := ledger.TimeClock
		if r.Tick == 0 {
			basis = ledger.TimeEstimated
		}
		if r.Time == nil || !r.Time.Equal(ledgertest.TimeOf(r.Tick)) || r.TimeBasis != basis {
			t.Errorf("record %+v: time %v (%s), want %v (%s)", r, r.Time, r.TimeBasis, ledgertest.TimeOf(r.Tick), basis)
		}
	}
	if rollups == 0 || perTick == 0 || whole != len(p.AfterTx) {
		t.Errorf("%d rollup records, %d per tick, %d transactions stored whole of %d posted", rollups, perTick, whole, len(p.AfterTx))
	}
	t.Logf("%d records: %d rolled up, %d per tick, %d whole; %d with a balance", len(rs), rollups, perTick, whole, balances)
	for w, byKind := range p.Count {
		for k, n := range byKind {
			if count[w][k] != n || sum[w][k] != p.Sum[w][k] {
				t.Errorf("wallet %s, %s: %d postings of %d credits read, %d of %d posted", w, k, count[w][k], sum[w][k], n, p.Sum[w][k])
			}
		}
		a, err := l.Account(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		var total units.Credits
		for _, s := range sum[w] {
			total += s
		}
		if total != a.Balance {
			t.Errorf("wallet %s: records sum to %d, its balance is %d", w, total, a.Balance)
		}
	}

	// Where the whole transactions are: at the tick the engine had
	// reached, though posted at tick 0.
	for key, tick := range map[string]uint64{"fund/cell:b/12": 12, "fund/cell:b/15": 15, "fund/cell:a/1": 34,
		"terms/cell:a/1": 25, "refund/20/a": 20, ledger.Key(30, "c", "close"): 30, "open/cell:a": 0} {
		i := slices.IndexFunc(rs, func(r ledger.Record) bool { return r.Key == key })
		if i < 0 || rs[i].Tick != tick {
			t.Errorf("transaction %q: at %+v, want tick %d", key, rs[i], tick)
		}
	}
	if i := slices.IndexFunc(rs, func(r ledger.Record) bool { return r.Kind == ledger.KindTerms }); rs[i].Amount != 0 || rs[i].Terms == nil ||
		*rs[i].Terms != (ledger.TermsChange{Wallet: "a", TapRate: 20, TapCap: 10_000_000, WasRate: 10, WasCap: 10_000_000}) {
		t.Errorf("the change of terms: %+v", rs[i])
	}
	if i := slices.IndexFunc(rs, func(r ledger.Record) bool { return r.Kind == ledger.KindClose }); rs[i].Balance == nil || *rs[i].Balance != 0 || rs[i].Wallet != "c" {
		t.Errorf("c's close: %+v, want c's balance 0 after it", rs[i])
	}
}

// TestExportFilters: an export for a wallet, a range of ticks or both is
// exactly the records of the whole export that it selects, balances
// included (those before the range summed by the database).
func TestExportFilters(t *testing.T) {
	l, _ := historyLedger(t)
	all := export(t, l, ledger.Filter{})
	for _, f := range []ledger.Filter{
		{Cell: "a"},
		{Cell: "b", SinceTick: 12},
		{Cell: "b", SinceTick: 13},
		{SinceTick: 13, UntilTick: 33},
		{Cell: "c", SinceTick: 25, UntilTick: 35},
		{SinceTick: 31},
		{UntilTick: 9},
		{Cell: "b", SinceTick: 14, UntilTick: 14},
		{Cell: "a", SinceTick: 34, UntilTick: 34},
		{SinceTick: 41},
	} {
		t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
			var want []ledger.Record
			for _, r := range all {
				if (f.Cell == "" || r.Wallet == f.Cell) && r.LastTick >= f.SinceTick && (f.UntilTick == 0 || r.Tick <= f.UntilTick) {
					want = append(want, r)
				}
			}
			got := export(t, l, f)
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i := range got {
				if g, w := jsonOf(t, got[i]), jsonOf(t, want[i]); g != w {
					t.Errorf("record %d:\n%s\nwant\n%s", i, g, w)
				}
			}
		})
	}
	for _, tc := range []struct {
		f    ledger.Filter
		want error
	}{
		{ledger.Filter{Cell: "nobody"}, ledger.ErrNoAccount},
		{ledger.Filter{Cell: ledger.Mint}, ledger.ErrInvalid},
		{ledger.Filter{SinceTick: 20, UntilTick: 10}, ledger.ErrInvalid},
	} {
		if err := l.Export(t.Context(), tc.f, func(ledger.Record) error { return nil }); !errors.Is(err, tc.want) {
			t.Errorf("export %+v: %v, want %v", tc.f, err, tc.want)
		}
	}
	stop := errors.New("enough")
	n := 0
	if err := l.Export(t.Context(), ledger.Filter{}, func(ledger.Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("export stopped by its callback: %v after %d records", err, n)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExportFormats writes the export as CSV and JSON lines and parses
// both back into the records.
func TestExportFormats(t *testing.T) {
	l, p := historyLedger(t)
	want := export(t, l, ledger.Filter{})
	for _, format := range []ledger.Format{ledger.FormatCSV, ledger.FormatJSONL} {
		t.Run(format.String(), func(t *testing.T) {
			var out bytes.Buffer
			if err := ledger.WriteExport(t.Context(), &out, p.Path, ledger.ReadOptions{Format: format, Tick: time.Second}); err != nil {
				t.Fatal(err)
			}
			var got []ledger.Record
			if format == ledger.FormatJSONL {
				got = parseJSONL(t, &out)
			} else {
				got = parseCSV(t, &out)
			}
			if len(got) != len(want) {
				t.Fatalf("%d records read back, want %d", len(got), len(want))
			}
			for i := range got {
				if g, w := jsonOf(t, got[i]), jsonOf(t, want[i]); g != w {
					t.Errorf("record %d:\n%s\nwant\n%s", i, g, w)
				}
			}
		})
	}
	if err := ledger.WriteExport(t.Context(), io.Discard, p.Path, ledger.ReadOptions{Format: ledger.FormatTable}); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("an export as a table: %v, want ErrInvalid", err)
	}
}

func parseJSONL(t *testing.T, r io.Reader) []ledger.Record {
	t.Helper()
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var rs []ledger.Record
	for dec.More() {
		var rec ledger.Record
		if err := dec.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, rec)
	}
	return rs
}

// parseCSV reads records back from the CSV of a RecordWriter.
func parseCSV(t *testing.T, r io.Reader) []ledger.Record {
	t.Helper()
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := rows[0]
	if want := "tick,last_tick,time,time_basis,rollup,count,wallet,kind,amount,balance,key,id,memo,terms"; strings.Join(head, ",") != want {
		t.Fatalf("header %q, want %q", strings.Join(head, ","), want)
	}
	num := func(s string) int64 {
		if s == "" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var rs []ledger.Record
	for _, row := range rows[1:] {
		c := func(name string) string { return row[slices.Index(head, name)] }
		rec := ledger.Record{Tick: uint64(num(c("tick"))), LastTick: uint64(num(c("last_tick"))), TimeBasis: ledger.TimeBasis(c("time_basis")),
			Rollup: c("rollup") == "true", Count: num(c("count")), Wallet: c("wallet"), Kind: ledger.Kind(c("kind")),
			Amount: units.Credits(num(c("amount"))), Key: c("key"), ID: num(c("id")), Memo: c("memo")}
		if s := c("time"); s != "" {
			tm, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				t.Fatal(err)
			}
			rec.Time = &tm
		}
		if s := c("balance"); s != "" {
			b := units.Credits(num(s))
			rec.Balance = &b
		}
		if s := c("terms"); s != "" {
			var tc ledger.TermsChange
			if _, err := fmt.Sscanf(s, "tap_rate=%d tap_cap=%d was_rate=%d was_cap=%d", &tc.TapRate, &tc.TapCap, &tc.WasRate, &tc.WasCap); err != nil {
				t.Fatalf("terms %q: %v", s, err)
			}
			tc.Wallet = rec.Wallet
			rec.Terms = &tc
		}
		rs = append(rs, rec)
	}
	return rs
}

// TestHistory: a wallet's history sums what it was posted, kind by kind,
// ends at its balance in the accounts, and has a point per tick in the
// window and per rollup below it, the funds inside a rollup in its point.
func TestHistory(t *testing.T) {
	ctx := t.Context()
	l, p := historyLedger(t)
	for _, w := range []string{"a", "b", "c"} {
		t.Run(w, func(t *testing.T) {
			ps := history(t, l, ledger.Filter{Cell: w})
			acc, err := l.Account(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			end := ps[len(ps)-1]
			if end.Balance == nil || *end.Balance != acc.Balance {
				t.Errorf("last point %+v: balance %v, want %d as in the accounts", end, end.Balance, acc.Balance)
			}
			got := map[ledger.Kind]units.Credits{}
			terms := 0
			for i, pt := range ps {
				for _, k := range []ledger.Kind{ledger.KindPayment, ledger.KindEnergy, ledger.KindTax, ledger.KindRent, ledger.KindTap,
					ledger.KindIncome, ledger.KindEndow, ledger.KindFund, ledger.KindMint, ledger.KindRefund, ledger.KindClose} {
					got[k] += pointField(pt, k)
				}
				terms += pt.TermsChanges
				if i > 0 && pt.Tick <= ps[i-1].LastTick {
					t.Errorf("point %d %+v overlaps the one before %+v", i, pt, ps[i-1])
				}
				if pt.Tick > 0 && pt.Rollup != (pt.LastTick < 30) || !pt.Rollup && pt.Tick != pt.LastTick {
					t.Errorf("point %+v: want rolled up below tick 30, per tick from it (and the opens at tick 0)", pt)
				}
				// Every balance is known in a history of whole buckets
				// and ticks.
				if pt.Balance == nil {
					t.Errorf("point %+v: no balance", pt)
				} else if want, ok := p.AfterTick[w][pt.LastTick]; ok && (pt.Rollup || pt.Fund == 0 && pt.Close == 0) && *pt.Balance != want {
					// (A fund or close after a tick's postings is in its
					// point, and the balance is after it: see below.)
					t.Errorf("point %+v: balance %d, want %d after the postings of tick %d", pt, *pt.Balance, want, pt.LastTick)
				}
			}
			for k, s := range p.Sum[w] {
				if got[k] != s {
					t.Errorf("%s: %d in the history, %d posted", k, got[k], s)
				}
			}
			if terms != int(p.Count[w][ledger.KindTerms]) {
				t.Errorf("%d changes of terms in the history, %d made", terms, p.Count[w][ledger.KindTerms])
			}
		})
	}
	// b's bucket of ticks 10 to 14 holds the fund between ticks 12 and 13.
	ps := history(t, l, ledger.Filter{Cell: "b", SinceTick: 10, UntilTick: 19})
	if len(ps) != 2 || ps[0].Tick != 10 || ps[0].LastTick != 14 || ps[0].Fund != 500 || ps[1].Fund != 500 ||
		ps[0].Balance == nil || *ps[0].Balance != p.AfterTick["b"][14] || ps[1].Balance == nil || *ps[1].Balance != p.AfterTick["b"][19] {
		t.Errorf("b's history of ticks 10 to 19: %+v", ps)
	}
	// a's last tick: the fund after tick 34 is its own point.
	ps = history(t, l, ledger.Filter{Cell: "a", SinceTick: 34, UntilTick: 34})
	if len(ps) != 1 || ps[0].Fund != 500 || ps[0].Payment != -134 || ps[0].Balance == nil || *ps[0].Balance != p.AfterTx["fund/cell:a/1"] {
		t.Errorf("a's history of tick 34: %+v", ps)
	}
	if err := l.History(ctx, ledger.Filter{}, func(ledger.Point) error { return nil }); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("a history of no wallet: %v, want ErrInvalid", err)
	}
}

func pointField(p ledger.Point, k ledger.Kind) units.Credits {
	return map[ledger.Kind]units.Credits{ledger.KindPayment: p.Payment, ledger.KindEnergy: p.Energy, ledger.KindTax: p.Tax,
		ledger.KindRent: p.Rent, ledger.KindTap: p.Tap, ledger.KindIncome: p.Income, ledger.KindEndow: p.Endow, ledger.KindFund: p.Fund,
		ledger.KindMint: p.Mint, ledger.KindRefund: p.Refund, ledger.KindClose: p.Close}[k]
}

// TestClockAnchors: Maintain records an anchor at its first call and when
// the ticks drift from the clock, not otherwise; times become ticks by
// them, and a time in a gap between two runs of the engine falls between
// their ticks.
func TestClockAnchors(t *testing.T) {
	ctx := t.Context()
	p := ledgertest.History(t, filepath.Join(t.TempDir(), "ledger.db"))
	// A second run, after a gap: the first Maintain anchors again.
	clk := clocktest.New()
	clk.Advance(1000 * time.Second)
	opts := ledgertest.Options
	opts.Clock = clk
	l, err := ledger.Open(ctx, p.Path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for tick := uint64(ledgertest.Ticks + 1); tick <= ledgertest.Ticks+3; tick++ {
		m, err := l.Maintain(ctx, tick)
		if err != nil {
			t.Fatal(err)
		}
		if first := tick == ledgertest.Ticks+1; (m.Anchor != nil) != first {
			t.Errorf("Maintain at tick %d recorded anchor %+v; want one at the run's first call only", tick, m.Anchor)
		}
		clk.Advance(time.Second)
	}
	got, err := l.Anchors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return clocktest.Epoch.Add(d) }
	want := []ledger.ClockAnchor{
		{Tick: 1, Time: at(time.Second), Period: time.Second},
		{Tick: ledgertest.Stall, Time: ledgertest.TimeOf(ledgertest.Stall), Period: time.Second},
		{Tick: ledgertest.Ticks + 1, Time: at(1000 * time.Second), Period: time.Second},
	}
	if jsonOf(t, got) != jsonOf(t, want) {
		t.Errorf("anchors %+v\nwant %+v", got, want)
	}
	for _, tc := range []struct {
		name         string
		since, until ledger.Moment
		want         ledger.Filter
		basis        ledger.TimeBasis
		empty        bool
	}{
		{"ticks", ledger.TickMoment(5), ledger.TickMoment(9), ledger.Filter{SinceTick: 5, UntilTick: 9}, "", false},
		{"times of ticks", ledger.TimeMoment(ledgertest.TimeOf(5)), ledger.TimeMoment(ledgertest.TimeOf(22)), ledger.Filter{SinceTick: 5, UntilTick: 22}, ledger.TimeClock, false},
		{"inside ticks", ledger.TimeMoment(ledgertest.TimeOf(5).Add(300 * time.Millisecond)), ledger.TimeMoment(ledgertest.TimeOf(22).Add(999 * time.Millisecond)),
			ledger.Filter{SinceTick: 6, UntilTick: 22}, ledger.TimeClock, false},
		{"in the gap", ledger.TimeMoment(at(500 * time.Second)), ledger.TimeMoment(at(600 * time.Second)), ledger.Filter{SinceTick: 41, UntilTick: 40}, ledger.TimeClock, true},
		{"the gap's ends", ledger.TimeMoment(at(40 * time.Second)), ledger.TimeMoment(at(900 * time.Second)), ledger.Filter{SinceTick: 35, UntilTick: 40}, ledger.TimeClock, false},
		{"before the first anchor", ledger.TimeMoment(at(-10 * time.Second)), ledger.TimeMoment(at(1500 * time.Millisecond)), ledger.Filter{UntilTick: 1}, ledger.TimeEstimated, false},
		{"an end before tick 1", ledger.Moment{}, ledger.TimeMoment(at(500 * time.Millisecond)), ledger.Filter{}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := l.Resolve(ctx, "", tc.since, tc.until)
			if err != nil {
				t.Fatal(err)
			}
			if tc.empty {
				if !b.Empty {
					t.Errorf("%+v, want no tick", b)
				}
				return
			}
			if b.Empty || b.Filter != tc.want || b.SinceBasis != tc.basis {
				t.Errorf("%+v, want %+v (%q)", b, tc.want, tc.basis)
			}
		})
	}
	if _, err := l.Resolve(ctx, "", ledger.Moment{}, ledger.TickMoment(0)); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("until tick 0: %v, want ErrInvalid", err)
	}
}

// TestTimesWithoutAnchors: a ledger whose writer had no clock estimates
// its ticks' times from its last write and the tick period, and says so.
func TestTimesWithoutAnchors(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ledger.db")
	w, err := ledger.Open(ctx, path, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.OpenWallet(ctx, "open/cell:a", 0, ledger.WalletSpec{Name: "a", Endowment: 100}); err != nil {
		t.Fatal(err)
	}
	for tick := uint64(1); tick <= 50; tick++ {
		if _, err := w.Charge(ctx, ledger.Key(tick, "a", "payment"), tick, "a", 1, ledger.KindPayment); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	l, err := ledger.Open(ctx, path, ledger.Options{ReadOnly: true, Tick: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rs := export(t, l, ledger.Filter{Cell: "a", SinceTick: 40})
	lastWrite := *rs[len(rs)-1].Time
	for _, r := range rs {
		if want := lastWrite.Add(-time.Duration(50-r.Tick) * 200 * time.Millisecond); r.TimeBasis != ledger.TimeEstimated || !r.Time.Equal(want) {
			t.Errorf("record %+v: time %v (%s), want %v estimated", r, r.Time, r.TimeBasis, want)
		}
	}
	if d := time.Since(lastWrite); d < 0 || d > time.Minute {
		t.Errorf("the last tick estimated at %v, %v ago: want the ledger's last write", lastWrite, d)
	}
	b, err := l.Resolve(ctx, "a", ledger.TimeMoment(lastWrite.Add(-time.Second)), ledger.Moment{})
	if err != nil || b.Filter.SinceTick != 45 || b.SinceBasis != ledger.TimeEstimated {
		t.Errorf("a second before the last write: %+v, %v; want tick 45, estimated", b, err)
	}
}
