package ledger

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

// TestIncome: income mints money for any open wallet, past its tap cap,
// is stored per tick under its conventional key, and shows in the book.
func TestIncome(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// s has a tap and sits at its cap; n has none.
	if _, err := l.OpenWallet(ctx, "open/s", 0, WalletSpec{Name: "s", Endowment: 1000, TapRate: 10, TapCap: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenWallet(ctx, "open/n", 0, WalletSpec{Name: "n"}); err != nil {
		t.Fatal(err)
	}
	bonus := Tx{Key: "income/cell:s/recount-1", Kind: KindIncome, Tick: 2, Wallet: "s", Memo: "primes of segments 1 to 8, recounted",
		Entries: []Entry{{Mint, -250}, {"s", 250}}}
	steps := []struct {
		name    string
		do      func() (Result, error)
		err     error
		dup     bool
		perTick bool
		s, n    units.Credits // balances after the step
	}{
		{"income to a wallet at its tap cap", func() (Result, error) { return l.Income(ctx, Key(1, "s", "income"), 1, "s", 5000) },
			nil, false, true, 6000, 0},
		{"a tap above the cap is still refused", func() (Result, error) { return l.Tap(ctx, Key(1, "s", "tap"), 1, "s", 1) },
			ErrInvalid, false, false, 6000, 0},
		{"income to a wallet without a tap", func() (Result, error) { return l.Income(ctx, Key(1, "n", "income"), 1, "n", 7) },
			nil, false, true, 6000, 7},
		{"replayed", func() (Result, error) { return l.Income(ctx, Key(1, "n", "income"), 1, "n", 7) },
			nil, true, true, 6000, 7},
		{"replayed with another amount", func() (Result, error) { return l.Income(ctx, Key(1, "n", "income"), 1, "n", 8) },
			ErrKeyConflict, false, false, 6000, 7},
		{"a tap under the income's key", func() (Result, error) { return l.Tap(ctx, Key(1, "s", "income"), 1, "s", 5000) },
			ErrKeyConflict, false, false, 6000, 7},
		{"with a memo: stored whole", func() (Result, error) { return l.apply1(ctx, bonus) },
			nil, false, false, 6250, 7},
		{"with a memo, replayed", func() (Result, error) { return l.apply1(ctx, bonus) },
			nil, true, false, 6250, 7},
		{"of nothing", func() (Result, error) { return l.Income(ctx, Key(2, "n", "income"), 2, "n", 0) },
			ErrInvalid, false, false, 6250, 7},
		{"negative", func() (Result, error) { return l.Income(ctx, Key(2, "n", "income"), 2, "n", -5) },
			ErrInvalid, false, false, 6250, 7},
		{"to burn", func() (Result, error) { return l.Income(ctx, Key(2, Burn, "income"), 2, Burn, 5) },
			ErrInvalid, false, false, 6250, 7},
		{"to an unknown wallet", func() (Result, error) { return l.Income(ctx, Key(2, "x", "income"), 2, "x", 5) },
			ErrNoAccount, false, false, 6250, 7},
		{"past the range of a balance", func() (Result, error) { return l.Income(ctx, Key(2, "n", "income"), 2, "n", math.MaxInt64) },
			ErrOverflow, false, false, 6250, 7},
		{"n closes", func() (Result, error) { return l.CloseWallet(ctx, "close/n", 3, "n") },
			nil, false, false, 6250, 0},
		{"to a closed wallet", func() (Result, error) { return l.Income(ctx, Key(3, "n", "income"), 3, "n", 5) },
			ErrClosed, false, false, 6250, 0},
		{"replayed after the close", func() (Result, error) { return l.Income(ctx, Key(1, "n", "income"), 1, "n", 7) },
			nil, true, true, 6250, 0},
	}
	for _, s := range steps {
		r, err := s.do()
		if !errors.Is(err, s.err) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.err)
		}
		if err == nil && (r.Duplicate != s.dup || (r.ID == 0) != s.perTick) {
			t.Errorf("%s: %+v, want duplicate %t, per tick %t", s.name, r, s.dup, s.perTick)
		}
		if b := balance(t, l, "s"); b != s.s {
			t.Errorf("%s: s holds %d, want %d", s.name, b, s.s)
		}
		if b := balance(t, l, "n"); b != s.n {
			t.Errorf("%s: n holds %d, want %d", s.name, b, s.n)
		}
	}
	rep := mustVerify(t, l)
	if rep.Minted != 1000+5000+7+250 || rep.Burned != 7 || rep.Postings != 2 || rep.Txs != 2+2+1+1 {
		t.Errorf("report %+v", rep)
	}

	// What `maxwell ledger show` prints, as text and as JSON.
	b, err := ReadBook(ctx, path, 10)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(b.Recent, func(p Posted) bool { return p.Key == Key(1, "s", "income") })
	if i < 0 || b.Recent[i].Kind != KindIncome || b.Recent[i].ID != 0 || b.Recent[i].Tick != 1 ||
		!slices.Equal(b.Recent[i].Entries, []Entry{{Mint, -5000}, {"s", 5000}}) {
		t.Fatalf("recent %+v: want the per-tick income of s", b.Recent)
	}
	rows := bookRows(t, b)
	for _, want := range []string{"- 1 income tick:1/cell:s/income mint -5000, s +5000",
		"3 2 income income/cell:s/recount-1 mint -250, s +250 primes of segments 1 to 8, recounted"} {
		if !slices.Contains(rows, want) {
			t.Errorf("book lacks the row %q:\n%s", want, strings.Join(rows, "\n"))
		}
	}
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":0,"key":"tick:1/cell:s/income","kind":"income","tick":1,"entries":[{"account":"mint","amount":-5000},{"account":"s","amount":5000}]}`; !strings.Contains(string(js), want) {
		t.Errorf("JSON book lacks %s:\n%s", want, js)
	}
}
