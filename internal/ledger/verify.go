package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Report is what Verify found. Figures are derived from the entries, not from
// the stored balances (which Verify checks against them).
type Report struct {
	// OK: no problems; in particular Minted == Balances + Burned.
	OK bool `json:"ok"`
	// Minted is all money ever issued (−Σ entries of the mint), credits.
	Minted units.Credits `json:"minted"`
	// Burned is the net money in the burn account, credits.
	Burned units.Credits `json:"burned"`
	// Balances is Σ wallet balances, credits.
	Balances    units.Credits `json:"balances"`
	Wallets     int           `json:"wallets"`
	OpenWallets int           `json:"open_wallets"`
	// Txs counts the transactions in the ledger's detail: those stored
	// whole and the per-tick postings not rolled up yet; Entries counts
	// their entries.
	Txs     int64 `json:"txs"`
	Entries int64 `json:"entries"`
	// Postings is how many of Txs are per-tick postings.
	Postings int64 `json:"postings"`
	// Rollups is the number of rollup rows (one per wallet and bucket of
	// ticks), RolledUp the number of per-tick postings they replace.
	Rollups  int64 `json:"rollups"`
	RolledUp int64 `json:"rolled_up"`
	// RolledBelow is the rollup watermark: the per-tick postings of every
	// tick below it are rolled up.
	RolledBelow uint64 `json:"rolled_below"`
	// TermsChanges is the number of changes of tap terms (KindTerms, among
	// Txs).
	TermsChanges int64 `json:"terms_changes"`
	// ClockAnchors is the number of anchors of the engine's clock, which
	// tell the times of ticks (Options.Clock); without any, times are
	// estimated.
	ClockAnchors int64 `json:"clock_anchors"`
	// DatabaseBytes and WALBytes are the sizes of the database file and
	// of its write-ahead log.
	DatabaseBytes int64 `json:"database_bytes"`
	WALBytes      int64 `json:"wal_bytes"`
	SchemaVersion int   `json:"schema_version"`
	// Problems says, one line each, what is wrong.
	Problems []string `json:"problems,omitempty"`
}

// maxProblems bounds how many problems of one check a Report lists.
const maxProblems = 20

// Verify checks the ledger in one read snapshot: SQLite's quick_check; that
// minted == Σ wallet balances + burned exactly; that every transaction sums
// to zero; that every stored balance equals the sum of its account's
// entries, per-tick postings and rollups; that no key appears twice, not
// even once whole and once as a per-tick posting; that every entry belongs
// to a known transaction and account; that closed wallets hold nothing;
// and, of the rollups, that every row balances (the wallet's net change is
// its taps less its charges), that its counts fit its sums and its span of
// ticks, that no two rows of a wallet overlap, and that the watermark
// parts them from the per-tick postings, none of which lies below it.
//
// Of the changes of tap terms (KindTerms) and the taps, it checks that
// every change has no entries and records its terms, belongs to a wallet
// that had not closed before it, replaced the terms the change before it
// had set, and that a wallet's last change set its account's terms; and
// that every tap was paid to a wallet that had a tap (a rate above 0) at
// its place in the ledger's order: exactly for a tap stored whole, at or
// after the first posting of its row for a per-tick tap, at some time for
// a rolled-up one. A tap's cap cannot be checked afterwards (the balance
// before it is not kept); Apply checks it.
//
// Problems go into the Report; the error is for failing to read.
func (l *Ledger) Verify(ctx context.Context) (Report, error) {
	rep := Report{DatabaseBytes: fileSize(l.path), WALBytes: fileSize(l.path + "-wal")}
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return rep, fmt.Errorf("ledger: verify: %w", err)
	}
	defer tx.Rollback()
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }

	if rep.SchemaVersion, err = userVersion(ctx, tx); err != nil {
		return rep, fmt.Errorf("ledger: verify: %w", err)
	}
	if rep.SchemaVersion != SchemaVersion {
		problem("schema version %d, want %d", rep.SchemaVersion, SchemaVersion)
	}

	// lines runs a query whose rows are each one problem, formatted by f
	// ("" for a row that is not a problem).
	lines := func(what, query string, f func(*sql.Rows) (string, error)) error {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return fmt.Errorf("ledger: verify %s: %w", what, err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			s, err := f(rows)
			if err != nil {
				return fmt.Errorf("ledger: verify %s: %w", what, err)
			}
			if s == "" {
				continue
			}
			if n++; n <= maxProblems {
				problem("%s", s)
			}
		}
		if n > maxProblems {
			problem("%s: %d more", what, n-maxProblems)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("ledger: verify %s: %w", what, err)
		}
		return nil
	}

	err = lines("integrity", `PRAGMA quick_check`, func(r *sql.Rows) (string, error) {
		var s string
		err := r.Scan(&s)
		if s == "ok" {
			return "", err
		}
		return "sqlite quick_check: " + s, err
	})
	if err != nil {
		return rep, err
	}

	var below int64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM txs), (SELECT COUNT(*) FROM entries),
		(SELECT below FROM rollup_state WHERE one = 1)`).
		Scan(&rep.Txs, &rep.Entries, &below); err != nil {
		return rep, fmt.Errorf("ledger: verify counts: %w", err)
	}
	rep.RolledBelow = uint64(below)

	// What the per-tick postings and the rollups move, per account id.
	mv, err := verifyMoved(ctx, tx, &rep)
	if err != nil {
		return rep, err
	}
	rep.Txs += rep.Postings
	rep.Entries += 2 * rep.Postings

	// Per account: stored balance against the sum of its entries,
	// per-tick postings and rollups.
	rows, err := tx.QueryContext(ctx, `SELECT a.name, a.id, a.kind, a.state, a.balance,
		(SELECT COALESCE(SUM(e.amount), 0) FROM entries e WHERE e.account = a.name)
		FROM accounts a ORDER BY a.name`)
	if err != nil {
		return rep, fmt.Errorf("ledger: verify balances: %w", err)
	}
	var haveMint, haveBurn, overflow bool
	for rows.Next() {
		var name, kind, state string
		var id sql.NullInt64
		var stored, derived units.Credits
		if err := rows.Scan(&name, &id, &kind, &state, &stored, &derived); err != nil {
			rows.Close()
			return rep, fmt.Errorf("ledger: verify balances: %w", err)
		}
		if !id.Valid {
			problem("account %q has no id", name)
		}
		var add units.Credits
		switch kind {
		case "mint":
			add = -mv.tapped
		case "burn":
			add = mv.charged
		default:
			add = mv.net[id.Int64]
			delete(mv.net, id.Int64)
		}
		if d, ok := derived.Add(add); ok {
			derived = d
		} else {
			overflow = true
		}
		if stored != derived {
			problem("account %q: stored balance %d, entries sum to %d", name, stored, derived)
		}
		var ok bool
		switch kind {
		case "mint":
			haveMint = true
			if derived > 0 {
				problem("mint balance %d is positive: money returned to the mint", derived)
			}
			ok = derived != math.MinInt64 // −MinInt64 overflows
			rep.Minted = -derived
		case "burn":
			haveBurn = true
			rep.Burned = derived
			ok = true
		default:
			rep.Wallets++
			if state == "open" {
				rep.OpenWallets++
			} else if stored != 0 || derived != 0 {
				problem("closed wallet %q holds %d (entries %d)", name, stored, derived)
			}
			rep.Balances, ok = rep.Balances.Add(derived)
		}
		overflow = overflow || !ok
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("ledger: verify balances: %w", err)
	}
	if !haveMint || !haveBurn {
		problem("system account missing (mint %t, burn %t)", haveMint, haveBurn)
	}
	for _, id := range slices.Sorted(maps.Keys(mv.net)) {
		problem("per-tick postings or rollups of net %d for account id %d, which is no wallet", mv.net[id], id)
	}
	overflow = overflow || mv.overflow
	if sum, ok := rep.Balances.Add(rep.Burned); overflow || !ok {
		problem("sums overflow int64: %v", ErrOverflow)
	} else if rep.Minted != sum {
		problem("invariant broken: minted %d != balances %d + burned %d (off by %d)",
			rep.Minted, rep.Balances, rep.Burned, rep.Minted-sum)
	}

	checks := []struct{ what, query string }{
		{"unbalanced", `SELECT 'tx ' || t.id || ' ' || quote(t.key) || ': entries sum to ' || SUM(e.amount)
			FROM entries e JOIN txs t ON t.id = e.tx_id GROUP BY e.tx_id HAVING SUM(e.amount) != 0 ORDER BY e.tx_id`},
		{"duplicate keys", `SELECT 'key ' || quote(key) || ' appears ' || COUNT(*) || ' times'
			FROM txs GROUP BY key HAVING COUNT(*) > 1 ORDER BY key`},
		{"orphan entries", `SELECT 'entry of tx ' || e.tx_id || ' seq ' || e.seq || ': no such transaction'
			FROM entries e WHERE e.tx_id NOT IN (SELECT id FROM txs) ORDER BY e.tx_id, e.seq`},
		{"unknown accounts", `SELECT 'entry of tx ' || e.tx_id || ' seq ' || e.seq || ': no account ' || quote(e.account)
			FROM entries e WHERE e.account NOT IN (SELECT name FROM accounts) ORDER BY e.tx_id, e.seq`},
		{"zero entries", `SELECT 'entry of tx ' || tx_id || ' seq ' || seq || ' is zero' FROM entries WHERE amount = 0`},
		{"per-tick postings", `SELECT 'per-tick row of tick ' || t.tick || ', account id ' || t.account || ': ' || CASE
				WHEN a.kind IS NULL THEN 'no such account'
				WHEN a.kind != 'wallet' THEN 'a ' || a.kind || ' account, not a wallet'
				WHEN t.tick < s.below THEN 'lies below the rollup watermark ' || s.below || ': rolled up and kept at once'
				ELSE 'holds no posting, or one of no credits or fewer' END
			FROM ticks t CROSS JOIN rollup_state s LEFT JOIN accounts a ON a.id = t.account
			WHERE a.kind IS NOT 'wallet' OR t.tick < s.below
				OR COALESCE(` + columnsSQL("t.%s", ", ", nil) + `) IS NULL
				OR ` + columnsSQL("t.%s <= 0", " OR ", nil) + `
			ORDER BY t.tick, t.account`},
		// Income is money minted for a wallet, exactly: the mint −a and
		// one wallet +a (the check of the sums above makes them equal).
		// Unlike a tap's, its amount has no cap to check.
		{"income", `SELECT 'tx ' || t.id || ' ' || quote(t.key) || ': an income, but not money minted for a wallet (' ||
				(SELECT group_concat(e.account || ' ' || e.amount, ', ') FROM entries e WHERE e.tx_id = t.id) || ')'
			FROM txs t WHERE t.kind = 'income' AND NOT (
				(SELECT COUNT(*) FROM entries e WHERE e.tx_id = t.id) = 2
				AND EXISTS (SELECT 1 FROM entries e WHERE e.tx_id = t.id AND e.account = 'mint' AND e.amount < 0)
				AND EXISTS (SELECT 1 FROM entries e JOIN accounts a ON a.name = e.account
					WHERE e.tx_id = t.id AND a.kind = 'wallet' AND e.amount > 0))
			ORDER BY t.id`},
		// A change of terms moves no money, records what it changed, and
		// is the only kind that does.
		{"terms with entries", `SELECT 'tx ' || t.id || ' ' || quote(t.key) || ': a change of terms with ' || COUNT(*) || ' entries; it moves no money'
			FROM txs t JOIN entries e ON e.tx_id = t.id WHERE t.kind = 'terms' GROUP BY t.id ORDER BY t.id`},
		{"terms unrecorded", `SELECT 'tx ' || t.id || ' ' || quote(t.key) || ': a change of terms that records no terms'
			FROM txs t LEFT JOIN terms m ON m.tx_id = t.id WHERE t.kind = 'terms' AND m.tx_id IS NULL ORDER BY t.id`},
		{"terms of other transactions", `SELECT 'terms of tx ' || m.tx_id || ': ' || CASE WHEN t.id IS NULL THEN 'no such transaction'
				ELSE 'a transaction of kind ' || t.kind || ', not a change of terms' END
			FROM terms m LEFT JOIN txs t ON t.id = m.tx_id WHERE t.kind IS NOT 'terms' ORDER BY m.tx_id`},
		// The close a wallet records is a close, and only a closed
		// wallet records one.
		{"closes", `SELECT 'wallet ' || quote(a.name) || ': ' || CASE WHEN a.state != 'closed' THEN 'open, yet it records tx ' || a.closed_tx || ' as its close'
				ELSE 'closed by tx ' || a.closed_tx || ', ' || COALESCE('of kind ' || t.kind, 'which does not exist') || ', not a close' END
			FROM accounts a LEFT JOIN txs t ON t.id = a.closed_tx
			WHERE a.closed_tx IS NOT NULL AND (a.state != 'closed' OR t.kind IS NOT 'close') ORDER BY a.name`},
	}
	for _, c := range checks {
		err := lines(c.what, c.query, func(r *sql.Rows) (string, error) {
			var s string
			return s, r.Scan(&s)
		})
		if err != nil {
			return rep, err
		}
	}
	if err := verifyRollups(ctx, tx, rep.RolledBelow, problem); err != nil {
		return rep, err
	}
	if err := verifyShadows(ctx, tx, problem); err != nil {
		return rep, err
	}
	if rep.TermsChanges, err = verifyTerms(ctx, tx, mv, problem); err != nil {
		return rep, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM clock`).Scan(&rep.ClockAnchors); err != nil {
		return rep, err
	}
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// moved is what per-tick postings and rollups move.
type moved struct {
	net      map[int64]units.Credits // per wallet id: taps and income less charges
	tapped   units.Credits           // out of the mint: taps and income
	charged  units.Credits           // into burn
	overflow bool
	// Per wallet id: the highest after of its per-tick rows that hold a
	// tap, and the number of its rolled-up taps.
	tapAfter   map[int64]int64
	rolledTaps map[int64]int64
}

// verifyMoved sums the per-tick postings and the rollups, and counts them
// into rep.
func verifyMoved(ctx context.Context, tx *sql.Tx, rep *Report) (moved, error) {
	m := moved{net: map[int64]units.Credits{}, tapAfter: map[int64]int64{}, rolledTaps: map[int64]int64{}}
	add := func(sum *units.Credits, v units.Credits) {
		var ok bool
		if *sum, ok = sum.Add(v); !ok {
			m.overflow = true
		}
	}
	for _, q := range []struct{ what, query string }{
		{"per-tick postings", `SELECT account, COUNT(*), ` + columnsSQL("COUNT(%s)", " + ", nil) + `,
			` + columnsSQL("COALESCE(SUM(%s), 0)", " + ", Kind.issues) + `, ` + columnsSQL("COALESCE(SUM(%s), 0)", " + ", Kind.charges) + `,
			` + netSQL("COALESCE(SUM(%s), 0)") + `, MAX(CASE WHEN ` + string(KindTap) + ` IS NOT NULL THEN after END)
			FROM ticks GROUP BY account`},
		{"rollups", `SELECT account, COUNT(*), SUM(` + columnsSQL("n_%s", " + ", nil) + `),
			` + columnsSQL("SUM(%s)", " + ", Kind.issues) + `, ` + columnsSQL("SUM(%s)", " + ", Kind.charges) + `, SUM(net), SUM(n_` + string(KindTap) + `)
			FROM rollups GROUP BY account`},
	} {
		rows, err := tx.QueryContext(ctx, q.query)
		if err != nil {
			return m, fmt.Errorf("ledger: verify %s: %w", q.what, err)
		}
		for rows.Next() {
			var id, n, postings int64
			var tapped, charged, net units.Credits
			var taps sql.NullInt64 // per tick: the last row's after; rolled up: how many
			if err := rows.Scan(&id, &n, &postings, &tapped, &charged, &net, &taps); err != nil {
				rows.Close()
				return m, fmt.Errorf("ledger: verify %s: %w", q.what, err)
			}
			if q.what == "rollups" {
				rep.Rollups += n
				rep.RolledUp += postings
				m.rolledTaps[id] += taps.Int64
			} else {
				rep.Postings += postings
				if taps.Valid {
					m.tapAfter[id] = taps.Int64
				}
			}
			add(&m.tapped, tapped)
			add(&m.charged, charged)
			w := m.net[id]
			add(&w, net)
			m.net[id] = w
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return m, fmt.Errorf("ledger: verify %s: %w", q.what, err)
		}
	}
	return m, nil
}

// verifyRollups checks every rollup row on its own, and each wallet's rows
// against each other and the watermark.
func verifyRollups(ctx context.Context, tx *sql.Tx, below uint64, problem func(string, ...any)) error {
	rows, err := tx.QueryContext(ctx, `SELECT r.account, COALESCE(a.name, ''), COALESCE(a.kind, ''), r.bucket, r.first_tick, r.last_tick,
		`+columnsSQL("r.n_%[1]s, r.%[1]s", ", ", nil)+`, r.net
		FROM rollups r LEFT JOIN accounts a ON a.id = r.account ORDER BY r.account, r.first_tick`)
	if err != nil {
		return fmt.Errorf("ledger: verify rollups: %w", err)
	}
	defer rows.Close()
	n := 0
	report := func(format string, args ...any) {
		if n++; n <= maxProblems {
			problem(format, args...)
		}
	}
	prev, prevLast := int64(-1), int64(-1)
	for rows.Next() {
		var id, bucket, first, last int64
		var name, kind string
		var counts, sums [len(perTickKinds)]int64
		var net units.Credits
		dest := []any{&id, &name, &kind, &bucket, &first, &last}
		for i := range perTickKinds {
			dest = append(dest, &counts[i], &sums[i])
		}
		if err := rows.Scan(append(dest, &net)...); err != nil {
			return fmt.Errorf("ledger: verify rollups: %w", err)
		}
		what := fmt.Sprintf("rollup of %q (account id %d) at bucket %d, ticks %d to %d", name, id, bucket, first, last)
		if kind != "wallet" {
			report("%s: no such wallet", what)
		}
		if first < bucket || last < first {
			report("%s: ticks out of order", what)
		}
		if uint64(last) >= below {
			report("%s: at or above the rollup watermark %d", what, below)
		}
		if id == prev && first <= prevLast {
			report("%s: overlaps the wallet's rollup that ends at tick %d", what, prevLast)
		}
		prev, prevLast = id, last
		var want units.Credits
		ok := true
		for i, k := range perTickKinds {
			c, s := counts[i], sums[i]
			switch {
			case c < 0 || (c == 0) != (s == 0) || s < c:
				report("%s: %d %s postings cannot sum to %d (each is at least one credit)", what, c, k, s)
			case c > last-first+1:
				report("%s: %d %s postings in %d ticks (at most one a tick)", what, c, k, last-first+1)
			}
			if k.issues() {
				var o bool
				want, o = want.Add(units.Credits(s))
				ok = ok && o
			} else {
				var o bool
				want, o = want.Sub(units.Credits(s))
				ok = ok && o
			}
		}
		if !ok {
			report("%s: sums overflow int64", what)
		} else if net != want {
			report("%s: does not balance: the wallet's net change is %d, its taps and income less its charges %d", what, net, want)
		}
	}
	if n > maxProblems {
		problem("rollups: %d more", n-maxProblems)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: verify rollups: %w", err)
	}
	return nil
}

// verifyShadows finds keys held twice: by a transaction stored whole and
// by a per-tick posting.
func verifyShadows(ctx context.Context, tx *sql.Tx, problem func(string, ...any)) error {
	rows, err := tx.QueryContext(ctx, `SELECT key FROM txs WHERE key >= 'tick:' AND key < 'tick;' ORDER BY key`)
	if err != nil {
		return fmt.Errorf("ledger: verify keys: %w", err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return fmt.Errorf("ledger: verify keys: %w", err)
		}
		if _, _, _, ok := parsePerTickKey(k); ok {
			keys = append(keys, k)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: verify keys: %w", err)
	}
	n := 0
	for _, k := range keys {
		tick, wallet, kind, _ := parsePerTickKey(k)
		col, _ := perTickColumn(kind)
		var held int
		err := tx.QueryRowContext(ctx, `SELECT `+string(perTickKinds[col])+` IS NOT NULL FROM ticks t JOIN accounts a ON a.id = t.account
			WHERE t.tick = ? AND a.name = ?`, int64(tick), wallet).Scan(&held)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("ledger: verify keys: %w", err)
		case held != 0:
			if n++; n <= maxProblems {
				problem("key %q appears twice: stored whole and as a per-tick posting", k)
			}
		}
	}
	if n > maxProblems {
		problem("keys held twice: %d more", n-maxProblems)
	}
	return nil
}
