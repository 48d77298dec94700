package economy

import (
	"context"
	"fmt"

	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Ledger adapts a *ledger.Ledger to engine.Ledger: each tick's postings
// become ledger transactions applied in one database transaction.
type Ledger struct{ L *ledger.Ledger }

// Post implements engine.Ledger.
func (l Ledger) Post(ctx context.Context, postings []engine.Posting) error {
	if len(postings) == 0 {
		return nil
	}
	txs := make([]ledger.Tx, 0, len(postings))
	for _, p := range postings {
		tx := ledger.Tx{Key: p.Key, Kind: p.Kind, Tick: p.Tick, Wallet: p.Cell}
		switch p.Kind {
		case ledger.KindPayment, ledger.KindTax, ledger.KindRent:
			tx.Entries = []ledger.Entry{{Account: p.Cell, Amount: -p.Amount}, {Account: ledger.Burn, Amount: p.Amount}}
		case ledger.KindTap:
			// The engine computes tap income as a negative debit; the
			// ledger records it as money the tap mints for the wallet.
			tx.Entries = []ledger.Entry{{Account: ledger.Mint, Amount: p.Amount}, {Account: p.Cell, Amount: -p.Amount}}
		case ledger.KindIncome:
			// Income for verified useful work comes as a positive
			// amount, minted for the wallet (unlike a tap's sign).
			tx.Entries = []ledger.Entry{{Account: ledger.Mint, Amount: -p.Amount}, {Account: p.Cell, Amount: p.Amount}}
		case ledger.KindClose:
		default:
			return fmt.Errorf("economy: posting %q of kind %q, which the engine never makes", p.Key, p.Kind)
		}
		txs = append(txs, tx)
	}
	_, err := l.L.Apply(ctx, txs...)
	return err
}

// OpenWallet opens a cell's wallet in the ledger with its endowment, once:
// the key makes a repeated call (a restarted daemon) a no-op.
func (l Ledger) OpenWallet(ctx context.Context, name string, w engine.Wallet) error {
	_, err := l.L.Apply(ctx, ledger.Tx{
		Key:  "open/cell:" + name,
		Kind: ledger.KindEndow,
		Open: &ledger.WalletSpec{Name: name, Endowment: w.Endowment, TapRate: w.TapRate, TapCap: w.TapCap},
	})
	return err
}

// Fund mints amount credits into a wallet at an operator's request.
func (l Ledger) Fund(ctx context.Context, key, name string, amount units.Credits) error {
	_, err := l.L.Fund(ctx, key, 0, name, amount)
	return err
}

// SetTerms records a wallet's new tap terms.
func (l Ledger) SetTerms(ctx context.Context, key, name string, rate, cap units.Credits) error {
	_, err := l.L.SetTerms(ctx, key, 0, name, rate, cap)
	return err
}
