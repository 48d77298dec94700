package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migration takes the schema from one version to the next, in one SQLite
// transaction: its SQL, then run, if set.
type migration struct {
	sql string
	// run finishes what sql began; step bounds the rows a statement of
	// it moves (Options.stepRows).
	run func(ctx context.Context, tx *sql.Tx, step int) error
}

// migrations[i] takes the schema from version i to version i+1 (PRAGMA
// user_version). Append; never edit a migration that has shipped.
var migrations = []migration{
	// 0 → 1: accounts, transactions, entries; the two system accounts.
	{sql: `
CREATE TABLE accounts (
	name          TEXT    PRIMARY KEY,
	kind          TEXT    NOT NULL CHECK (kind IN ('mint', 'burn', 'wallet')),
	state         TEXT    NOT NULL CHECK (state IN ('open', 'closed')),
	balance       INTEGER NOT NULL DEFAULT 0,
	endowment     INTEGER NOT NULL DEFAULT 0,
	tap_rate      INTEGER NOT NULL DEFAULT 0,
	tap_cap       INTEGER NOT NULL DEFAULT 0,
	opened_tick   INTEGER NOT NULL DEFAULT 0,
	closed_tick   INTEGER,
	final_balance INTEGER
) STRICT;
CREATE TABLE txs (
	id     INTEGER PRIMARY KEY,
	key    TEXT    NOT NULL UNIQUE,
	kind   TEXT    NOT NULL,
	tick   INTEGER NOT NULL,
	memo   TEXT    NOT NULL,
	digest BLOB    NOT NULL
) STRICT;
CREATE TABLE entries (
	tx_id   INTEGER NOT NULL REFERENCES txs (id),
	seq     INTEGER NOT NULL,
	account TEXT    NOT NULL REFERENCES accounts (name),
	amount  INTEGER NOT NULL CHECK (amount != 0),
	PRIMARY KEY (tx_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX entries_account ON entries (account);
INSERT INTO accounts (name, kind, state) VALUES ('mint', 'mint', 'open'), ('burn', 'burn', 'open');
`},
	// 1 → 2: per-tick postings stored compactly (ticks), their per-minute
	// rollups (rollups) and the rollup watermark (rollup_state); accounts
	// get a stable integer id for those two tables to refer to. Postings
	// written before version 2 stay whole in txs and entries.
	{sql: `
ALTER TABLE accounts ADD COLUMN id INTEGER;
UPDATE accounts SET id = rowid;
CREATE UNIQUE INDEX accounts_id ON accounts (id);
CREATE TABLE ticks (
	tick    INTEGER NOT NULL,
	account INTEGER NOT NULL REFERENCES accounts (id),
	after   INTEGER NOT NULL,
	tap     INTEGER CHECK (tap > 0),
	payment INTEGER CHECK (payment > 0),
	energy  INTEGER CHECK (energy > 0),
	tax     INTEGER CHECK (tax > 0),
	rent    INTEGER CHECK (rent > 0),
	CHECK (COALESCE(tap, payment, energy, tax, rent) IS NOT NULL),
	PRIMARY KEY (tick, account)
) STRICT, WITHOUT ROWID;
CREATE TABLE rollups (
	account    INTEGER NOT NULL REFERENCES accounts (id),
	bucket     INTEGER NOT NULL,
	first_tick INTEGER NOT NULL,
	last_tick  INTEGER NOT NULL,
	n_tap      INTEGER NOT NULL,
	tap        INTEGER NOT NULL,
	n_payment  INTEGER NOT NULL,
	payment    INTEGER NOT NULL,
	n_energy   INTEGER NOT NULL,
	energy     INTEGER NOT NULL,
	n_tax      INTEGER NOT NULL,
	tax        INTEGER NOT NULL,
	n_rent     INTEGER NOT NULL,
	rent       INTEGER NOT NULL,
	net        INTEGER NOT NULL,
	PRIMARY KEY (bucket, account)
) STRICT, WITHOUT ROWID;
CREATE TABLE rollup_state (
	one    INTEGER PRIMARY KEY CHECK (one = 1),
	below  INTEGER NOT NULL,
	bucket INTEGER NOT NULL
) STRICT;
INSERT INTO rollup_state (one, below, bucket) VALUES (1, 0, 0);
`},
	// 2 → 3: income, a per-tick kind: a column of ticks, a count and a sum
	// in rollups. SQLite cannot change a table's CHECK constraint (ticks
	// needs income among the columns of which one must be set), so both
	// tables are rebuilt as SQLite's documentation of ALTER TABLE
	// describes: create the new table, copy the rows (moveToV3), drop the
	// old one, rename the new one, all in the migration's one
	// transaction. Foreign keys stay on: nothing refers to ticks or
	// rollups, so dropping them breaks no reference, and every row copied
	// is checked against accounts again. Rows rolled up before version 3
	// hold no income.
	{sql: `
CREATE TABLE ticks_v3 (
	tick    INTEGER NOT NULL,
	account INTEGER NOT NULL REFERENCES accounts (id),
	after   INTEGER NOT NULL,
	tap     INTEGER CHECK (tap > 0),
	income  INTEGER CHECK (income > 0),
	payment INTEGER CHECK (payment > 0),
	energy  INTEGER CHECK (energy > 0),
	tax     INTEGER CHECK (tax > 0),
	rent    INTEGER CHECK (rent > 0),
	CHECK (COALESCE(tap, income, payment, energy, tax, rent) IS NOT NULL),
	PRIMARY KEY (tick, account)
) STRICT, WITHOUT ROWID;
CREATE TABLE rollups_v3 (
	account    INTEGER NOT NULL REFERENCES accounts (id),
	bucket     INTEGER NOT NULL,
	first_tick INTEGER NOT NULL,
	last_tick  INTEGER NOT NULL,
	n_tap      INTEGER NOT NULL,
	tap        INTEGER NOT NULL,
	n_income   INTEGER NOT NULL,
	income     INTEGER NOT NULL,
	n_payment  INTEGER NOT NULL,
	payment    INTEGER NOT NULL,
	n_energy   INTEGER NOT NULL,
	energy     INTEGER NOT NULL,
	n_tax      INTEGER NOT NULL,
	tax        INTEGER NOT NULL,
	n_rent     INTEGER NOT NULL,
	rent       INTEGER NOT NULL,
	net        INTEGER NOT NULL,
	PRIMARY KEY (bucket, account)
) STRICT, WITHOUT ROWID;
`, run: moveToV3},
	// 3 → 4: changes of a wallet's tap terms (KindTerms). A change is a
	// transaction stored whole (txs, no entries); terms holds what it
	// changed, the terms it set and the ones it replaced, so that Verify
	// can tell the terms a wallet had at any point of the ledger's order.
	// accounts.closed_tx is the id of a wallet's closing transaction, for
	// Verify to check that no change came after it; it stays NULL for the
	// wallets closed before version 4, which no change can follow.
	{sql: `
CREATE TABLE terms (
	tx_id    INTEGER PRIMARY KEY REFERENCES txs (id),
	account  INTEGER NOT NULL REFERENCES accounts (id),
	tap_rate INTEGER NOT NULL CHECK (tap_rate >= 0),
	tap_cap  INTEGER NOT NULL CHECK (tap_cap >= 0),
	was_rate INTEGER NOT NULL CHECK (was_rate >= 0),
	was_cap  INTEGER NOT NULL CHECK (was_cap >= 0)
) STRICT;
CREATE INDEX terms_account ON terms (account, tx_id);
ALTER TABLE accounts ADD COLUMN closed_tx INTEGER REFERENCES txs (id);
`},
	// 4 → 5: a place in tick order for the transactions stored whole, and
	// the engine's clock. txs.after_tick is the last tick the ledger had
	// seen posted (or maintained at) when the transaction was written: the
	// economy posts opens, funds, closes and changes of terms at tick 0,
	// so their own tick says nothing of when they happened. It stays NULL
	// for the transactions written before version 5, whose place is not
	// known. clock holds anchors of the engine's clock (Options.Clock): at
	// tick, the time was unix_ns, and ticks were tick_ns apart from there
	// on; a writer records one at its first Maintain and whenever that
	// reckoning drifts from its clock by more than driftTolerance.
	{sql: `
ALTER TABLE txs ADD COLUMN after_tick INTEGER CHECK (after_tick >= 0);
CREATE TABLE clock (
	tick    INTEGER PRIMARY KEY CHECK (tick >= 0),
	unix_ns INTEGER NOT NULL,
	tick_ns INTEGER NOT NULL CHECK (tick_ns > 0)
) STRICT;
`},
}

// moveToV3 finishes the migration to version 3: it moves the rows of
// ticks and rollups into their tables of version 3 and puts those in their
// place.
func moveToV3(ctx context.Context, tx *sql.Tx, step int) error {
	for _, m := range []struct{ from, to, key, into, values string }{
		{"ticks", "ticks_v3", "tick",
			`tick, account, after, tap, payment, energy, tax, rent`,
			`tick, account, after, tap, payment, energy, tax, rent`},
		{"rollups", "rollups_v3", "bucket",
			`account, bucket, first_tick, last_tick, n_tap, tap, n_income, income, n_payment, payment, n_energy, energy, n_tax, tax, n_rent, rent, net`,
			`account, bucket, first_tick, last_tick, n_tap, tap, 0, 0, n_payment, payment, n_energy, energy, n_tax, tax, n_rent, rent, net`},
	} {
		if err := moveRows(ctx, tx, m.from, m.to, m.key, m.into, m.values, step); err != nil {
			return fmt.Errorf("move %s: %w", m.from, err)
		}
	}
	_, err := tx.ExecContext(ctx, `DROP TABLE ticks; ALTER TABLE ticks_v3 RENAME TO ticks;
		DROP TABLE rollups; ALTER TABLE rollups_v3 RENAME TO rollups;`)
	return err
}

// moveRows moves every row of the table from into the table to: into are
// to's columns, values what from's rows give them. It works in steps of
// about step rows in the order of key, an integer column that leads from's
// primary key; each step copies its rows and deletes them from from, so
// that the pages they free take the rows of the steps that follow. Copied
// at once, the old table's pages would be freed only once the new one was
// written, and the database file would keep the size of both.
func moveRows(ctx context.Context, tx *sql.Tx, from, to, key, into, values string, step int) error {
	for {
		var lo, hi sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MIN(`+key+`) FROM `+from).Scan(&lo); err != nil {
			return err
		}
		if !lo.Valid {
			return nil // all moved
		}
		err := tx.QueryRowContext(ctx, `SELECT `+key+` FROM `+from+` ORDER BY `+key+` LIMIT 1 OFFSET ?`, step).Scan(&hi)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			hi = sql.NullInt64{} // the last step: all that is left
		case err != nil:
			return err
		default:
			hi.Int64 = max(hi.Int64, lo.Int64+1) // whole keys, and at least one
		}
		where, args := "", []any{}
		if hi.Valid {
			where, args = ` WHERE `+key+` < ?`, []any{hi.Int64}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+to+` (`+into+`) SELECT `+values+` FROM `+from+where, args...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+from+where, args...); err != nil {
			return err
		}
	}
}

// SchemaVersion is the schema version this package writes.
const SchemaVersion = 5

// migrate brings the database to SchemaVersion, one migration per SQLite
// transaction, then truncates the write-ahead log if it migrated: a
// migration that moves rows leaves a log of their size, which the disk
// need not keep.
func (l *Ledger) migrate(ctx context.Context) error {
	migrated := false
	defer func() {
		if !migrated {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if c, err := l.checkpoint(ctx, CheckpointTruncate); err != nil || c.Busy {
			l.log.Warn("ledger migrated, its write-ahead log not truncated", "path", l.path, "wal_bytes", c.WALBefore, "busy", c.Busy, "err", err)
		}
	}()
	for {
		tx, err := l.db.BeginTx(ctx, nil)
		if err != nil {
			return classify(err)
		}
		v, err := userVersion(ctx, tx)
		if err == nil && v > SchemaVersion {
			err = fmt.Errorf("%w: version %d is newer than this binary's %d", ErrSchema, v, SchemaVersion)
		}
		if err != nil || v == SchemaVersion {
			tx.Rollback()
			return err
		}
		m := migrations[v]
		_, err = tx.ExecContext(ctx, m.sql)
		if err == nil && m.run != nil {
			err = m.run(ctx, tx, l.ret.stepRows)
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", v+1, classify(err))
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", v+1, classify(err))
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v+1, classify(err))
		}
		migrated = true
		l.log.Info("ledger schema migrated", "path", l.path, "version", v+1)
	}
}

// checkSchema fails unless a read-only ledger has the current schema.
func (l *Ledger) checkSchema(ctx context.Context) error {
	v, err := userVersion(ctx, l.db)
	if err != nil {
		return classify(err)
	}
	if v != SchemaVersion {
		return fmt.Errorf("%w: version %d, this binary reads %d", ErrSchema, v, SchemaVersion)
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func userVersion(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
