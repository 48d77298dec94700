package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/maxwellhq/maxwell/internal/units"
)

// perTickKinds are the kinds of per-tick postings, in the order of their
// columns in the ticks and rollups tables (and in a tick's Recent list):
// those that mint money for the wallet (Kind.issues: tap, income), then
// the charges (Kind.charges). Each kind names its column of ticks, and its
// sum in rollups, where n_<kind> counts its postings. Every query of those
// columns is written from this list (columnsSQL, netSQL); the schema's
// migrations, which never change once shipped, spell them out.
var perTickKinds = [...]Kind{KindTap, KindIncome, KindPayment, KindEnergy, KindTax, KindRent}

// perTickColumn returns the index of k in perTickKinds.
func perTickColumn(k Kind) (int, bool) {
	i := slices.Index(perTickKinds[:], k)
	return i, i >= 0
}

// columnsSQL renders format once for each per-tick kind for which keep
// reports true (every one when keep is nil), %[1]s standing for the kind's
// column, and joins them with sep: columnsSQL("COUNT(%s)", " + ", nil) is
// "COUNT(tap) + COUNT(income) + COUNT(payment) + …".
func columnsSQL(format, sep string, keep func(Kind) bool) string {
	var parts []string
	for _, k := range perTickKinds {
		if keep == nil || keep(k) {
			parts = append(parts, fmt.Sprintf(format, k))
		}
	}
	return strings.Join(parts, sep)
}

// netSQL is the SQL of a wallet's net change from its per-tick columns,
// each rendered by format (as columnsSQL does): what the kinds that mint
// added less what the charges took, netSQL("%s") being
// "tap + income - payment - energy - tax - rent".
func netSQL(format string) string {
	var b strings.Builder
	for i, k := range perTickKinds {
		switch {
		case !k.issues():
			b.WriteString(" - ")
		case i > 0:
			b.WriteString(" + ")
		}
		fmt.Fprintf(&b, format, k)
	}
	return b.String()
}

// tickColumns lists the per-tick columns of ticks; tickRowQuery reads a
// wallet's row of one tick.
var (
	tickColumns  = columnsSQL("%s", ", ", nil)
	tickRowQuery = `SELECT after, ` + tickColumns + ` FROM ticks WHERE tick = ? AND account = ?`
)

// perTick reports whether t is a per-tick posting, stored as a column of
// its wallet's row for the tick rather than as a whole transaction, and the
// amount it moves: a payment, energy charge, tax or rent as Charge makes it
// (wallet −a, burn +a), or a tap or income as Tap and Income make them
// (mint −a, wallet +a), under its conventional key Key(t.Tick, t.Wallet,
// t.Kind), with no memo. Such a transaction's content is its key and
// amount, so the row holds all of it.
func (t *Tx) perTick() (units.Credits, bool) {
	if t.Memo != "" || t.Open != nil || len(t.Entries) != 2 || t.Wallet == "" || t.Wallet == Mint || t.Wallet == Burn {
		return 0, false
	}
	if _, ok := perTickColumn(t.Kind); !ok {
		return 0, false
	}
	// The entries perTickEntries makes, compared without making them.
	a := t.Entries[1].Amount
	from, to := t.Wallet, Burn
	if t.Kind.issues() {
		from, to = Mint, t.Wallet
	}
	if a <= 0 || t.Entries[0] != (Entry{from, -a}) || t.Entries[1] != (Entry{to, a}) || t.Key != Key(t.Tick, t.Wallet, string(t.Kind)) {
		return 0, false
	}
	return a, true
}

// perTickEntries are the entries of a per-tick posting of a credits of the
// per-tick kind k.
func perTickEntries(k Kind, wallet string, a units.Credits) []Entry {
	if k.issues() {
		return []Entry{{Mint, -a}, {wallet, a}}
	}
	return []Entry{{wallet, -a}, {Burn, a}}
}

// parsePerTickKey parses a key that a per-tick posting may have: the
// conventional Key of a per-tick kind, written exactly as Key writes it.
func parsePerTickKey(key string) (tick uint64, wallet string, k Kind, ok bool) {
	rest, found := strings.CutPrefix(key, "tick:")
	if !found {
		return 0, "", "", false
	}
	num, rest, found := strings.Cut(rest, "/cell:")
	if !found {
		return 0, "", "", false
	}
	slash := strings.LastIndexByte(rest, '/')
	if slash < 0 {
		return 0, "", "", false
	}
	wallet, k = rest[:slash], Kind(rest[slash+1:])
	if _, isCol := perTickColumn(k); !isCol {
		return 0, "", "", false
	}
	tick, err := strconv.ParseUint(num, 10, 64)
	if err != nil || Key(tick, wallet, string(k)) != key {
		return 0, "", "", false
	}
	return tick, wallet, k, true
}

// rowKey names a per-tick row.
type rowKey struct {
	tick    uint64
	account int64
}

// tickRow is a wallet's per-tick row, cached for one batch. An amount of 0
// is a kind with no posting (NULL).
type tickRow struct {
	key     rowKey
	after   int64
	amounts [len(perTickKinds)]units.Credits
	dirty   bool
}

// loadState reads, once, what a writer keeps of the ledger's state between
// batches: the rollup watermark, the highest tick of a per-tick row, and
// whether a transaction stored whole may hold a per-tick key (a ledger
// from before schema version 2, or one given such a key with other
// content). l.mu is held. Only this Ledger writes, so the state stays true
// as long as it updates it after each commit.
func (l *Ledger) loadState(ctx context.Context, tx *sql.Tx) error {
	if l.haveState {
		return nil
	}
	var below, maxRow, afterTick int64
	if err := tx.QueryRowContext(ctx, `SELECT below, (SELECT COALESCE(MAX(tick), 0) FROM ticks),
			(SELECT COALESCE(MAX(after_tick), 0) FROM txs) FROM rollup_state WHERE one = 1`).
		Scan(&below, &maxRow, &afterTick); err != nil {
		return fmt.Errorf("read rollup state: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT key FROM txs WHERE key >= 'tick:' AND key < 'tick;'`)
	if err != nil {
		return err
	}
	defer rows.Close()
	shadows := false
	for !shadows && rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		_, _, _, shadows = parsePerTickKey(k)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	l.below, l.maxRow, l.shadows, l.haveState = uint64(below), uint64(maxRow), shadows, true
	l.reached = max(l.reached, l.maxRow, uint64(afterTick))
	if l.below > 0 {
		l.reached = max(l.reached, l.below-1)
	}
	return nil
}

// lastTxID returns the highest id of a whole transaction.
func (b *batch) lastTxID() (int64, error) {
	if !b.haveID {
		if err := b.queryRow(`SELECT COALESCE(MAX(id), 0) FROM txs`).Scan(&b.lastID); err != nil {
			return 0, err
		}
		b.haveID = true
	}
	return b.lastID, nil
}

// row returns the per-tick row of account a at tick, empty if there is
// none yet.
func (b *batch) row(tick uint64, a *account) (*tickRow, error) {
	k := rowKey{tick, a.id}
	if r, ok := b.rows[k]; ok {
		return r, nil
	}
	r := &tickRow{key: k, after: -1}
	if tick > b.l.maxRow {
		// Past every row committed: there is none to read.
		b.rows[k] = r
		return r, nil
	}
	var after int64
	var amts [len(perTickKinds)]sql.NullInt64
	dest := []any{&after}
	for i := range amts {
		dest = append(dest, &amts[i])
	}
	err := b.queryRow(tickRowQuery, int64(tick), a.id).Scan(dest...)
	switch {
	case err == nil:
		r.after = after
		for i, v := range amts {
			r.amounts[i] = units.Credits(v.Int64) // 0 when NULL
		}
	case !errors.Is(err, sql.ErrNoRows):
		return nil, err
	}
	b.rows[k] = r
	return r, nil
}

// checkRollup refuses a per-tick posting at a tick already rolled up.
func (b *batch) checkRollup(tick uint64) error {
	if below := b.l.below; tick < below {
		return fmt.Errorf("%w: tick %d lies below the rollup watermark %d, past the window of per-tick postings; a replay so old can no longer be told from a new posting",
			ErrRolledUp, tick, below)
	}
	return nil
}

// applyPerTick applies the per-tick posting t of amt credits.
func (b *batch) applyPerTick(t *Tx, amt units.Credits) (Result, error) {
	r := Result{Key: t.Key}
	if err := b.checkRollup(t.Tick); err != nil {
		return r, err
	}
	w, err := b.get(t.Wallet)
	if err != nil {
		return r, err
	}
	if w.kind != "wallet" {
		return r, fmt.Errorf("%w: %q is a system account", ErrInvalid, w.name)
	}
	row, err := b.row(t.Tick, w)
	if err != nil {
		return r, err
	}
	col, _ := perTickColumn(t.Kind)
	entries := perTickEntries(t.Kind, t.Wallet, amt)
	if have := row.amounts[col]; have != 0 {
		if have != amt {
			return r, ErrKeyConflict
		}
		r.Duplicate, r.Entries, r.Amount = true, entries, amount(t, entries)
		return r, nil
	}
	if w.state != "open" {
		return r, fmt.Errorf("%w: %q", ErrClosed, w.name)
	}
	if t.Kind == KindTap {
		if err := checkTap(t, w, amt); err != nil {
			return r, err
		}
	}
	for _, e := range entries {
		if err := b.move(e); err != nil {
			return r, err
		}
	}
	if row.after < 0 {
		if row.after, err = b.lastTxID(); err != nil {
			return r, err
		}
	}
	row.amounts[col], row.dirty = amt, true
	b.maxRow = max(b.maxRow, t.Tick)
	r.Entries, r.Amount = entries, amount(t, entries)
	return r, nil
}

// shadowed fails when a per-tick posting holds the key Key(tick, wallet,
// k), or may have held it before its tick was rolled up: t, which is not a
// per-tick posting, then cannot have the same content.
func (b *batch) shadowed(tick uint64, wallet string, k Kind) error {
	if err := b.checkRollup(tick); err != nil {
		return err
	}
	a, err := b.get(wallet)
	if err != nil || a.kind != "wallet" {
		return nil // no per-tick posting can name it; the transaction itself fails or not
	}
	row, err := b.row(tick, a)
	if err != nil {
		return err
	}
	if col, _ := perTickColumn(k); row.amounts[col] != 0 {
		return ErrKeyConflict
	}
	return nil
}

// flushRows writes the per-tick rows the batch changed, in key order.
func (b *batch) flushRows() error {
	rows := make([]*tickRow, 0, len(b.rows))
	for _, r := range b.rows {
		if r.dirty {
			rows = append(rows, r)
		}
	}
	slices.SortFunc(rows, func(x, y *tickRow) int {
		return cmp.Or(cmp.Compare(x.key.tick, y.key.tick), cmp.Compare(x.key.account, y.key.account))
	})
	args := make([]any, 0, len(rows)*(3+len(perTickKinds)))
	for _, r := range rows {
		args = append(args, int64(r.key.tick), r.key.account, r.after)
		for _, a := range r.amounts {
			if a == 0 {
				args = append(args, nil)
			} else {
				args = append(args, a)
			}
		}
	}
	return b.execRows(args, 3+len(perTickKinds), func(values string) string {
		return `INSERT INTO ticks (tick, account, after, ` + tickColumns + `) VALUES ` + values + `
			ON CONFLICT (tick, account) DO UPDATE SET ` + tickUpsert
	})
}

// tickUpsert sets the per-tick columns of a row to those given.
var tickUpsert = columnsSQL("%[1]s = excluded.%[1]s", ", ", nil)
