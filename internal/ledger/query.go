package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
	ID      int64   `json:"id"`
	Key     string  `json:"key"`
	Kind    Kind    `json:"kind"`
	Tick    uint64  `json:"tick"`
	Memo    string  `json:"memo,omitempty"`
	Entries []Entry `json:"entries"`
}

// Recent returns the last limit transactions, newest first.
func (l *Ledger) Recent(ctx context.Context, limit int) ([]Posted, error) {
	if limit <= 0 {
		return nil, nil
	}
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("ledger: recent: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT t.id, t.key, t.kind, t.tick, t.memo, e.account, e.amount
		FROM (SELECT * FROM txs ORDER BY id DESC LIMIT ?) t LEFT JOIN entries e ON e.tx_id = t.id
		ORDER BY t.id DESC, e.seq`, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: recent: %w", err)
	}
	defer rows.Close()
	var ps []Posted
	for rows.Next() {
		var p Posted
		var tick int64
		var acc sql.NullString
		var amt sql.NullInt64
		if err := rows.Scan(&p.ID, &p.Key, &p.Kind, &tick, &p.Memo, &acc, &amt); err != nil {
			return nil, fmt.Errorf("ledger: recent: %w", err)
		}
		if n := len(ps); n == 0 || ps[n-1].ID != p.ID {
			p.Tick = uint64(tick)
			p.Entries = []Entry{}
			ps = append(ps, p)
		}
		if acc.Valid {
			last := &ps[len(ps)-1]
			last.Entries = append(last.Entries, Entry{acc.String, units.Credits(amt.Int64)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: recent: %w", err)
	}
	return ps, nil
}

// LastTick returns the highest tick any transaction was posted for, 0 for
// an empty ledger: a restarted engine continues from the next one, so that
// its idempotency keys never repeat.
func (l *Ledger) LastTick(ctx context.Context) (uint64, error) {
	var t sql.NullInt64
	if err := l.db.QueryRowContext(ctx, `SELECT MAX(tick) FROM txs`).Scan(&t); err != nil {
		return 0, fmt.Errorf("ledger: last tick: %w", classify(err))
	}
	if !t.Valid || t.Int64 < 0 {
		return 0, nil
	}
	return uint64(t.Int64), nil
}
