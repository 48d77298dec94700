package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

// open opens a fresh ledger in a temporary directory, closed at cleanup.
func open(t testing.TB) *Ledger {
	t.Helper()
	l, err := Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// balance returns the stored balance of name.
func balance(t *testing.T, l *Ledger, name string) units.Credits {
	t.Helper()
	a, err := l.Account(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

// bookRows returns the lines b.WriteText prints, each one's fields joined
// by single spaces: the table's padding depends on the widths of its
// columns.
func bookRows(t *testing.T, b Book) []string {
	t.Helper()
	var text strings.Builder
	if err := b.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for line := range strings.Lines(text.String()) {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	return rows
}

// mustVerify fails the test unless Verify reports OK, and returns the report.
func mustVerify(t *testing.T, l *Ledger) Report {
	t.Helper()
	rep, err := l.Verify(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Problems) > 0 {
		t.Fatalf("verify: %+v", rep)
	}
	return rep
}

func TestOperations(t *testing.T) {
	ctx := t.Context()
	l := open(t)
	// Each step runs on the state the previous ones left.
	steps := []struct {
		name    string
		do      func() (Result, error)
		err     error
		amount  units.Credits
		dup     bool
		wallet  units.Credits // balance of "a" after the step
		minted  units.Credits
		burned  units.Credits
		entries int
	}{
		{"open", func() (Result, error) {
			return l.OpenWallet(ctx, "o/a", 1, WalletSpec{Name: "a", Endowment: 1000, TapRate: 100, TapCap: 1500})
		}, nil, 1000, false, 1000, 1000, 0, 2},
		{"open again, same key and content", func() (Result, error) {
			return l.OpenWallet(ctx, "o/a", 1, WalletSpec{Name: "a", Endowment: 1000, TapRate: 100, TapCap: 1500})
		}, nil, 1000, true, 1000, 1000, 0, 2},
		{"open again, same key, other endowment", func() (Result, error) {
			return l.OpenWallet(ctx, "o/a", 1, WalletSpec{Name: "a", Endowment: 999, TapRate: 100, TapCap: 1500})
		}, ErrKeyConflict, 0, false, 1000, 1000, 0, 0},
		{"open existing wallet under a new key", func() (Result, error) {
			return l.OpenWallet(ctx, "o/a2", 2, WalletSpec{Name: "a", Endowment: 1})
		}, ErrExists, 0, false, 1000, 1000, 0, 0},
		{"charge", func() (Result, error) { return l.Charge(ctx, "c1", 2, "a", 300, KindPayment) },
			nil, -300, false, 700, 1000, 300, 2},
		{"charge replayed", func() (Result, error) { return l.Charge(ctx, "c1", 2, "a", 300, KindPayment) },
			nil, -300, true, 700, 1000, 300, 2},
		{"charge replayed with another amount", func() (Result, error) { return l.Charge(ctx, "c1", 2, "a", 301, KindPayment) },
			ErrKeyConflict, 0, false, 700, 1000, 300, 0},
		{"charge replayed as another kind", func() (Result, error) { return l.Charge(ctx, "c1", 2, "a", 300, KindTax) },
			ErrKeyConflict, 0, false, 700, 1000, 300, 0},
		{"energy charge into overdraft", func() (Result, error) { return l.Charge(ctx, "e1", 3, "a", 900, KindEnergy) },
			nil, -900, false, -200, 1000, 1200, 2},
		{"refund", func() (Result, error) { return l.Refund(ctx, "r1", 3, "a", 50) },
			nil, 50, false, -150, 1000, 1150, 2},
		{"fund", func() (Result, error) { return l.Fund(ctx, "f1", 4, "a", 400) },
			nil, 400, false, 250, 1400, 1150, 2},
		{"endow", func() (Result, error) { return l.Endow(ctx, "n1", 4, "a", 10) },
			nil, 10, false, 260, 1410, 1150, 2},
		{"tap", func() (Result, error) { return l.Tap(ctx, "t1", 5, "a", 250) },
			nil, 250, false, 510, 1660, 1150, 2},
		{"tap up to the cap", func() (Result, error) { return l.Tap(ctx, "t2", 6, "a", 990) },
			nil, 990, false, 1500, 2650, 1150, 2},
		{"tap past the cap", func() (Result, error) { return l.Tap(ctx, "t3", 7, "a", 1) },
			ErrInvalid, 0, false, 1500, 2650, 1150, 0},
		{"tap replayed", func() (Result, error) { return l.Tap(ctx, "t2", 6, "a", 990) },
			nil, 990, true, 1500, 2650, 1150, 2},
		{"charge of unknown wallet", func() (Result, error) { return l.Charge(ctx, "c9", 7, "nobody", 1, KindRent) },
			ErrNoAccount, 0, false, 1500, 2650, 1150, 0},
		{"charge of zero", func() (Result, error) { return l.Charge(ctx, "c10", 7, "a", 0, KindRent) },
			ErrInvalid, 0, false, 1500, 2650, 1150, 0},
		{"charge of a refund kind", func() (Result, error) { return l.Charge(ctx, "c11", 7, "a", 5, KindRefund) },
			ErrInvalid, 0, false, 1500, 2650, 1150, 0},
		{"close", func() (Result, error) { return l.CloseWallet(ctx, "x1", 8, "a") },
			nil, 1500, false, 0, 2650, 2650, 2},
		{"close replayed", func() (Result, error) { return l.CloseWallet(ctx, "x1", 8, "a") },
			nil, 1500, true, 0, 2650, 2650, 2},
		{"close again under a new key", func() (Result, error) { return l.CloseWallet(ctx, "x2", 9, "a") },
			ErrClosed, 0, false, 0, 2650, 2650, 0},
		{"charge a closed wallet", func() (Result, error) { return l.Charge(ctx, "c12", 9, "a", 1, KindTax) },
			ErrClosed, 0, false, 0, 2650, 2650, 0},
		{"tap a closed wallet", func() (Result, error) { return l.Tap(ctx, "t4", 9, "a", 1) },
			ErrClosed, 0, false, 0, 2650, 2650, 0},
		{"reopen a closed name", func() (Result, error) { return l.OpenWallet(ctx, "o/a3", 9, WalletSpec{Name: "a"}) },
			ErrExists, 0, false, 0, 2650, 2650, 0},
	}
	for _, s := range steps {
		r, err := s.do()
		if !errors.Is(err, s.err) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.err)
		}
		if err == nil {
			if r.Amount != s.amount || r.Duplicate != s.dup || len(r.Entries) != s.entries {
				t.Errorf("%s: result %+v, want amount %d, duplicate %t, %d entries", s.name, r, s.amount, s.dup, s.entries)
			}
		}
		if b := balance(t, l, "a"); b != s.wallet {
			t.Errorf("%s: balance %d, want %d", s.name, b, s.wallet)
		}
		rep := mustVerify(t, l)
		if rep.Minted != s.minted || rep.Burned != s.burned || rep.Balances != s.wallet {
			t.Errorf("%s: report %+v, want minted %d burned %d balances %d", s.name, rep, s.minted, s.burned, s.wallet)
		}
	}
	a, err := l.Account(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != "closed" || a.ClosedTick == nil || *a.ClosedTick != 8 || a.FinalBalance == nil || *a.FinalBalance != 1500 ||
		a.Endowment != 1000 || a.TapRate != 100 || a.TapCap != 1500 || a.OpenedTick != 1 {
		t.Errorf("closed account: %+v", a)
	}
}

func TestCloseNegative(t *testing.T) {
	ctx := t.Context()
	l := open(t)
	if _, err := l.OpenWallet(ctx, "o", 1, WalletSpec{Name: "m", Endowment: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Charge(ctx, "c", 2, "m", 35, KindTax); err != nil {
		t.Fatal(err)
	}
	r, err := l.CloseWallet(ctx, "x", 3, "m")
	if err != nil {
		t.Fatal(err)
	}
	if r.Amount != -25 || !slices.Equal(r.Entries, []Entry{{"m", 25}, {Burn, -25}}) {
		t.Errorf("close: %+v", r)
	}
	rep := mustVerify(t, l)
	if rep.Minted != 10 || rep.Burned != 10 || rep.Balances != 0 || rep.OpenWallets != 0 || rep.Wallets != 1 {
		t.Errorf("report %+v", rep)
	}
	// A wallet at exactly zero closes with no entries.
	if _, err := l.OpenWallet(ctx, "o2", 4, WalletSpec{Name: "z"}); err != nil {
		t.Fatal(err)
	}
	r, err = l.CloseWallet(ctx, "x2", 5, "z")
	if err != nil || r.Amount != 0 || len(r.Entries) != 0 {
		t.Errorf("close empty: %+v, %v", r, err)
	}
}

func TestApplyBatchAtomic(t *testing.T) {
	ctx := t.Context()
	l := open(t)
	good := []Tx{
		{Key: "o/a", Kind: KindEndow, Tick: 1, Open: &WalletSpec{Name: "a", Endowment: 500}},
		{Key: "o/b", Kind: KindEndow, Tick: 1, Open: &WalletSpec{Name: "b", Endowment: 500, TapRate: 10, TapCap: 1000}},
		// A payment between wallets and burn in one transaction.
		{Key: "p", Kind: KindPayment, Tick: 1, Entries: []Entry{{"a", -100}, {"b", -50}, {Burn, 150}}},
		// The tap's cap sees the payment made earlier in the same batch:
		// 450 + 550 is exactly the cap.
		{Key: "t", Kind: KindTap, Tick: 1, Wallet: "b", Entries: []Entry{{Mint, -550}, {"b", 550}}},
		{Key: "x", Kind: KindClose, Tick: 1, Wallet: "a"},
	}
	rs, err := l.Apply(ctx, good...)
	if err != nil {
		t.Fatal(err)
	}
	if rs[3].Amount != 550 || rs[4].Amount != 400 {
		t.Errorf("tap paid %d (want 550, up to the cap), close wrote off %d (want 400)", rs[3].Amount, rs[4].Amount)
	}
	before := mustVerify(t, l)

	bad := [][]Tx{
		// The last transaction conflicts: the first two must not stay.
		{{Key: "c1", Kind: KindRent, Tick: 2, Wallet: "b", Entries: []Entry{{"b", -1}, {Burn, 1}}},
			{Key: "o/c", Kind: KindEndow, Tick: 2, Open: &WalletSpec{Name: "c", Endowment: 7}},
			{Key: "p", Kind: KindPayment, Tick: 2, Entries: []Entry{{"a", -100}, {"b", -50}, {Burn, 150}}}},
		// The wallet was closed earlier in the batch.
		{{Key: "c2", Kind: KindRent, Tick: 2, Wallet: "b", Entries: []Entry{{"b", -1}, {Burn, 1}}},
			{Key: "x2", Kind: KindClose, Tick: 2, Wallet: "b"},
			{Key: "c3", Kind: KindRent, Tick: 2, Wallet: "b", Entries: []Entry{{"b", -1}, {Burn, 1}}}},
		// The same key twice in one batch with different content.
		{{Key: "k", Kind: KindRent, Tick: 2, Wallet: "b", Entries: []Entry{{"b", -1}, {Burn, 1}}},
			{Key: "k", Kind: KindRent, Tick: 2, Wallet: "b", Entries: []Entry{{"b", -2}, {Burn, 2}}}},
	}
	for i, txs := range bad {
		if _, err := l.Apply(ctx, txs...); err == nil {
			t.Errorf("bad batch %d applied", i)
		}
		after := mustVerify(t, l)
		if after.Txs != before.Txs || after.Minted != before.Minted || after.Burned != before.Burned {
			t.Errorf("bad batch %d left a trace: %+v, before %+v", i, after, before)
		}
	}
	if _, err := l.Account(ctx, "c"); !errors.Is(err, ErrNoAccount) {
		t.Errorf("wallet of a rolled-back batch: %v", err)
	}
	// The same key twice with the same content is one transaction.
	rs, err = l.Apply(ctx,
		Tx{Key: "k", Kind: KindRent, Tick: 2, Wallet: "b", Entries: []Entry{{"b", -1}, {Burn, 1}}},
		Tx{Key: "k", Kind: KindRent, Tick: 2, Wallet: "b", Entries: []Entry{{"b", -1}, {Burn, 1}}})
	if err != nil || rs[0].Duplicate || !rs[1].Duplicate || rs[0].ID != rs[1].ID {
		t.Errorf("same key twice: %+v, %v", rs, err)
	}
}

func TestInvalid(t *testing.T) {
	l := open(t)
	if _, err := l.OpenWallet(t.Context(), "o", 1, WalletSpec{Name: "a", Endowment: 5}); err != nil {
		t.Fatal(err)
	}
	pay := func(es ...Entry) []Entry { return es }
	for _, tc := range []struct {
		name string
		tx   Tx
		want error
	}{
		{"empty key", Tx{Kind: KindRent, Entries: pay(Entry{"a", -1}, Entry{Burn, 1})}, ErrInvalid},
		{"long key", Tx{Key: strings.Repeat("k", 257), Kind: KindRent, Entries: pay(Entry{"a", -1}, Entry{Burn, 1})}, ErrInvalid},
		{"unknown kind", Tx{Key: "k", Kind: "gift", Entries: pay(Entry{"a", -1}, Entry{Burn, 1})}, ErrInvalid},
		{"unbalanced", Tx{Key: "k", Kind: KindRent, Entries: pay(Entry{"a", -1}, Entry{Burn, 2})}, ErrInvalid},
		{"one entry", Tx{Key: "k", Kind: KindRent, Entries: pay(Entry{"a", 0})}, ErrInvalid},
		{"zero entries", Tx{Key: "k", Kind: KindRent, Entries: pay(Entry{"a", 0}, Entry{Burn, 0})}, ErrInvalid},
		{"overflowing entries", Tx{Key: "k", Kind: KindRent, Entries: pay(Entry{"a", math.MaxInt64}, Entry{Burn, 1}, Entry{Burn, math.MinInt64})}, ErrInvalid},
		{"payment minting", Tx{Key: "k", Kind: KindPayment, Entries: pay(Entry{Mint, -1}, Entry{"a", 1})}, ErrInvalid},
		{"money back into the mint", Tx{Key: "k", Kind: KindMint, Entries: pay(Entry{"a", -1}, Entry{Mint, 1})}, ErrInvalid},
		{"tap without entries", Tx{Key: "k", Kind: KindTap, Wallet: "a"}, ErrInvalid},
		{"tap without wallet", Tx{Key: "k", Kind: KindTap, Entries: pay(Entry{Mint, -1}, Entry{"a", 1})}, ErrInvalid},
		{"tap taking money", Tx{Key: "k", Kind: KindTap, Wallet: "a", Entries: pay(Entry{"a", -1}, Entry{Burn, 1})}, ErrInvalid},
		{"income without entries", Tx{Key: "k", Kind: KindIncome, Wallet: "a"}, ErrInvalid},
		{"income without wallet", Tx{Key: "k", Kind: KindIncome, Entries: pay(Entry{Mint, -1}, Entry{"a", 1})}, ErrInvalid},
		{"income taking money", Tx{Key: "k", Kind: KindIncome, Wallet: "a", Entries: pay(Entry{"a", -1}, Entry{Burn, 1})}, ErrInvalid},
		{"income of a negative amount", Tx{Key: "k", Kind: KindIncome, Wallet: "a", Entries: pay(Entry{Mint, 1}, Entry{"a", -1})}, ErrInvalid},
		{"income out of burn", Tx{Key: "k", Kind: KindIncome, Wallet: "a", Entries: pay(Entry{Burn, -1}, Entry{"a", 1})}, ErrInvalid},
		{"income to burn", Tx{Key: "k", Kind: KindIncome, Wallet: Burn, Entries: pay(Entry{Mint, -1}, Entry{Burn, 1})}, ErrInvalid},
		{"income to another account than its wallet", Tx{Key: "k", Kind: KindIncome, Wallet: "a", Entries: pay(Entry{Mint, -1}, Entry{"zz", 1})}, ErrInvalid},
		{"income split between wallets", Tx{Key: "k", Kind: KindIncome, Wallet: "a", Entries: pay(Entry{Mint, -2}, Entry{"a", 1}, Entry{"zz", 1})}, ErrInvalid},
		{"income to an unknown wallet", Tx{Key: "k", Kind: KindIncome, Wallet: "zz", Entries: pay(Entry{Mint, -1}, Entry{"zz", 1})}, ErrNoAccount},
		{"open as a mint", Tx{Key: "k", Kind: KindMint, Open: &WalletSpec{Name: "b"}}, ErrInvalid},
		{"open reserved name", Tx{Key: "k", Kind: KindEndow, Open: &WalletSpec{Name: Burn}}, ErrInvalid},
		{"open control character", Tx{Key: "k", Kind: KindEndow, Open: &WalletSpec{Name: "a\nb"}}, ErrInvalid},
		{"open negative endowment", Tx{Key: "k", Kind: KindEndow, Open: &WalletSpec{Name: "b", Endowment: -1}}, ErrInvalid},
		{"wallet not in entries", Tx{Key: "k", Kind: KindRent, Wallet: "b", Entries: pay(Entry{"a", -1}, Entry{Burn, 1})}, ErrInvalid},
		{"entry on a system account as wallet", Tx{Key: "k", Kind: KindClose, Wallet: Burn}, ErrInvalid},
		{"unknown account", Tx{Key: "k", Kind: KindRent, Entries: pay(Entry{"zz", -1}, Entry{Burn, 1})}, ErrNoAccount},
		{"balance overflow", Tx{Key: "k", Kind: KindFund, Entries: pay(Entry{Mint, -math.MaxInt64}, Entry{"a", math.MaxInt64})}, ErrOverflow},
		{"tick out of range", Tx{Key: "k", Kind: KindRent, Tick: math.MaxUint64, Entries: pay(Entry{"a", -1}, Entry{Burn, 1})}, ErrInvalid},
	} {
		_, err := l.Apply(t.Context(), tc.tx)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	rep := mustVerify(t, l)
	if rep.Txs != 1 || rep.Minted != 5 {
		t.Errorf("invalid transactions left a trace: %+v", rep)
	}
}

// TestVerifyTampered edits a ledger behind its back and expects Verify to
// say what is wrong.
func TestVerifyTampered(t *testing.T) {
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"stored balance", `UPDATE accounts SET balance = balance + 1 WHERE name = 'a'`, `account "a": stored balance 901, entries sum to 900`},
		{"entry amount", `UPDATE entries SET amount = amount + 5 WHERE account = 'a' AND amount = 1000`, `entries sum to 5`},
		{"entry amount breaks the invariant", `UPDATE entries SET amount = amount + 5 WHERE account = 'a' AND amount = 1000`, `invariant broken: minted 1000 != balances 905 + burned 100 (off by -5)`},
		{"deleted transaction", `DELETE FROM txs WHERE key = 'c'`, `no such transaction`},
		{"deleted entry", `DELETE FROM entries WHERE account = 'burn'`, `entries sum to -100`},
		{"duplicate key", `PRAGMA foreign_keys = OFF;
			CREATE TABLE t2 (id INTEGER PRIMARY KEY, key TEXT NOT NULL, kind TEXT NOT NULL, tick INTEGER NOT NULL, memo TEXT NOT NULL, digest BLOB NOT NULL, after_tick INTEGER) STRICT;
			INSERT INTO t2 SELECT * FROM txs; DROP TABLE txs; ALTER TABLE t2 RENAME TO txs;
			INSERT INTO txs (key, kind, tick, memo, digest) VALUES ('c', 'payment', 2, '', x'00')`, `key 'c' appears 2 times`},
		{"closed wallet with money", `UPDATE accounts SET balance = 3 WHERE name = 'z'`, `closed wallet "z" holds 3`},
		{"unknown account", `PRAGMA foreign_keys = OFF; UPDATE entries SET account = 'ghost' WHERE account = 'a' AND amount = -100`, `no account 'ghost'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "ledger.db")
			l, err := Open(ctx, path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.OpenWallet(ctx, "o", 1, WalletSpec{Name: "a", Endowment: 1000}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Charge(ctx, "c", 2, "a", 100, KindPayment); err != nil {
				t.Fatal(err)
			}
			if _, err := l.OpenWallet(ctx, "o/z", 3, WalletSpec{Name: "z"}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.CloseWallet(ctx, "x/z", 3, "z"); err != nil {
				t.Fatal(err)
			}
			mustVerify(t, l)
			l.Close()
			tamper(t, path, tc.sql, tc.want)
		})
	}
}

// tamper runs the SQL statements q on the closed ledger at path behind its
// back, and fails the test unless Verify then reports a problem containing
// each of want.
func tamper(t *testing.T, path, q string, want ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(q); err != nil {
		db.Close()
		t.Fatalf("tamper: %v", err)
	}
	db.Close()
	l, err := Open(t.Context(), path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep, err := l.Verify(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if rep.OK || !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, w) }) {
			t.Errorf("report %+v\nwant a problem containing %q", rep, w)
		}
	}
}

func TestLock(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v, want ErrLocked", err)
	}
	// A reader needs no lock and sees the writer's commits.
	r, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := l.OpenWallet(ctx, "o", 1, WalletSpec{Name: "a", Endowment: 42}); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, r); rep.Minted != 42 {
		t.Errorf("reader sees minted %d, want 42", rep.Minted)
	}
	if _, err := r.Fund(ctx, "f", 2, "a", 1); !errors.Is(err, ErrReadOnly) {
		t.Errorf("write through a reader: %v, want ErrReadOnly", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	l2.Close()
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	if _, err := Open(ctx, filepath.Join(dir, "missing.db"), Options{ReadOnly: true}); err == nil {
		t.Error("read-only open of a missing ledger succeeded")
	}
	// A database from the future.
	path := filepath.Join(dir, "future.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(ctx, path, Options{}); !errors.Is(err, ErrSchema) {
		t.Errorf("future schema: %v, want ErrSchema", err)
	}
	if _, err := Open(ctx, path, Options{ReadOnly: true}); !errors.Is(err, ErrSchema) {
		t.Errorf("future schema read-only: %v, want ErrSchema", err)
	}
	// Open migrates once; a second open finds the schema current.
	path = filepath.Join(dir, "sub", "dir", "ledger.db")
	for range 2 {
		l, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep := mustVerify(t, l); rep.SchemaVersion != SchemaVersion {
			t.Errorf("schema version %d", rep.SchemaVersion)
		}
		l.Close()
	}
}

func TestRecentAndAccounts(t *testing.T) {
	ctx := t.Context()
	l := open(t)
	if _, err := l.OpenWallet(ctx, "o/b", 1, WalletSpec{Name: "b", Endowment: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenWallet(ctx, "o/a", 1, WalletSpec{Name: "a", Endowment: 20, TapRate: 3, TapCap: 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Tap(ctx, "t/a", 2, "a", 5); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Charge(ctx, "c/b", 3, "b", 4, KindRent); err != nil {
		t.Fatal(err)
	}
	as, err := l.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range as {
		names = append(names, a.Name)
	}
	if !slices.Equal(names, []string{Mint, Burn, "a", "b"}) || as[0].Balance != -35 || as[1].Balance != 4 || as[2].TapRate != 3 || as[3].Balance != 6 {
		t.Errorf("accounts %+v", as)
	}
	ps, err := l.Recent(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 || ps[0].Key != "c/b" || ps[0].Kind != KindRent || ps[0].Tick != 3 ||
		!slices.Equal(ps[0].Entries, []Entry{{"b", -4}, {Burn, 4}}) || ps[1].Key != "t/a" || !slices.Equal(ps[1].Entries, []Entry{{Mint, -5}, {"a", 5}}) || ps[2].Key != "o/a" {
		t.Errorf("recent %+v", ps)
	}
}

func TestTap(t *testing.T) {
	ctx := t.Context()
	l := open(t)
	if _, err := l.OpenWallet(ctx, "o/t", 1, WalletSpec{Name: "t", Endowment: 100, TapRate: 10, TapCap: 150}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenWallet(ctx, "o/n", 1, WalletSpec{Name: "n", Endowment: 100}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key    string
		wallet string
		amount units.Credits
		ok     bool
	}{
		{"t1", "t", 30, true},  // 130
		{"t2", "t", 21, false}, // 151: past the cap
		{"t3", "t", 20, true},  // 150: at the cap
		{"t4", "t", 1, false},  // at the cap already
		{"t5", "n", 1, false},  // no tap
		{"t6", "t", 0, false},  // nothing
		{"t7", "t", -5, false}, // a tap never takes
	} {
		_, err := l.Tap(ctx, tc.key, 2, tc.wallet, tc.amount)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("Tap(%s, %d) = %v, want ok %v (or ErrInvalid)", tc.wallet, tc.amount, err, tc.ok)
		}
	}
	if a, err := l.Account(ctx, "t"); err != nil || a.Balance != 150 {
		t.Errorf("balance after taps = %+v, %v; want 150", a, err)
	}
	mustVerify(t, l)
}

func TestKeyAndDefaultPath(t *testing.T) {
	if k := Key(1234, "miner", "payment"); k != "tick:1234/cell:miner/payment" {
		t.Errorf("Key = %q", k)
	}
	for _, tc := range []struct {
		euid            int
		stateHome, home string
		want            string
	}{
		{0, "/x", "/root", "/var/lib/maxwell/ledger.db"},
		{1000, "/home/u/st", "/home/u", "/home/u/st/maxwell/ledger.db"},
		{1000, "relative", "/home/u", "/home/u/.local/state/maxwell/ledger.db"},
		{1000, "", "", "ledger.db"},
	} {
		if got := defaultPath(tc.euid, tc.stateHome, tc.home); got != tc.want {
			t.Errorf("defaultPath(%d, %q, %q) = %q, want %q", tc.euid, tc.stateHome, tc.home, got, tc.want)
		}
	}
}

// TestUserHome: a $HOME the user owns is the home; one it does not own (root's,
// kept by sudo -u) gives way to the password database's entry for the
// user; a user the database does not know keeps $HOME.
func TestUserHome(t *testing.T) {
	own := t.TempDir()
	euid := os.Geteuid()
	if got := userHome(euid, own); got != own {
		t.Errorf("userHome(%d, %q) = %q; want the $HOME it owns", euid, own, got)
	}
	if euid == 0 {
		// nobody does not own root's temporary directory: its home is the
		// database's.
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Skipf("no user nobody in the password database: %v", err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		if got := userHome(uid, own); got != nobody.HomeDir {
			t.Errorf("userHome(nobody, %q) = %q; want nobody's home %q", own, got, nobody.HomeDir)
		}
	}
	const unknown = 2147480000 // no password database entry
	if got := userHome(unknown, own); got != own {
		t.Errorf("userHome(%d, %q) = %q; want $HOME kept for a user the database does not know", unknown, own, got)
	}
	if got := userHome(euid, filepath.Join(own, "missing")); got == filepath.Join(own, "missing") {
		t.Errorf("userHome(%d, a missing $HOME) kept it; want the database's home", euid)
	}
}

func TestContextCancelled(t *testing.T) {
	l := open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.OpenWallet(ctx, "o", 1, WalletSpec{Name: "a", Endowment: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled apply: %v", err)
	}
	// The ledger is still usable.
	if _, err := l.OpenWallet(t.Context(), "o", 1, WalletSpec{Name: "a", Endowment: 1}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, l)
}

// TestConcurrent applies from several goroutines while another verifies;
// run it with -race.
func TestConcurrent(t *testing.T) {
	ctx := t.Context()
	l := open(t)
	const workers, each = 4, 25
	for w := range workers {
		if _, err := l.OpenWallet(ctx, fmt.Sprintf("open/%d", w), 0, WalletSpec{Name: fmt.Sprint("w", w), Endowment: 10_000}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Every charge is posted twice: the second is a duplicate.
				for range 2 {
					if _, err := l.Charge(ctx, fmt.Sprintf("c/%d/%d", w, i), uint64(i), fmt.Sprint("w", w), units.Credits(i+1), KindEnergy); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			rep, err := l.Verify(ctx)
			if err == nil && !rep.OK {
				err = fmt.Errorf("verify during writes: %+v", rep)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	for err := range errs {
		t.Error(err)
	}
	rep := mustVerify(t, l)
	if want := units.Credits(workers * each * (each + 1) / 2); rep.Burned != want || rep.Txs != workers+workers*each {
		t.Errorf("burned %d in %d txs, want %d in %d", rep.Burned, rep.Txs, want, workers+workers*each)
	}
}
