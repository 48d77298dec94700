package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// terms returns the tap terms wallet's account holds.
func terms(t *testing.T, l *Ledger, wallet string) Terms {
	t.Helper()
	a, err := l.Account(t.Context(), wallet)
	if err != nil {
		t.Fatal(err)
	}
	return Terms{a.TapRate, a.TapCap}
}

// TestSetTerms: a change of terms holds the taps after it to the new
// terms, is idempotent by key, and is refused for a closed, unknown or
// system account and for negative figures. Each step runs on the state the
// ones before it left, and the ledger verifies after each.
func TestSetTerms(t *testing.T) {
	ctx := t.Context()
	l := open(t)
	if _, err := l.OpenWallet(ctx, "open/a", 0, WalletSpec{Name: "a", Endowment: 1000, TapRate: 10, TapCap: 1500}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenWallet(ctx, "open/n", 0, WalletSpec{Name: "n", Endowment: 10}); err != nil {
		t.Fatal(err)
	}
	tap := func(tick uint64, w string, a units.Credits) func() (Result, error) {
		return func() (Result, error) { return l.Tap(ctx, Key(tick, w, "tap"), tick, w, a) }
	}
	set := func(key string, tick uint64, w string, rate, cap units.Credits) func() (Result, error) {
		return func() (Result, error) { return l.SetTerms(ctx, key, tick, w, rate, cap) }
	}
	steps := []struct {
		name    string
		do      func() (Result, error)
		err     error
		dup     bool
		changes int64 // changes of terms in the ledger after the step
		a, n    units.Credits
		ta, tn  Terms // the accounts' terms after the step
	}{
		{"a tap up to the cap", tap(1, "a", 500), nil, false, 0, 1500, 10, Terms{10, 1500}, Terms{}},
		{"a tap past the old cap, before the change: refused", tap(2, "a", 400), ErrInvalid, false, 0, 1500, 10, Terms{10, 1500}, Terms{}},
		{"the cap raised", set("terms/a/1", 2, "a", 10, 2000), nil, false, 1, 1500, 10, Terms{10, 2000}, Terms{}},
		{"the same tap, past the old cap, after the change: accepted", tap(2, "a", 400), nil, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"past the new cap: refused", tap(3, "a", 101), ErrInvalid, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"the change replayed", set("terms/a/1", 2, "a", 10, 2000), nil, true, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"replayed with other terms", set("terms/a/1", 2, "a", 10, 3000), ErrKeyConflict, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"replayed at another tick", set("terms/a/1", 3, "a", 10, 2000), ErrKeyConflict, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"its key used by a tap", func() (Result, error) { return l.Tap(ctx, "terms/a/1", 2, "a", 1) }, ErrKeyConflict, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"a negative rate", set("terms/a/x", 3, "a", -1, 2000), ErrInvalid, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"a negative cap", set("terms/a/x", 3, "a", 10, -2000), ErrInvalid, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"an unknown wallet", set("terms/x/1", 3, "x", 10, 2000), ErrNoAccount, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"the burn account", set("terms/burn/1", 3, Burn, 10, 2000), ErrInvalid, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"no key", set("", 3, "a", 10, 2000), ErrInvalid, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"a tap for a wallet without one: refused", tap(3, "n", 5), ErrInvalid, false, 1, 1900, 10, Terms{10, 2000}, Terms{}},
		{"n given a tap", set("terms/n/1", 3, "n", 5, 100), nil, false, 2, 1900, 10, Terms{10, 2000}, Terms{5, 100}},
		{"n tapped", tap(3, "n", 90), nil, false, 2, 1900, 100, Terms{10, 2000}, Terms{5, 100}},
		{"a's tap taken away", set("terms/a/2", 4, "a", 0, 2000), nil, false, 3, 1900, 100, Terms{0, 2000}, Terms{5, 100}},
		{"a tap within the cap, but no tap: refused", tap(4, "a", 1), ErrInvalid, false, 3, 1900, 100, Terms{0, 2000}, Terms{5, 100}},
		{"an old tap replayed: still a duplicate, though the terms now refuse it", tap(2, "a", 400), nil, true, 3, 1900, 100, Terms{0, 2000}, Terms{5, 100}},
		{"the tap back, its cap below the balance", set("terms/a/3", 5, "a", 10, 1000), nil, false, 4, 1900, 100, Terms{10, 1000}, Terms{5, 100}},
		{"above the new cap: refused", tap(5, "a", 1), ErrInvalid, false, 4, 1900, 100, Terms{10, 1000}, Terms{5, 100}},
		{"a charged below the cap", func() (Result, error) { return l.Charge(ctx, Key(5, "a", "payment"), 5, "a", 1200, KindPayment) },
			nil, false, 4, 700, 100, Terms{10, 1000}, Terms{5, 100}},
		{"tapped up to the new cap", tap(6, "a", 300), nil, false, 4, 1000, 100, Terms{10, 1000}, Terms{5, 100}},
		{"the same terms again: recorded", set("terms/a/4", 6, "a", 10, 1000), nil, false, 5, 1000, 100, Terms{10, 1000}, Terms{5, 100}},
		{"n closes", func() (Result, error) { return l.CloseWallet(ctx, "close/n", 7, "n") }, nil, false, 5, 1000, 0, Terms{10, 1000}, Terms{5, 100}},
		{"a closed wallet", set("terms/n/2", 7, "n", 5, 200), ErrClosed, false, 5, 1000, 0, Terms{10, 1000}, Terms{5, 100}},
		{"a closed wallet's change replayed", set("terms/n/1", 3, "n", 5, 100), nil, true, 5, 1000, 0, Terms{10, 1000}, Terms{5, 100}},
	}
	for _, s := range steps {
		r, err := s.do()
		if !errors.Is(err, s.err) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.err)
		}
		if err == nil && r.Duplicate != s.dup {
			t.Errorf("%s: %+v, want duplicate %t", s.name, r, s.dup)
		}
		if err == nil && strings.HasPrefix(r.Key, "terms/") && (r.ID == 0 || r.Amount != 0 || r.Entries == nil || len(r.Entries) != 0) {
			t.Errorf("%s: %+v, want a whole transaction that moves nothing", s.name, r)
		}
		if b := balance(t, l, "a"); b != s.a {
			t.Errorf("%s: a holds %d, want %d", s.name, b, s.a)
		}
		if b := balance(t, l, "n"); b != s.n {
			t.Errorf("%s: n holds %d, want %d", s.name, b, s.n)
		}
		if got := terms(t, l, "a"); got != s.ta {
			t.Errorf("%s: a's terms %+v, want %+v", s.name, got, s.ta)
		}
		if got := terms(t, l, "n"); got != s.tn {
			t.Errorf("%s: n's terms %+v, want %+v", s.name, got, s.tn)
		}
		if rep := mustVerify(t, l); rep.TermsChanges != s.changes {
			t.Errorf("%s: %d changes of terms, want %d", s.name, rep.TermsChanges, s.changes)
		}
	}
}

// TestSetTermsBatch: within a batch, a change of terms holds the taps after
// it (in Apply's order) to the new terms, and leaves those before it as
// they were, even of the same tick; a refused tap fails the whole batch.
func TestSetTermsBatch(t *testing.T) {
	tapTx := func(tick uint64, a units.Credits) Tx {
		return Tx{Key: Key(tick, "a", "tap"), Kind: KindTap, Tick: tick, Wallet: "a", Entries: []Entry{{Mint, -a}, {"a", a}}}
	}
	termsTx := func(key string, tick uint64, rate, cap units.Credits) Tx {
		return Tx{Key: key, Kind: KindTerms, Tick: tick, Wallet: "a", Terms: &Terms{rate, cap}}
	}
	pay := Tx{Key: Key(1, "a", "payment"), Kind: KindPayment, Tick: 1, Wallet: "a", Entries: []Entry{{"a", -300}, {Burn, 300}}}
	// a opens with 1000 credits, a tap of 10 credits/s below 1500.
	for _, tc := range []struct {
		name  string
		batch []Tx
		err   error
		a     units.Credits
		terms Terms
	}{
		{"a tap past the old cap after the change", []Tx{termsTx("t/1", 1, 10, 2000), tapTx(1, 900)}, nil, 1900, Terms{10, 2000}},
		{"the same tap before the change", []Tx{tapTx(1, 900), termsTx("t/1", 1, 10, 2000)}, ErrInvalid, 1000, Terms{10, 1500}},
		{"a tap of the same tick before the tap is taken away stays", []Tx{tapTx(1, 500), termsTx("t/1", 1, 0, 1500)}, nil, 1500, Terms{0, 1500}},
		{"a tap after the tap is taken away", []Tx{termsTx("t/1", 1, 0, 1500), tapTx(1, 500)}, ErrInvalid, 1000, Terms{10, 1500}},
		{"the cap lowered below a tap of the same tick before it", []Tx{tapTx(1, 500), termsTx("t/1", 1, 10, 1200)}, nil, 1500, Terms{10, 1200}},
		{"a charge, the change, a tap up to the new cap", []Tx{pay, termsTx("t/1", 1, 10, 2000), tapTx(1, 1300)}, nil, 2000, Terms{10, 2000}},
		{"two changes: the last holds", []Tx{termsTx("t/1", 1, 10, 5000), termsTx("t/2", 1, 10, 1100), tapTx(1, 101)}, ErrInvalid, 1000, Terms{10, 1500}},
		{"two changes, a tap between", []Tx{termsTx("t/1", 1, 10, 5000), tapTx(1, 3000), termsTx("t/2", 1, 0, 0)}, nil, 4000, Terms{0, 0}},
		// The row of tick 1 is written (by the payment) while a has no
		// tap, its tap added once the tap is back, which a later change
		// takes away again: Verify cannot tell when in the row's life the
		// tap came, and must allow any terms from the row's first posting on.
		{"a tap into a row written before the tap came back", []Tx{termsTx("t/1", 1, 0, 1500), pay, termsTx("t/2", 1, 10, 5000), tapTx(1, 900), termsTx("t/3", 1, 0, 0)},
			nil, 1600, Terms{0, 0}},
		{"a change and the close", []Tx{termsTx("t/1", 1, 10, 5000), {Key: "close/a", Kind: KindClose, Tick: 1, Wallet: "a"}}, nil, 0, Terms{10, 5000}},
		{"the close and a change", []Tx{{Key: "close/a", Kind: KindClose, Tick: 1, Wallet: "a"}, termsTx("t/1", 1, 10, 5000)}, ErrClosed, 1000, Terms{10, 1500}},
		{"a change with entries", []Tx{{Key: "t/1", Kind: KindTerms, Tick: 1, Wallet: "a", Terms: &Terms{10, 5000}, Entries: []Entry{{"a", -1}, {Burn, 1}}}}, ErrInvalid, 1000, Terms{10, 1500}},
		{"terms of another kind", []Tx{{Key: "t/1", Kind: KindFund, Tick: 1, Wallet: "a", Terms: &Terms{10, 5000}, Entries: []Entry{{Mint, -1}, {"a", 1}}}}, ErrInvalid, 1000, Terms{10, 1500}},
		{"a change without terms", []Tx{{Key: "t/1", Kind: KindTerms, Tick: 1, Wallet: "a"}}, ErrInvalid, 1000, Terms{10, 1500}},
		{"a change without a wallet", []Tx{{Key: "t/1", Kind: KindTerms, Tick: 1, Terms: &Terms{10, 5000}}}, ErrInvalid, 1000, Terms{10, 1500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := open(t)
			if _, err := l.OpenWallet(t.Context(), "open/a", 0, WalletSpec{Name: "a", Endowment: 1000, TapRate: 10, TapCap: 1500}); err != nil {
				t.Fatal(err)
			}
			_, err := l.Apply(t.Context(), tc.batch...)
			if !errors.Is(err, tc.err) {
				t.Fatalf("apply: %v, want %v", err, tc.err)
			}
			if b := balance(t, l, "a"); b != tc.a {
				t.Errorf("a holds %d, want %d", b, tc.a)
			}
			if got := terms(t, l, "a"); got != tc.terms {
				t.Errorf("a's terms %+v, want %+v", got, tc.terms)
			}
			rep := mustVerify(t, l)
			if tc.err != nil && (rep.Txs != 1 || rep.TermsChanges != 0) {
				t.Errorf("the refused batch left a trace: %+v", rep)
			}
		})
	}
}

// TestTermsDay posts a day-like sequence: five wallets over 3600 ticks of
// 1 s (an hour of a 1 Hz engine, the window ten minutes, buckets of a
// minute, so most of it is rolled up), each charged every tick and the
// tapped ones paid what an engine pays (rate × tick, up to the cap), while
// an operator changes terms every few minutes (raises and lowers caps,
// takes taps away and gives them back, changes rates), in batches of their
// own and inside a tick's batch, before or after the wallet's tap. No tap
// the model computes is refused; Verify holds after every change and at
// the end, the balances and terms are the model's, and the changes stay
// whole past every rollup.
func TestTermsDay(t *testing.T) {
	ctx := t.Context()
	// Not a test of durability: synchronous=OFF writes the same bytes
	// without an fsync a tick.
	l, path := openWith(t, Options{Tick: time.Second, Keep: 10 * time.Minute, Bucket: time.Minute, synchronous: "OFF"})
	rng := rand.New(rand.NewPCG(14, 1))
	type wallet struct {
		name    string
		bal     units.Credits
		terms   Terms
		changes int
	}
	ws := []*wallet{
		{name: "w0", bal: 50_000, terms: Terms{1000, 100_000}},
		{name: "w1", bal: 50_000, terms: Terms{500, 60_000}},
		{name: "w2", bal: 200_000},
		{name: "w3", bal: 80_000, terms: Terms{2000, 80_000}},
		{name: "w4", bal: 10_000, terms: Terms{100, 10_000}},
	}
	for _, w := range ws {
		if _, err := l.OpenWallet(ctx, "open/cell:"+w.name, 0, WalletSpec{Name: w.name, Endowment: w.bal, TapRate: w.terms.TapRate, TapCap: w.terms.TapCap}); err != nil {
			t.Fatal(err)
		}
	}
	var changes int64
	change := func(w *wallet, tick uint64) Tx {
		// New terms drawn like an operator's: a rate of 0 (no tap) a
		// fifth of the time, a cap from a tenth to twice the balance (or
		// below it).
		var tm Terms
		if rng.IntN(5) != 0 {
			tm.TapRate = units.Credits(100 * (1 + rng.IntN(30)))
		}
		tm.TapCap = units.Credits(rng.Int64N(int64(max(w.bal, 1000))*2)) + 1
		w.terms = tm
		w.changes++
		changes++
		return Tx{Key: fmt.Sprintf("terms/cell:%s/%d", w.name, w.changes), Kind: KindTerms, Tick: tick, Wallet: w.name, Terms: &tm}
	}
	const ticks = 3600
	for tick := uint64(1); tick <= ticks; tick++ {
		var batch []Tx
		// Every 97 ticks an operator's change between ticks, in its own
		// transaction; every 131, one inside the tick's batch, at the
		// start or after the wallet's tap.
		if tick%97 == 0 {
			w := ws[rng.IntN(len(ws))]
			if _, err := l.Apply(ctx, change(w, 0)); err != nil {
				t.Fatalf("tick %d: change of %s: %v", tick, w.name, err)
			}
			mustVerify(t, l)
		}
		inBatch, after := (*wallet)(nil), false
		if tick%131 == 0 {
			inBatch, after = ws[rng.IntN(len(ws))], rng.IntN(2) == 0
		}
		for _, w := range ws {
			if w == inBatch && !after {
				batch = append(batch, change(w, tick))
			}
			// The engine's tap: a tick's income while below the cap, up to
			// the cap.
			if w.terms.TapRate > 0 && w.bal < w.terms.TapCap {
				a := min(w.terms.TapRate, w.terms.TapCap-w.bal)
				batch = append(batch, Tx{Key: Key(tick, w.name, "tap"), Kind: KindTap, Tick: tick, Wallet: w.name, Entries: []Entry{{Mint, -a}, {w.name, a}}})
				w.bal += a
			}
			if w == inBatch && after {
				batch = append(batch, change(w, tick))
			}
			c := units.Credits(100 + rng.IntN(1500))
			batch = append(batch, Tx{Key: Key(tick, w.name, "payment"), Kind: KindPayment, Tick: tick, Wallet: w.name, Entries: []Entry{{w.name, -c}, {Burn, c}}})
			w.bal -= c
		}
		if _, err := l.Apply(ctx, batch...); err != nil {
			t.Fatalf("tick %d: %v", tick, err)
		}
		if tick%10 == 0 {
			if _, err := l.Maintain(ctx, tick); err != nil {
				t.Fatalf("maintain at tick %d: %v", tick, err)
			}
		}
	}
	rep := mustVerify(t, l)
	if rep.TermsChanges != changes || changes < 50 || rep.RolledBelow < ticks-700 || rep.Rollups == 0 {
		t.Errorf("report %+v: want %d changes of terms kept, most ticks rolled up", rep, changes)
	}
	for _, w := range ws {
		if b := balance(t, l, w.name); b != w.bal {
			t.Errorf("%s holds %d, the model %d", w.name, b, w.bal)
		}
		if got := terms(t, l, w.name); got != w.terms {
			t.Errorf("%s has terms %+v, the model %+v", w.name, got, w.terms)
		}
	}
	// Every change is still there, whole, for the reader of the book.
	b, err := ReadBook(ctx, path, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range b.Recent {
		if p.Kind == KindTerms {
			n++
			if p.Terms == nil || p.ID == 0 || len(p.Entries) != 0 {
				t.Errorf("change of terms in the book: %+v", p)
			}
		}
	}
	if int64(n) != changes {
		t.Errorf("%d changes of terms in the book, want %d", n, changes)
	}
	t.Logf("%d changes of terms; %+v", changes, rep)
}

// TestTermsBook: `maxwell ledger show` prints a change of terms, as text
// and as JSON.
func TestTermsBook(t *testing.T) {
	ctx := t.Context()
	l, path := openWith(t, Options{})
	if _, err := l.OpenWallet(ctx, "open/a", 0, WalletSpec{Name: "a", Endowment: 1000, TapRate: 10, TapCap: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SetTerms(ctx, "terms/cell:a/1", 3, "a", 20, 5000); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Tap(ctx, Key(4, "a", "tap"), 4, "a", 20); err != nil {
		t.Fatal(err)
	}
	b, err := ReadBook(ctx, path, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := Posted{ID: 2, Key: "terms/cell:a/1", Kind: KindTerms, Tick: 3, Entries: []Entry{},
		Terms: &TermsChange{Wallet: "a", TapRate: 20, TapCap: 5000, WasRate: 10, WasCap: 1000}}
	if len(b.Recent) != 3 || fmt.Sprintf("%+v %+v", b.Recent[1], *b.Recent[1].Terms) != fmt.Sprintf("%+v %+v", want, *want.Terms) {
		t.Fatalf("recent %+v: want the change second, %+v", b.Recent, want)
	}
	if a := b.Accounts[2]; a.Name != "a" || a.TapRate != 20 || a.TapCap != 5000 {
		t.Errorf("account %+v: want the new terms", a)
	}
	rows := bookRows(t, b)
	for _, want := range []string{
		"2 3 terms terms/cell:a/1 (none); a: tap 10 credits/s below 1000 → 20 credits/s below 5000",
		"a wallet open 1020 1000 20 5000 0 -",
	} {
		if !slices.Contains(rows, want) {
			t.Errorf("book lacks the row %q:\n%s", want, strings.Join(rows, "\n"))
		}
	}
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":2,"key":"terms/cell:a/1","kind":"terms","tick":3,"entries":[],"terms":{"wallet":"a","tap_rate":20,"tap_cap":5000,"was_rate":10,"was_cap":1000}}`; !strings.Contains(string(js), want) {
		t.Errorf("JSON book lacks %s:\n%s", want, js)
	}
	// And the report counts it.
	var out strings.Builder
	if err := mustVerify(t, l).WriteText(&out, path); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\n1 of the transactions are changes of tap terms\n") {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestVerifyTamperedTerms edits a ledger with changes of terms behind its
// back and expects Verify to say what is wrong. The ledger: a (tapped)
// given a higher cap (tx 4) and later no tap (tx 6), tapped per tick
// between; z given a tap (tx 7), tapped per tick and whole (tx 8), and
// closed (tx 9); n never had a tap.
func TestVerifyTamperedTerms(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		want      []string
	}{
		{"account's terms", `UPDATE accounts SET tap_cap = 7 WHERE name = 'a'`,
			[]string{`wallet "a": its account has a tap of 0 credits/s below 7, its last change of terms (tx 6) set a tap of 0 credits/s below 2000`}},
		{"a change with entries", `INSERT INTO entries VALUES (4, 0, 'a', -1), (4, 1, 'burn', 1)`,
			[]string{`tx 4 'terms/a/1': a change of terms with 2 entries; it moves no money`}},
		{"a change that records nothing", `DELETE FROM terms WHERE tx_id = 4`,
			[]string{`tx 4 'terms/a/1': a change of terms that records no terms`}},
		{"a broken chain", `UPDATE terms SET was_cap = 1 WHERE tx_id = 6`,
			[]string{`wallet "a": tx 6 changed its terms from a tap of 10 credits/s below 1, but tx 4 had set a tap of 10 credits/s below 2000`}},
		{"terms of another transaction", `INSERT INTO terms VALUES (5, 3, 1, 1, 0, 0)`,
			[]string{`terms of tx 5: a transaction of kind fund, not a change of terms`}},
		{"terms of no wallet", `UPDATE terms SET account = 1 WHERE tx_id = 4`,
			[]string{`change of terms in tx 4: account id 1 is no wallet`}},
		{"a change after the close", `UPDATE accounts SET closed_tx = 5 WHERE name = 'z'; UPDATE txs SET kind = 'close' WHERE id = 5`,
			[]string{`wallet "z": tx 7 changed its terms after its close (tx 5)`}},
		{"a change of a wallet closed before version 4", `UPDATE accounts SET closed_tx = NULL WHERE name = 'z'`,
			[]string{`wallet "z": tx 7 changed its terms, but it was closed before schema version 4`}},
		{"a close that is none", `UPDATE accounts SET closed_tx = 1 WHERE name = 'z'`,
			[]string{`wallet 'z': closed by tx 1, of kind endow, not a close`}},
		{"an open wallet with a close", `UPDATE accounts SET closed_tx = 9 WHERE name = 'a'`,
			[]string{`wallet 'a': open, yet it records tx 9 as its close`}},
		{"a per-tick tap after the tap was taken away", `UPDATE ticks SET tap = 5, after = 6 WHERE tick = 3 AND account = (SELECT id FROM accounts WHERE name = 'a')`,
			[]string{`wallet "a": 1 per-tick taps (ticks 3 to 3) in rows written after tx 6, which took its tap away for good`}},
		{"a per-tick tap of a wallet that never had a tap", `INSERT INTO ticks (tick, account, after, tap) VALUES (9, (SELECT id FROM accounts WHERE name = 'n'), 8, 5)`,
			[]string{`wallet "n": 1 per-tick taps (ticks 9 to 9), but it never had a tap`}},
		{"a rolled-up tap of a wallet that never had a tap", `INSERT INTO rollups VALUES ((SELECT id FROM accounts WHERE name = 'n'), 0, 0, 0, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5)`,
			[]string{`wallet "n": 1 rolled-up taps, but it never had a tap`}},
		{"a tap stored whole to a wallet without one", `UPDATE txs SET kind = 'tap' WHERE id = 5`,
			[]string{`tx 5 "fund/n": a tap, but no wallet it credits had a tap then`}},
		{"a tap stored whole before the tap was given", `UPDATE txs SET kind = 'tap' WHERE id = 5; UPDATE entries SET account = 'z' WHERE tx_id = 5 AND account = 'n'`,
			[]string{`tx 5 "fund/n": a tap, but no wallet it credits had a tap then`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "ledger.db")
			l, err := Open(ctx, path, Options{Keep: -1})
			if err != nil {
				t.Fatal(err)
			}
			for i, do := range []func() (Result, error){
				func() (Result, error) { // tx 1
					return l.OpenWallet(ctx, "open/a", 0, WalletSpec{Name: "a", Endowment: 1000, TapRate: 10, TapCap: 1500})
				},
				func() (Result, error) { return l.OpenWallet(ctx, "open/n", 0, WalletSpec{Name: "n", Endowment: 10}) }, // 2
				func() (Result, error) { return l.OpenWallet(ctx, "open/z", 0, WalletSpec{Name: "z"}) },                // 3
				func() (Result, error) { return l.Tap(ctx, Key(1, "a", "tap"), 1, "a", 500) },
				func() (Result, error) { return l.SetTerms(ctx, "terms/a/1", 2, "a", 10, 2000) }, // 4
				func() (Result, error) { return l.Tap(ctx, Key(2, "a", "tap"), 2, "a", 400) },
				func() (Result, error) { return l.Charge(ctx, Key(3, "a", "payment"), 3, "a", 10, KindPayment) },
				func() (Result, error) { return l.Fund(ctx, "fund/n", 3, "n", 5) },              // 5
				func() (Result, error) { return l.SetTerms(ctx, "terms/a/2", 4, "a", 0, 2000) }, // 6
				func() (Result, error) { return l.SetTerms(ctx, "terms/z/1", 4, "z", 5, 100) },  // 7
				func() (Result, error) { return l.Tap(ctx, Key(5, "z", "tap"), 5, "z", 50) },
				func() (Result, error) { return l.Tap(ctx, "tap/z/whole", 5, "z", 1) },  // 8, stored whole
				func() (Result, error) { return l.CloseWallet(ctx, "close/z", 6, "z") }, // 9
			} {
				if _, err := do(); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			mustVerify(t, l)
			l.Close()
			tamper(t, path, tc.sql, tc.want...)
		})
	}
}
