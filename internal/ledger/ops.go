package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/maxwellhq/maxwell/internal/units"
)

// apply1 applies a single transaction.
func (l *Ledger) apply1(ctx context.Context, t Tx) (Result, error) {
	rs, err := l.Apply(ctx, t)
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// OpenWallet creates the wallet w at tick and pays its endowment from the
// mint, in one transaction under key. It fails with ErrExists when a wallet
// of that name exists (even closed: names are not reused).
func (l *Ledger) OpenWallet(ctx context.Context, key string, tick uint64, w WalletSpec) (Result, error) {
	return l.apply1(ctx, Tx{Key: key, Kind: KindEndow, Tick: tick, Open: &w})
}

// Endow pays an open wallet a further endowment of amount credits from
// the mint.
func (l *Ledger) Endow(ctx context.Context, key string, tick uint64, wallet string, amount units.Credits) (Result, error) {
	return l.issue(ctx, KindEndow, key, tick, wallet, amount)
}

// Fund is an operator's top-up of wallet by amount credits, minted.
func (l *Ledger) Fund(ctx context.Context, key string, tick uint64, wallet string, amount units.Credits) (Result, error) {
	return l.issue(ctx, KindFund, key, tick, wallet, amount)
}

func (l *Ledger) issue(ctx context.Context, k Kind, key string, tick uint64, wallet string, amount units.Credits) (Result, error) {
	if amount <= 0 {
		return Result{}, fmt.Errorf("ledger: %w: %q: %s of %d: amount must be positive", ErrInvalid, key, k, amount)
	}
	return l.apply1(ctx, Tx{Key: key, Kind: k, Tick: tick, Wallet: wallet,
		Entries: []Entry{{Mint, -amount}, {wallet, amount}}})
}

// Charge moves amount credits from wallet to burn as a transaction of
// kind k (KindPayment, KindEnergy, KindTax or KindRent). The balance may go
// negative.
func (l *Ledger) Charge(ctx context.Context, key string, tick uint64, wallet string, amount units.Credits, k Kind) (Result, error) {
	if !k.charges() {
		return Result{}, fmt.Errorf("ledger: %w: %q: %q is not a charge", ErrInvalid, key, k)
	}
	if amount <= 0 {
		return Result{}, fmt.Errorf("ledger: %w: %q: charge of %d: amount must be positive", ErrInvalid, key, amount)
	}
	return l.apply1(ctx, Tx{Key: key, Kind: k, Tick: tick, Wallet: wallet,
		Entries: []Entry{{wallet, -amount}, {Burn, amount}}})
}

// Refund moves amount credits from burn back to wallet.
func (l *Ledger) Refund(ctx context.Context, key string, tick uint64, wallet string, amount units.Credits) (Result, error) {
	if amount <= 0 {
		return Result{}, fmt.Errorf("ledger: %w: %q: refund of %d: amount must be positive", ErrInvalid, key, amount)
	}
	return l.apply1(ctx, Tx{Key: key, Kind: KindRefund, Tick: tick, Wallet: wallet,
		Entries: []Entry{{Burn, -amount}, {wallet, amount}}})
}

// Tap pays wallet amount credits of tap income (the engine computes it
// from the wallet's rate). It fails with ErrInvalid for a wallet without a
// tap or an amount that would lift the balance above the tap cap.
func (l *Ledger) Tap(ctx context.Context, key string, tick uint64, wallet string, amount units.Credits) (Result, error) {
	if amount <= 0 {
		return Result{}, fmt.Errorf("ledger: %w: %q: tap of %d: amount must be positive", ErrInvalid, key, amount)
	}
	return l.apply1(ctx, Tx{Key: key, Kind: KindTap, Tick: tick, Wallet: wallet,
		Entries: []Entry{{Mint, -amount}, {wallet, amount}}})
}

// Income pays wallet amount credits, minted, for useful work the host has
// verified (the engine computes it, e.g. credits per prime recounted).
// Unlike a tap it is not bounded by the wallet's tap cap, and any open
// wallet may earn it.
func (l *Ledger) Income(ctx context.Context, key string, tick uint64, wallet string, amount units.Credits) (Result, error) {
	return l.issue(ctx, KindIncome, key, tick, wallet, amount)
}

// SetTerms changes wallet's tap terms to rate credits per second (0: no
// tap) below a balance of cap credits, in one transaction of kind
// KindTerms under key, at tick. It moves no money and has no entries; it
// records the new terms and the ones they replace, and sets the account's
// TapRate and TapCap in the same SQLite transaction.
//
// Every tap applied after it is held to the new terms: in later batches,
// and later in the same batch (Apply's order). A tap applied before it
// stays as it was, whatever its tick: one of the same tick earlier in the
// batch, or in an earlier batch, was checked against the old terms and is
// neither checked again nor undone, and a replay of it is a duplicate (a
// replay is never checked against terms). So a tap the engine computed
// under the old terms and posts after the change is refused (ErrInvalid)
// if the new terms would refuse it.
//
// Like every transaction it is idempotent by key: replayed with the same
// terms it is a Duplicate and changes nothing, even if the terms changed
// again since; with other terms, ErrKeyConflict. It fails with ErrClosed
// for a closed wallet, ErrNoAccount for an unknown one, and ErrInvalid
// for a negative rate or cap or a system account.
func (l *Ledger) SetTerms(ctx context.Context, key string, tick uint64, wallet string, rate, cap units.Credits) (Result, error) {
	return l.apply1(ctx, Tx{Key: key, Kind: KindTerms, Tick: tick, Wallet: wallet, Terms: &Terms{TapRate: rate, TapCap: cap}})
}

// CloseWallet closes wallet at tick: its remaining balance, positive or
// negative, is written off to burn, and the wallet takes no more entries.
// Result.Amount is the final balance; it is also kept on the account
// (Account.FinalBalance).
//
// When the ledger cannot be written (ErrFull, ErrReadOnly), the error says
// that the wallet stays open; closing it again later, under the same key
// or another, settles it.
func (l *Ledger) CloseWallet(ctx context.Context, key string, tick uint64, wallet string) (Result, error) {
	r, err := l.apply1(ctx, Tx{Key: key, Kind: KindClose, Tick: tick, Wallet: wallet})
	if errors.Is(err, ErrFull) || errors.Is(err, ErrReadOnly) {
		err = fmt.Errorf("wallet %q stays open, to be settled when the ledger can be written: %w", wallet, err)
	}
	return r, err
}
