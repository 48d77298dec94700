package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"math"

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
	Balances      units.Credits `json:"balances"`
	Wallets       int           `json:"wallets"`
	OpenWallets   int           `json:"open_wallets"`
	Txs           int64         `json:"txs"`
	Entries       int64         `json:"entries"`
	SchemaVersion int           `json:"schema_version"`
	// Problems says, one line each, what is wrong.
	Problems []string `json:"problems,omitempty"`
}

// maxProblems bounds how many problems of one check a Report lists.
const maxProblems = 20

// Verify checks the ledger in one read snapshot: SQLite's quick_check; that
// minted == Σ wallet balances + burned exactly; that every transaction sums
// to zero; that every stored balance equals the sum of its account's
// entries; that no key appears twice; that every entry belongs to a known
// transaction and account; and that closed wallets hold nothing. Problems go
// into the Report; the error is for failing to read.
func (l *Ledger) Verify(ctx context.Context) (Report, error) {
	rep := Report{}
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

	if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM txs), (SELECT COUNT(*) FROM entries)`).
		Scan(&rep.Txs, &rep.Entries); err != nil {
		return rep, fmt.Errorf("ledger: verify counts: %w", err)
	}

	// Per account: stored balance against the sum of its entries.
	rows, err := tx.QueryContext(ctx, `SELECT a.name, a.kind, a.state, a.balance,
		(SELECT COALESCE(SUM(e.amount), 0) FROM entries e WHERE e.account = a.name)
		FROM accounts a ORDER BY a.name`)
	if err != nil {
		return rep, fmt.Errorf("ledger: verify balances: %w", err)
	}
	var haveMint, haveBurn, overflow bool
	for rows.Next() {
		var name, kind, state string
		var stored, derived units.Credits
		if err := rows.Scan(&name, &kind, &state, &stored, &derived); err != nil {
			rows.Close()
			return rep, fmt.Errorf("ledger: verify balances: %w", err)
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
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}
