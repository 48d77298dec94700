package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Account is an account as stored.
type Account struct {
	Name string `json:"name"`
	// Kind is "mint", "burn" or "wallet".
	Kind string `json:"kind"`
	// State is "open" or "closed".
	State string `json:"state"`
	// Balance in credits.
	Balance   units.Credits `json:"balance"`
	Endowment units.Credits `json:"endowment"`
	// TapRate in credits per second, TapCap in credits.
	TapRate    units.Credits `json:"tap_rate"`
	TapCap     units.Credits `json:"tap_cap"`
	OpenedTick uint64        `json:"opened_tick"`
	ClosedTick *uint64       `json:"closed_tick,omitempty"`
	// FinalBalance is what the wallet held when it closed, written off.
	FinalBalance *units.Credits `json:"final_balance,omitempty"`
}

const accountCols = `name, kind, state, balance, endowment, tap_rate, tap_cap, opened_tick, closed_tick, final_balance`

func scanAccount(s interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var opened int64
	var closed, final sql.NullInt64
	if err := s.Scan(&a.Name, &a.Kind, &a.State, &a.Balance, &a.Endowment, &a.TapRate, &a.TapCap,
		&opened, &closed, &final); err != nil {
		return a, err
	}
	a.OpenedTick = uint64(opened)
	if closed.Valid {
		t := uint64(closed.Int64)
		a.ClosedTick = &t
	}
	if final.Valid {
		f := units.Credits(final.Int64)
		a.FinalBalance = &f
	}
	return a, nil
}

// Account returns the account called name, or ErrNoAccount.
func (l *Ledger) Account(ctx context.Context, name string) (Account, error) {
	a, err := scanAccount(l.db.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("ledger: %w: %q", ErrNoAccount, name)
	}
	if err != nil {
		return a, fmt.Errorf("ledger: account %q: %w", name, err)
	}
	return a, nil
}

// Accounts returns every account: mint, burn, then the wallets by name.
func (l *Ledger) Accounts(ctx context.Context) ([]Account, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts
		ORDER BY CASE kind WHEN 'mint' THEN 0 WHEN 'burn' THEN 1 ELSE 2 END, name`)
	if err != nil {
		return nil, fmt.Errorf("ledger: accounts: %w", err)
	}
	defer rows.Close()
	var as []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("ledger: accounts: %w", err)
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: accounts: %w", err)
	}
	return as, nil
}

// Posted is a transaction as recorded.
type Posted struct {
	// ID is the sequence number of a transaction stored whole; 0 for a
	// per-tick posting, which its key names.
	ID      int64   `json:"id"`
	Key     string  `json:"key"`
	Kind    Kind    `json:"kind"`
	Tick    uint64  `json:"tick"`
	Memo    string  `json:"memo,omitempty"`
	Entries []Entry `json:"entries"`
	// Terms is what a change of terms (KindTerms, no entries) changed.
	Terms *TermsChange `json:"terms,omitempty"`
}

// Recent returns the last limit transactions, newest first. Per-tick
// postings are ordered by tick, wallet and kind, and placed among the
// transactions stored whole by when they were written.
func (l *Ledger) Recent(ctx context.Context, limit int) ([]Posted, error) {
	if limit <= 0 {
		return nil, nil
	}
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("ledger: recent: %w", err)
	}
	defer tx.Rollback()
	whole, err := recentWhole(ctx, tx, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: recent: %w", err)
	}
	perTick, err := recentPerTick(ctx, tx, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: recent: %w", err)
	}
	all := append(whole, perTick...)
	slices.SortStableFunc(all, func(a, b recent) int { return b.compare(a) })
	ps := make([]Posted, 0, min(limit, len(all)))
	for _, r := range all[:min(limit, len(all))] {
		ps = append(ps, r.p)
	}
	return ps, nil
}

// recent is a transaction with its place in the ledger's history: a whole
// transaction by its id; a per-tick posting after the whole transaction
// that was the last when its row was written, then by tick, account and
// kind.
type recent struct {
	p                   Posted
	seq                 int64 // id, or the row's after
	perTick             bool
	tick, account, kind int64
}

func (a recent) compare(b recent) int {
	c := cmp.Compare(a.seq, b.seq)
	if c != 0 {
		return c
	}
	if a.perTick != b.perTick {
		if a.perTick {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(a.tick, b.tick), cmp.Compare(a.account, b.account), cmp.Compare(a.kind, b.kind))
}

// recentWhole returns the last limit transactions stored whole.
func recentWhole(ctx context.Context, tx *sql.Tx, limit int) ([]recent, error) {
	rows, err := tx.QueryContext(ctx, `SELECT t.id, t.key, t.kind, t.tick, t.memo, e.account, e.amount,
			w.name, m.tap_rate, m.tap_cap, m.was_rate, m.was_cap
		FROM (SELECT * FROM txs ORDER BY id DESC LIMIT ?) t LEFT JOIN entries e ON e.tx_id = t.id
			LEFT JOIN terms m ON m.tx_id = t.id LEFT JOIN accounts w ON w.id = m.account
		ORDER BY t.id DESC, e.seq`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var rs []recent
	for rows.Next() {
		var p Posted
		var tick int64
		var acc, wallet sql.NullString
		var amt sql.NullInt64
		var tm [4]sql.NullInt64 // rate, cap, was rate, was cap
		if err := rows.Scan(&p.ID, &p.Key, &p.Kind, &tick, &p.Memo, &acc, &amt, &wallet, &tm[0], &tm[1], &tm[2], &tm[3]); err != nil {
			return nil, err
		}
		if n := len(rs); n == 0 || rs[n-1].p.ID != p.ID {
			p.Tick = uint64(tick)
			p.Entries = []Entry{}
			if wallet.Valid {
				p.Terms = &TermsChange{Wallet: wallet.String, TapRate: units.Credits(tm[0].Int64), TapCap: units.Credits(tm[1].Int64),
					WasRate: units.Credits(tm[2].Int64), WasCap: units.Credits(tm[3].Int64)}
			}
			rs = append(rs, recent{p: p, seq: p.ID})
		}
		if acc.Valid {
			last := &rs[len(rs)-1].p
			last.Entries = append(last.Entries, Entry{acc.String, units.Credits(amt.Int64)})
		}
	}
	return rs, rows.Err()
}

// recentPerTick returns the per-tick postings of the last limit rows.
func recentPerTick(ctx context.Context, tx *sql.Tx, limit int) ([]recent, error) {
	rows, err := tx.QueryContext(ctx, `SELECT t.tick, t.account, a.name, t.after, `+columnsSQL("t.%s", ", ", nil)+`
		FROM ticks t JOIN accounts a ON a.id = t.account ORDER BY t.tick DESC, t.account DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var rs []recent
	for rows.Next() {
		var tick, account, after int64
		var wallet string
		var amts [len(perTickKinds)]sql.NullInt64
		dest := []any{&tick, &account, &wallet, &after}
		for i := range amts {
			dest = append(dest, &amts[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		for i, a := range amts {
			if !a.Valid {
				continue
			}
			k := perTickKinds[i]
			rs = append(rs, recent{
				p: Posted{Key: Key(uint64(tick), wallet, string(k)), Kind: k, Tick: uint64(tick),
					Entries: perTickEntries(k, wallet, units.Credits(a.Int64))},
				seq: after, perTick: true, tick: tick, account: account, kind: int64(i),
			})
		}
	}
	return rs, rows.Err()
}

// LastTick returns the highest tick any transaction was posted for, 0 for
// an empty ledger: a restarted engine continues from the next one, so that
// its idempotency keys never repeat.
//
// Per-tick postings count, and so do rolled-up ones: with every tick below
// the rollup watermark rolled up, the last tick is at least the one below
// it, and an engine continuing from there never posts to a rolled-up tick.
func (l *Ledger) LastTick(ctx context.Context) (uint64, error) {
	var t sql.NullInt64
	if err := l.db.QueryRowContext(ctx, `SELECT MAX(
			(SELECT COALESCE(MAX(tick), 0) FROM txs),
			(SELECT COALESCE(MAX(tick), 0) FROM ticks),
			(SELECT below - 1 FROM rollup_state WHERE one = 1))`).Scan(&t); err != nil {
		return 0, fmt.Errorf("ledger: last tick: %w", classify(err))
	}
	if !t.Valid || t.Int64 < 0 {
		return 0, nil
	}
	return uint64(t.Int64), nil
}
