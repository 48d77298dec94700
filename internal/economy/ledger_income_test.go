package economy

import (
	"path/filepath"
	"testing"

	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/ledger"
)

// TestLedgerPostsIncome: an income posting, a positive amount as the
// engine makes it, mints that much into the cell's wallet, stored per
// tick, beside a tap (the engine's negative debit) and a payment of the
// same tick; the tick posted again changes nothing.
func TestLedgerPostsIncome(t *testing.T) {
	ctx := t.Context()
	l, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lg := Ledger{L: l}
	// At its tap cap: income is not bounded by it.
	if err := lg.OpenWallet(ctx, "scientist", engine.Wallet{Endowment: 1000, TapRate: 10, TapCap: 1010}); err != nil {
		t.Fatal(err)
	}
	tick := []engine.Posting{
		{Key: ledger.Key(1, "scientist", "tap"), Tick: 1, Cell: "scientist", Kind: ledger.KindTap, Amount: -10},
		{Key: ledger.Key(1, "scientist", "income"), Tick: 1, Cell: "scientist", Kind: ledger.KindIncome, Amount: 4000},
		{Key: ledger.Key(1, "scientist", "payment"), Tick: 1, Cell: "scientist", Kind: ledger.KindPayment, Amount: 300},
	}
	for range 2 {
		if err := lg.Post(ctx, tick); err != nil {
			t.Fatal(err)
		}
	}
	a, err := l.Account(ctx, "scientist")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	if a.Balance != 1000+10+4000-300 || rep.Minted != 1000+10+4000 || rep.Postings != 3 {
		t.Errorf("balance %d, minted %d, %d per-tick postings; want %d, %d, 3", a.Balance, rep.Minted, rep.Postings, 1000+10+4000-300, 1000+10+4000)
	}
}
