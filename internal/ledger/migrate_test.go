package ledger

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

// v2Fixture is a ledger of schema version 2 made by the code of that
// version (commit 698fc78): postRollupTicks without income (which is what
// postRollupFixture posted then) under rollupOpts, rolled up at tick 40
// (watermark 30: ticks 30 to 40 kept per tick, 18 rollup rows below),
// then VACUUMed and closed. See testdata/README.md.
const v2Fixture = "testdata/ledger-v2.db"

// v3Fixture is a ledger of schema version 3 made by the code of that
// version (commit 36480ad): postRollupFixture (income included) under
// rollupOpts, rolled up at tick 40, VACUUMed and closed. See
// testdata/README.md.
const v3Fixture = "testdata/ledger-v3.db"

// v4Fixture is a ledger of schema version 4 made by the code of that
// version (commit 0a039b0): postV4Fixture under rollupOpts, rolled up at
// tick 40, VACUUMed and closed. See testdata/README.md.
const v4Fixture = "testdata/ledger-v4.db"

// postV4Fixture posts what testdata/ledger-v4.db holds: postRollupFixture
// and then a change of a's terms.
func postV4Fixture(t *testing.T, l *Ledger) {
	t.Helper()
	postRollupFixture(t, l)
	if _, err := l.SetTerms(t.Context(), "terms/cell:a/1", 0, "a", 20, 10_000_000); err != nil {
		t.Fatal(err)
	}
}

// copyFixture copies the ledger fixture to a ledger.db in dir and returns
// its path.
func copyFixture(t *testing.T, fixture, dir string) string {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ledger.db")
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawDB opens the database at path with SQLite alone, closed at cleanup.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// dump returns the rows of query, one line each.
func dump(t *testing.T, db interface {
	Query(string, ...any) (*sql.Rows, error)
}, query string) string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// ledgerTables are queries that dump everything a ledger of version 2
// or later holds (accounts.closed_tx, of version 4, aside: closedTx; and
// txs.after_tick, of version 5: afterTick).
var ledgerTables = []string{
	`SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name`,
	`SELECT name, kind, state, balance, endowment, tap_rate, tap_cap, opened_tick, closed_tick, final_balance, id FROM accounts ORDER BY name`,
	`SELECT id, key, kind, tick, memo, digest FROM txs ORDER BY id`,
	`SELECT * FROM entries ORDER BY tx_id, seq`,
	`SELECT * FROM ticks ORDER BY tick, account`,
	`SELECT * FROM rollups ORDER BY bucket, account`,
	`SELECT * FROM rollup_state`,
}

// closedTx dumps the closing transaction each wallet records.
const closedTx = `SELECT name, closed_tx FROM accounts WHERE kind = 'wallet' ORDER BY name`

// afterTick dumps the place of each transaction stored whole.
const afterTick = `SELECT id, after_tick FROM txs ORDER BY id`

// migrateFixture copies fixture, a ledger of schema version from that the
// code of that version made with post's postings under rollupOpts, rolled
// up at tick 40, and opens it for writing, closed at cleanup. It checks
// that a reader refuses it until then; that, migrated, it verifies and
// keeps every balance; and that it holds exactly what this code writes for
// the same postings, whose report it returns, but for the close of its
// closed wallet c (this code records it, tx closeTx; the versions before
// 4 did not) and for the places of the transactions stored whole (this
// code records them; the versions before 5 did not).
func migrateFixture(t *testing.T, fixture string, from int, post func(*Ledger), closeTx int) (*Ledger, Report) {
	t.Helper()
	ctx := t.Context()
	path := copyFixture(t, fixture, t.TempDir())
	old := rawDB(t, path)
	var v int
	if err := old.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != from {
		t.Fatalf("fixture: schema version %d, %v; want %d", v, err, from)
	}
	before := map[string]units.Credits{}
	for line := range strings.Lines(dump(t, old, `SELECT name, balance FROM accounts`)) {
		var n string
		var b units.Credits
		if _, err := fmt.Sscan(line, &n, &b); err != nil {
			t.Fatal(err)
		}
		before[n] = b
	}
	old.Close()

	// A reader cannot read it before a writer migrated it.
	if _, err := Open(ctx, path, Options{ReadOnly: true}); !errors.Is(err, ErrSchema) ||
		!strings.Contains(err.Error(), fmt.Sprintf("version %d, this binary reads %d", from, SchemaVersion)) {
		t.Errorf("read-only open of a version %d ledger: %v, want ErrSchema saying so", from, err)
	}
	l, err := Open(ctx, path, rollupOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rep := mustVerify(t, l)
	if got := balances(t, l); !maps.Equal(got, before) {
		t.Errorf("balances after the migration %v, before %v", got, before)
	}

	// The same postings, made by this code.
	fresh, _ := openWith(t, rollupOpts)
	post(fresh)
	if _, err := fresh.Rollup(ctx, 40); err != nil {
		t.Fatal(err)
	}
	want := mustVerify(t, fresh)
	rep.DatabaseBytes, rep.WALBytes, want.DatabaseBytes, want.WALBytes = 0, 0, 0, 0
	if fmt.Sprintf("%+v", rep) != fmt.Sprintf("%+v", want) || rep.SchemaVersion != SchemaVersion || rep.RolledBelow != 30 || rep.Rollups == 0 || rep.Postings == 0 {
		t.Errorf("migrated: %+v\nwant the report of the same postings made now: %+v", rep, want)
	}
	for _, q := range append(ledgerTables, `SELECT * FROM terms ORDER BY tx_id`) {
		if got, want := dump(t, l.db, q), dump(t, fresh.db, q); got != want {
			t.Errorf("%s: migrated\n%s\nmade now\n%s", q, got, want)
		}
	}
	closes := fmt.Sprintf("a <nil>\nb <nil>\nc %d\n", closeTx)
	if got, want := dump(t, fresh.db, closedTx), closes; got != want {
		t.Errorf("closes recorded by this code:\n%s\nwant c's (tx %d)", got, closeTx)
	}
	if from < 4 {
		closes = "a <nil>\nb <nil>\nc <nil>\n" // versions before 4 kept none
	}
	if got := dump(t, l.db, closedTx); got != closes {
		t.Errorf("closes recorded after the migration from version %d:\n%s\nwant\n%s", from, got, closes)
	}
	// The place of each transaction stored whole: this code records it,
	// the versions before 5 did not.
	for line := range strings.Lines(dump(t, l.db, afterTick)) {
		if !strings.HasSuffix(line, " <nil>\n") {
			t.Errorf("after the migration: transaction (id, after_tick) %q has a place; version %d kept none", line, from)
		}
	}
	for line := range strings.Lines(dump(t, fresh.db, afterTick)) {
		if strings.HasSuffix(line, " <nil>\n") {
			t.Errorf("made now: transaction (id, after_tick) %q has no place", line)
		}
	}
	return l, want
}

// TestMigrateV2 opens the version 2 ledger that the code of version 2
// made: migrated to version 3 and on to 4, it verifies, keeps every
// balance, and holds exactly what this code writes for the same postings
// (but for the close of its closed wallet, which version 2 did not
// record); it then takes income, per tick and in its rollups, and still
// tells replays in its window and refuses them below its watermark.
func TestMigrateV2(t *testing.T) {
	ctx := t.Context()
	l, want := migrateFixture(t, v2Fixture, 2, func(l *Ledger) { postRollupTicks(t, l, false) }, 6)

	// Life after the migration.
	pay := Tx{Key: Key(38, "a", "payment"), Kind: KindPayment, Tick: 38, Wallet: "a", Entries: []Entry{{"a", -138}, {Burn, 138}}}
	if rs, err := l.Apply(ctx, pay); err != nil || !rs[0].Duplicate {
		t.Errorf("replay of a version 2 posting in the window: %+v, %v", rs, err)
	}
	pay = Tx{Key: Key(12, "a", "payment"), Kind: KindPayment, Tick: 12, Wallet: "a", Entries: []Entry{{"a", -112}, {Burn, 112}}}
	if _, err := l.Apply(ctx, pay); !errors.Is(err, ErrRolledUp) {
		t.Errorf("replay of a version 2 posting rolled up: %v, want ErrRolledUp", err)
	}
	var earned units.Credits
	for tick := uint64(41); tick <= 45; tick++ {
		if r, err := l.Income(ctx, Key(tick, "b", "income"), tick, "b", units.Credits(tick)); err != nil || r.ID != 0 {
			t.Fatalf("income at tick %d: %+v, %v", tick, r, err)
		}
		earned += units.Credits(tick)
	}
	// 54 + 1 − 10 = 45: the ticks below 45 are rolled up, income at 41 to
	// 44 in bucket 40.
	if r, err := l.Rollup(ctx, 54); err != nil || r.Below != 45 {
		t.Fatalf("rollup: %+v, %v", r, err)
	}
	after := mustVerify(t, l)
	if after.Minted != want.Minted+earned || after.Burned != want.Burned || after.Postings != 1 {
		t.Errorf("after income and a rollup: %+v, want minted %d + %d, burned %d, one posting kept", after, want.Minted, earned, want.Burned)
	}
	var n, sum int64
	if err := l.db.QueryRowContext(ctx, `SELECT n_income, income FROM rollups WHERE bucket = 40 AND account = (SELECT id FROM accounts WHERE name = 'b')`).
		Scan(&n, &sum); err != nil || n != 4 || sum != 41+42+43+44 {
		t.Errorf("b's rollup of bucket 40: %d income postings of %d credits, %v; want 4 of %d", n, sum, err, 41+42+43+44)
	}
}

// TestMigrateV2Fails: a migration that fails midway (here a row of the
// version 2 ledger that no longer fits its table: one written behind the
// ledger's back for an account that does not exist) says why and leaves
// the ledger as it was, still at version 2; once the row is gone, it
// migrates.
func TestMigrateV2Fails(t *testing.T) {
	ctx := t.Context()
	path := copyFixture(t, v2Fixture, t.TempDir())
	db := rawDB(t, path)
	if _, err := db.Exec(`PRAGMA foreign_keys = OFF; INSERT INTO ticks (tick, account, after, payment) VALUES (40, 99, 0, 1)`); err != nil {
		t.Fatal(err)
	}
	tables := func() string {
		var s strings.Builder
		for _, q := range ledgerTables {
			s.WriteString(dump(t, db, q))
		}
		return s.String()
	}
	was := tables()
	_, err := Open(ctx, path, Options{})
	if err == nil || !strings.Contains(err.Error(), "migrate to version 3") || !strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Fatalf("open: %v, want the migration to version 3 to fail on the foreign key", err)
	}
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != 2 {
		t.Errorf("after the failed migration: schema version %d, %v; want 2", v, err)
	}
	if now := tables(); now != was {
		t.Errorf("the failed migration changed the ledger:\n%s\nwas\n%s", now, was)
	}
	if _, err := db.Exec(`DELETE FROM ticks WHERE account = 99`); err != nil {
		t.Fatal(err)
	}
	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if rep := mustVerify(t, l); rep.SchemaVersion != SchemaVersion {
		t.Errorf("schema version %d", rep.SchemaVersion)
	}
}

// TestMigrateFullDisk migrates the ledgers of versions 2, 3 and 4 on a full
// file system (a real tmpfs): the migration's first step fails with
// ErrFull and leaves the database file as it was, at its version; once
// space returns, it migrates.
func TestMigrateFullDisk(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		from    int
	}{{v2Fixture, 2}, {v3Fixture, 3}, {v4Fixture, 4}} {
		t.Run(fmt.Sprint("v", tc.from), func(t *testing.T) {
			ctx := t.Context()
			dir := tmpfs(t, 1<<20)
			path := copyFixture(t, tc.fixture, dir)
			// A reader holds the write-ahead log and its index open, so
			// that what the full disk refuses is the migration's writes,
			// not their creation.
			db := rawDB(t, path)
			var v int
			if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != tc.from {
				t.Fatalf("schema version %d, %v", v, err)
			}
			was, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ballast := fillDisk(t, dir)
			_, err = Open(ctx, path, Options{})
			step := fmt.Sprintf("migrate to version %d", tc.from+1)
			if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), step) {
				t.Fatalf("open on a full disk: %v, want ErrFull from the step %q", err, step)
			}
			t.Logf("full disk: %v", err)
			if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, was) {
				t.Errorf("the failed migration changed the database file (%v)", err)
			}
			if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != tc.from {
				t.Errorf("after the failed migration: schema version %d, %v; want %d", v, err, tc.from)
			}
			db.Close()
			if err := os.Remove(ballast); err != nil {
				t.Fatal(err)
			}
			l, err := Open(ctx, path, Options{})
			if err != nil {
				t.Fatalf("open once space is back: %v", err)
			}
			defer l.Close()
			if rep := mustVerify(t, l); rep.SchemaVersion != SchemaVersion || rep.RolledBelow != 30 {
				t.Errorf("migrated: %+v", rep)
			}
		})
	}
}

// writeV2 writes, with SQLite alone, a ledger of schema version 2 at path
// as the code of that version laid it out: wallets endowed 1<<40 each,
// every one charged a payment of tick%1000+1 on every tick from 1 to
// ticks, all of them still per tick, in WAL mode; the database closed,
// its log copied in.
func writeV2(t *testing.T, path string, wallets, ticks int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `PRAGMA journal_mode = WAL; BEGIN;` + migrations[0].sql + migrations[1].sql
	for i := range wallets {
		w := fmt.Sprintf("w%d", i)
		open := Tx{Key: "open/cell:" + w, Kind: KindEndow, Wallet: w, Open: &WalletSpec{Name: w, Endowment: 1 << 40}}
		q += fmt.Sprintf(`INSERT INTO accounts (name, kind, state, endowment, id) VALUES ('%[1]s', 'wallet', 'open', %[2]d, %[3]d);
			INSERT INTO txs (id, key, kind, tick, memo, digest) VALUES (%[4]d, '%[5]s', 'endow', 0, '', x'%[6]x');
			INSERT INTO entries VALUES (%[4]d, 0, 'mint', -%[2]d), (%[4]d, 1, '%[1]s', %[2]d);`, w, 1<<40, 3+i, 1+i, open.Key, open.digest())
	}
	q += fmt.Sprintf(`WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < %d)
			INSERT INTO ticks (tick, account, after, payment) SELECT n, a.id, %d, n %% 1000 + 1 FROM t, accounts a WHERE a.kind = 'wallet';
		UPDATE accounts SET balance = endowment - (SELECT SUM(payment) FROM ticks WHERE account = accounts.id) WHERE kind = 'wallet';
		UPDATE accounts SET balance = (SELECT SUM(payment) FROM ticks) WHERE name = 'burn';
		UPDATE accounts SET balance = -(SELECT SUM(endowment) FROM accounts) WHERE name = 'mint';
		PRAGMA user_version = 2; COMMIT;`, ticks, wallets)
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateV2InPlace migrates a version 2 ledger of 80,000 per-tick rows
// in place: the database file does not grow by a copy of its tables (the
// rows are moved in steps, each step's pages taking the next one's rows),
// and the write-ahead log of the move is truncated.
func TestMigrateV2InPlace(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ledger.db")
	writeV2(t, path, 8, 10_000)
	was := fileSize(path)
	r, err := Open(ctx, path, Options{ReadOnly: true})
	if err == nil {
		r.Close()
		t.Fatal("a reader opened a version 2 ledger")
	}
	db := rawDB(t, path)
	before := dump(t, db, `SELECT name, balance FROM accounts ORDER BY name`)
	db.Close()

	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep := mustVerify(t, l)
	now, wal := fileSize(path), fileSize(path+"-wal")
	t.Logf("database %d bytes at version 2, %d migrated; log %d bytes", was, now, wal)
	if rep.SchemaVersion != SchemaVersion || rep.Postings != 80_000 || rep.Wallets != 8 {
		t.Errorf("migrated: %+v", rep)
	}
	if got := dump(t, l.db, `SELECT name, balance FROM accounts ORDER BY name`); got != before {
		t.Errorf("balances after the migration\n%s\nbefore\n%s", got, before)
	}
	if now > was*6/5 {
		t.Errorf("the migration grew the database from %d to %d bytes: more than a fifth, as if it kept a copy of its tables", was, now)
	}
	if wal != 0 {
		t.Errorf("write-ahead log of %d bytes after the migration, want it truncated", wal)
	}
}

// TestMigrateV3 opens the version 3 ledger that the code of version 3
// made: migrated to version 4, it verifies, keeps every balance, and holds
// exactly what this code writes for the same postings, with no changes of
// terms and no close recorded for its closed wallet (version 3 kept
// none); it then takes changes of terms: a tap past a wallet's old cap is
// refused before its cap is raised and accepted after, a wallet without a
// tap is given one, the closed wallet refuses one, and it still verifies
// once rolled up again.
func TestMigrateV3(t *testing.T) {
	ctx := t.Context()
	l, want := migrateFixture(t, v3Fixture, 3, func(l *Ledger) { postRollupFixture(t, l) }, 7)
	if want.TermsChanges != 0 {
		t.Errorf("a ledger of version 3 with changes of terms: %+v", want)
	}

	// Life after the migration: a holds 996080 credits, a tap of 10/s
	// below 10,000,000; b has no tap; c is closed.
	a := balance(t, l, "a")
	steps := []struct {
		name string
		do   func() (Result, error)
		err  error
		dup  bool
	}{
		{"a tap past a's cap", func() (Result, error) { return l.Tap(ctx, Key(41, "a", "tap"), 41, "a", 10_000_000-a+1) }, ErrInvalid, false},
		{"a's cap raised", func() (Result, error) { return l.SetTerms(ctx, "terms/cell:a/1", 41, "a", 10, 20_000_000) }, nil, false},
		{"the tap past the old cap", func() (Result, error) { return l.Tap(ctx, Key(41, "a", "tap"), 41, "a", 10_000_000-a+1) }, nil, false},
		{"the change replayed", func() (Result, error) { return l.SetTerms(ctx, "terms/cell:a/1", 41, "a", 10, 20_000_000) }, nil, true},
		{"a tap for b, which has none", func() (Result, error) { return l.Tap(ctx, Key(42, "b", "tap"), 42, "b", 5) }, ErrInvalid, false},
		{"b given a tap", func() (Result, error) { return l.SetTerms(ctx, "terms/cell:b/1", 42, "b", 5, 2_000_000) }, nil, false},
		{"b tapped", func() (Result, error) { return l.Tap(ctx, Key(42, "b", "tap"), 42, "b", 5) }, nil, false},
		{"c, closed at version 3", func() (Result, error) { return l.SetTerms(ctx, "terms/cell:c/1", 42, "c", 5, 2_000_000) }, ErrClosed, false},
		{"a replay of a version 3 posting in the window", func() (Result, error) {
			return l.Charge(ctx, Key(38, "a", "payment"), 38, "a", 138, KindPayment)
		}, nil, true},
	}
	for _, s := range steps {
		r, err := s.do()
		if !errors.Is(err, s.err) || (err == nil && r.Duplicate != s.dup) {
			t.Fatalf("%s: %+v, %v; want %v, duplicate %t", s.name, r, err, s.err, s.dup)
		}
	}
	if r, err := l.Rollup(ctx, 54); err != nil || r.Below != 45 {
		t.Fatalf("rollup: %+v, %v", r, err)
	}
	after := mustVerify(t, l)
	if after.TermsChanges != 2 || after.Minted != want.Minted+10_000_000-a+1+5 || after.Burned != want.Burned {
		t.Errorf("after changes of terms and a rollup: %+v", after)
	}
	if tm := terms(t, l, "a"); tm != (Terms{10, 20_000_000}) {
		t.Errorf("a's terms %+v", tm)
	}
}

// TestMigrateV4 opens the version 4 ledger that the code of version 4
// made: migrated to version 5, it verifies, keeps every balance, and holds
// exactly what this code writes for the same postings, but for the places
// of its transactions stored whole, which version 4 did not record; then
// its export says what it can: b, funded at tick 0 inside tick 7's batch,
// has no balances (its fund's place is unknown); a has them, but after its
// change of terms (at tick 0, place unknown), and ends at its balance; c's
// close at tick 30 has none (its place among that tick's postings is
// unknown). A fund posted now is placed at the last tick posted.
func TestMigrateV4(t *testing.T) {
	ctx := t.Context()
	l, _ := migrateFixture(t, v4Fixture, 4, func(l *Ledger) { postV4Fixture(t, l) }, 7)
	if _, err := l.Fund(ctx, "fund/cell:a/2", 0, "a", 77); err != nil {
		t.Fatal(err)
	}
	a := balance(t, l, "a")
	var rs []Record
	if err := l.Export(ctx, Filter{}, func(r Record) error { rs = append(rs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	var sum units.Credits
	for _, r := range rs {
		known := r.Balance != nil
		switch {
		case r.Wallet == "b" && known:
			t.Errorf("b's record %+v: a balance, though b's fund has no place", r)
		case r.Key == "terms/cell:a/1" && (known || r.Tick != 0):
			t.Errorf("a's change of terms %+v: want it at tick 0, its own, with no balance", r)
		case r.Kind == KindClose && (known || r.Tick != 30):
			t.Errorf("c's close %+v: want it at tick 30, its own, with no balance", r)
		case r.Key == "open/cell:a" && (!known || *r.Balance != 1_000_000):
			t.Errorf("a's open %+v: want the balance after it, 1000000", r)
		case r.Key == "fund/cell:a/2" && (!known || *r.Balance != a || r.Tick != 40):
			t.Errorf("the fund after the migration %+v: want it at tick 40 with a's balance %d", r, a)
		}
		if r.Wallet == "a" {
			sum += r.Amount
		}
	}
	if sum != a {
		t.Errorf("a's records sum to %d, its balance is %d", sum, a)
	}
	if last := rs[slices.IndexFunc(rs, func(r Record) bool { return r.Key == "fund/cell:a/2" })]; last.Balance == nil || *last.Balance != a {
		t.Errorf("a's last record %+v, want its balance %d", last, a)
	}
}
