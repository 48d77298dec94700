package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/maxwellhq/maxwell/internal/units"
)

// TermsChange is what a transaction of kind KindTerms changed: Wallet's
// tap terms, from WasRate and WasCap to TapRate and TapCap.
type TermsChange struct {
	Wallet  string        `json:"wallet"`
	TapRate units.Credits `json:"tap_rate"`
	TapCap  units.Credits `json:"tap_cap"`
	WasRate units.Credits `json:"was_rate"`
	WasCap  units.Credits `json:"was_cap"`
}

// String renders the change as `ledger show` prints it.
func (c TermsChange) String() string {
	return fmt.Sprintf("%s: tap %d credits/s below %d → %d credits/s below %d", c.Wallet, c.WasRate, c.WasCap, c.TapRate, c.TapCap)
}

// change is a change of terms as recorded: its transaction's id, the
// terms it set and those it replaced.
type change struct {
	id       int64
	now, was Terms
}

// termsHistory is a wallet's terms through the ledger's order of
// transactions: the terms it opened with until its first change, then
// each change's from its transaction on.
type termsHistory struct {
	name    string
	state   string
	current Terms         // accounts.tap_rate, tap_cap
	closed  sql.NullInt64 // accounts.closed_tx
	changes []change      // by id
}

// opening returns the terms the wallet opened with: those the first change
// replaced, or the current ones when it never changed.
func (h *termsHistory) opening() Terms {
	if len(h.changes) > 0 {
		return h.changes[0].was
	}
	return h.current
}

// at returns the terms in force after every transaction up to id p: those
// of the last change with an id of p or less.
func (h *termsHistory) at(p int64) Terms {
	i, _ := slices.BinarySearchFunc(h.changes, p+1, func(c change, id int64) int { return cmp.Compare(c.id, id) })
	if i == 0 {
		return h.opening()
	}
	return h.changes[i-1].now
}

// tapGone returns the position from which the wallet has had no tap for
// good: a tap that can only have been applied after the transaction of
// that id, or later, found no tap to be paid by (math.MinInt64: it never
// had one; math.MaxInt64: it has one now).
func (h *termsHistory) tapGone() int64 {
	terms := []Terms{h.opening()}
	for _, c := range h.changes {
		terms = append(terms, c.now)
	}
	last := len(terms) - 1
	for last >= 0 && terms[last].TapRate <= 0 {
		last--
	}
	switch {
	case last == len(terms)-1:
		return math.MaxInt64
	case last < 0:
		return math.MinInt64
	}
	// terms[last+1] is set by changes[last]: the change that took the tap
	// away, for the last time.
	return h.changes[last].id
}

// verifyTerms checks the changes of terms and the taps against them: each
// change belongs to a wallet that was not closed before it (the close's
// transaction, accounts.closed_tx, comes after it), the terms each replaced
// are those the one before it set, the last one's are the account's; and
// every tap was paid to a wallet that had a tap at its place in the
// ledger's order. mv holds what the per-tick rows and rollups say of taps.
// It returns the number of changes.
func verifyTerms(ctx context.Context, tx *sql.Tx, mv moved, problem func(string, ...any)) (int64, error) {
	n := 0
	report := func(format string, args ...any) {
		if n++; n <= maxProblems {
			problem(format, args...)
		}
	}
	wallets := map[int64]*termsHistory{}
	rows, err := tx.QueryContext(ctx, `SELECT id, name, state, tap_rate, tap_cap, closed_tx FROM accounts WHERE kind = 'wallet' AND id IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("ledger: verify terms: %w", err)
	}
	for rows.Next() {
		var id int64
		h := &termsHistory{}
		if err := rows.Scan(&id, &h.name, &h.state, &h.current.TapRate, &h.current.TapCap, &h.closed); err != nil {
			rows.Close()
			return 0, fmt.Errorf("ledger: verify terms: %w", err)
		}
		wallets[id] = h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("ledger: verify terms: %w", err)
	}

	// The changes, wallet by wallet in the ledger's order.
	rows, err = tx.QueryContext(ctx, `SELECT tx_id, account, tap_rate, tap_cap, was_rate, was_cap FROM terms ORDER BY account, tx_id`)
	if err != nil {
		return 0, fmt.Errorf("ledger: verify terms: %w", err)
	}
	var changes int64
	for rows.Next() {
		var c change
		var id int64
		if err := rows.Scan(&c.id, &id, &c.now.TapRate, &c.now.TapCap, &c.was.TapRate, &c.was.TapCap); err != nil {
			rows.Close()
			return 0, fmt.Errorf("ledger: verify terms: %w", err)
		}
		changes++
		h, ok := wallets[id]
		if !ok {
			report("change of terms in tx %d: account id %d is no wallet", c.id, id)
			continue
		}
		if k := len(h.changes); k > 0 && h.changes[k-1].now != c.was {
			report("wallet %q: tx %d changed its terms from %s, but tx %d had set %s", h.name, c.id, termsText(c.was), h.changes[k-1].id, termsText(h.changes[k-1].now))
		}
		switch {
		case h.state != "closed":
		case !h.closed.Valid:
			report("wallet %q: tx %d changed its terms, but it was closed before schema version 4, when no change was possible", h.name, c.id)
		case h.closed.Int64 < c.id:
			report("wallet %q: tx %d changed its terms after its close (tx %d)", h.name, c.id, h.closed.Int64)
		}
		h.changes = append(h.changes, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("ledger: verify terms: %w", err)
	}
	ids := slices.Sorted(maps.Keys(wallets))
	for _, id := range ids {
		h := wallets[id]
		if k := len(h.changes); k > 0 && h.changes[k-1].now != h.current {
			report("wallet %q: its account has %s, its last change of terms (tx %d) set %s", h.name, termsText(h.current), h.changes[k-1].id, termsText(h.changes[k-1].now))
		}
	}

	// Taps stored whole: exactly placed, so held to the terms in force just
	// before them.
	rows, err = tx.QueryContext(ctx, `SELECT t.id, t.key, a.id FROM txs t
		LEFT JOIN entries e ON e.tx_id = t.id AND e.amount > 0
		LEFT JOIN accounts a ON a.name = e.account AND a.kind = 'wallet'
		WHERE t.kind = 'tap' ORDER BY t.id`)
	if err != nil {
		return 0, fmt.Errorf("ledger: verify taps: %w", err)
	}
	type wholeTap struct {
		id  int64
		key string
		ok  bool // a wallet it credits had a tap just before it
	}
	var taps []wholeTap
	for rows.Next() {
		var tid int64
		var key string
		var wallet sql.NullInt64
		if err := rows.Scan(&tid, &key, &wallet); err != nil {
			rows.Close()
			return 0, fmt.Errorf("ledger: verify taps: %w", err)
		}
		if k := len(taps); k == 0 || taps[k-1].id != tid {
			taps = append(taps, wholeTap{id: tid, key: key})
		}
		if h, ok := wallets[wallet.Int64]; wallet.Valid && ok && h.at(tid-1).TapRate > 0 {
			taps[len(taps)-1].ok = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("ledger: verify taps: %w", err)
	}
	for _, tp := range taps {
		if !tp.ok {
			report("tx %d %q: a tap, but no wallet it credits had a tap then", tp.id, tp.key)
		}
	}

	// Per-tick taps: a row's after says which transaction came last before
	// its first posting, not when its tap was added, so a tap in it may
	// have met the terms in force then or those of any later change. The
	// latest row of a wallet with a tap is the one to check: it has the
	// fewest terms to have met.
	for _, id := range slices.Sorted(maps.Keys(mv.tapAfter)) {
		h, ok := wallets[id]
		if !ok {
			continue // the check of the per-tick rows reports it
		}
		gone := h.tapGone()
		if after := mv.tapAfter[id]; after < gone {
			continue
		}
		var count, first, last int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), MIN(tick), MAX(tick) FROM ticks WHERE account = ? AND `+string(KindTap)+` IS NOT NULL AND after >= ?`,
			id, gone).Scan(&count, &first, &last); err != nil {
			return 0, fmt.Errorf("ledger: verify taps: %w", err)
		}
		if gone == math.MinInt64 {
			report("wallet %q: %d per-tick taps (ticks %d to %d), but it never had a tap", h.name, count, first, last)
		} else {
			report("wallet %q: %d per-tick taps (ticks %d to %d) in rows written after tx %d, which took its tap away for good", h.name, count, first, last, gone)
		}
	}
	// Rolled-up taps: the detail of their places is gone; the wallet must
	// have had a tap at some time.
	for _, id := range slices.Sorted(maps.Keys(mv.rolledTaps)) {
		if h, ok := wallets[id]; ok && mv.rolledTaps[id] > 0 && h.tapGone() == math.MinInt64 {
			report("wallet %q: %d rolled-up taps, but it never had a tap", h.name, mv.rolledTaps[id])
		}
	}
	if n > maxProblems {
		problem("terms and taps: %d more", n-maxProblems)
	}
	return changes, nil
}

// termsText renders terms in a problem's words.
func termsText(t Terms) string {
	return fmt.Sprintf("a tap of %d credits/s below %d", t.TapRate, t.TapCap)
}
