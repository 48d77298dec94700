// Package ledgertest writes ledgers for the tests of the ledger's readers:
// real SQLite files, posted through the ledger's API, with what was posted
// kept beside them to check what is read back against.
package ledgertest

import (
	"strconv"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/clock/clocktest"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Options are those History writes its ledger with: ticks of one second,
// per-tick postings kept for 10 ticks and rolled up in buckets of 5.
var Options = ledger.Options{Tick: time.Second, Keep: 10 * time.Second, Bucket: 5 * time.Second}

// Ticks is the number of ticks History posts.
const Ticks = 40

// Stall is the tick at which the engine History plays falls StallFor
// behind: the ticks from it on fall StallFor later than the first anchor
// reckons, and Maintain records an anchor at it.
const (
	Stall    = 20
	StallFor = 5 * time.Second
)

// Posted is what History posted, to check a reader against.
type Posted struct {
	Path string
	// Count and Sum are the postings of each wallet by kind: how many,
	// and their sum as the wallet saw it (what it paid negative).
	Count map[string]map[ledger.Kind]int64
	Sum   map[string]map[ledger.Kind]units.Credits
	// AfterTick is each wallet's balance after its per-tick postings of
	// a tick, for the ticks it has any.
	AfterTick map[string]map[uint64]units.Credits
	// AfterTx is the balance of its wallet after each transaction stored
	// whole, by key.
	AfterTx map[string]units.Credits
	// Inside says, by key, whether a transaction stored whole after the
	// opens lies inside the span of a rollup of its wallet.
	Inside map[string]bool
	// Clock is the engine's clock (at clocktest.Epoch at tick 0).
	Clock *clocktest.Fake
}

// TimeOf is when History's engine played tick t.
func TimeOf(t uint64) time.Time {
	d := time.Duration(t) * time.Second
	if t >= Stall {
		d += StallFor
	}
	return clocktest.Epoch.Add(d)
}

// History writes a ledger at path with Options and a fake clock: wallets
// a (a tap), b and c, ticks 1 to Ticks of payments, taps, taxes, energy,
// rent and income, Maintain after each tick (the clock one second on, and
// StallFor more at tick Stall), funds between ticks inside rollups
// (after ticks 12 and 15) and in the window (after tick 34), a refund
// stored whole after tick 20's postings, a change of a's terms after tick
// 25, c closed in tick 30's batch, and Rollup at the last tick: ticks below
// 30 rolled up. The ledger is closed when History returns.
func History(t testing.TB, path string) Posted {
	t.Helper()
	ctx := t.Context()
	clk := clocktest.New()
	opts := Options
	opts.Clock = clk
	l, err := ledger.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := Posted{Path: path, Count: map[string]map[ledger.Kind]int64{}, Sum: map[string]map[ledger.Kind]units.Credits{},
		AfterTick: map[string]map[uint64]units.Credits{}, AfterTx: map[string]units.Credits{}, Inside: map[string]bool{}, Clock: clk}
	bal := map[string]units.Credits{}
	note := func(w string, k ledger.Kind, a units.Credits) {
		if p.Count[w] == nil {
			p.Count[w], p.Sum[w], p.AfterTick[w] = map[ledger.Kind]int64{}, map[ledger.Kind]units.Credits{}, map[uint64]units.Credits{}
		}
		p.Count[w][k]++
		p.Sum[w][k] += a
		bal[w] += a
	}
	whole := func(key, w string, k ledger.Kind, a units.Credits) {
		note(w, k, a)
		p.AfterTx[key] = bal[w]
	}
	for _, w := range []ledger.WalletSpec{
		{Name: "a", Endowment: 1_000_000, TapRate: 10, TapCap: 10_000_000},
		{Name: "b", Endowment: 50_000},
		{Name: "c", Endowment: 5_000},
	} {
		if _, err := l.OpenWallet(ctx, "open/cell:"+w.Name, 0, w); err != nil {
			t.Fatal(err)
		}
		whole("open/cell:"+w.Name, w.Name, ledger.KindEndow, w.Endowment)
	}
	apply := func(txs ...ledger.Tx) {
		t.Helper()
		if _, err := l.Apply(ctx, txs...); err != nil {
			t.Fatal(err)
		}
	}
	for tick := uint64(1); tick <= Ticks; tick++ {
		var txs []ledger.Tx
		charge := func(w string, k ledger.Kind, a units.Credits) {
			txs = append(txs, ledger.Tx{Key: ledger.Key(tick, w, string(k)), Kind: k, Tick: tick, Wallet: w,
				Entries: []ledger.Entry{{Account: w, Amount: -a}, {Account: ledger.Burn, Amount: a}}})
			note(w, k, -a)
		}
		issue := func(w string, k ledger.Kind, a units.Credits) {
			txs = append(txs, ledger.Tx{Key: ledger.Key(tick, w, string(k)), Kind: k, Tick: tick, Wallet: w,
				Entries: []ledger.Entry{{Account: ledger.Mint, Amount: -a}, {Account: w, Amount: a}}})
			note(w, k, a)
		}
		issue("a", ledger.KindTap, units.Credits(tick))
		charge("a", ledger.KindPayment, units.Credits(100+tick))
		charge("a", ledger.KindTax, 3)
		if tick%3 != 0 {
			charge("b", ledger.KindPayment, units.Credits(200+tick))
		}
		if tick%4 == 0 {
			charge("b", ledger.KindEnergy, 7)
		}
		if tick%5 != 1 {
			issue("b", ledger.KindIncome, units.Credits(1000+tick))
		}
		if tick < 30 && tick%2 == 0 {
			charge("c", ledger.KindPayment, 2)
		}
		if tick < 30 && tick%7 == 0 {
			charge("c", ledger.KindRent, 1)
		}
		for _, tx := range txs {
			p.AfterTick[tx.Wallet][tick] = bal[tx.Wallet]
		}
		if tick == 30 {
			// The engine closes c after its postings, in the same batch.
			txs = append(txs, ledger.Tx{Key: ledger.Key(tick, "c", "close"), Kind: ledger.KindClose, Tick: tick, Wallet: "c"})
			whole(ledger.Key(tick, "c", "close"), "c", ledger.KindClose, -bal["c"])
		}
		if tick == 20 {
			txs = append(txs, ledger.Tx{Key: "refund/20/a", Kind: ledger.KindRefund, Tick: tick, Wallet: "a", Memo: "a refund stored whole",
				Entries: []ledger.Entry{{Account: ledger.Burn, Amount: -9}, {Account: "a", Amount: 9}}})
			whole("refund/20/a", "a", ledger.KindRefund, 9)
			p.Inside["refund/20/a"] = true
		}
		apply(txs...)
		if tick == Stall {
			clk.Advance(StallFor)
		}
		clk.Advance(time.Second)
		if _, err := l.Maintain(ctx, tick); err != nil {
			t.Fatal(err)
		}
		switch tick {
		case 12, 15, 34:
			// Operators' funds, posted between ticks at tick 0 as the
			// economy posts them.
			w, key := "b", "fund/cell:b/"+strconv.FormatUint(tick, 10)
			if tick == 34 {
				w, key = "a", "fund/cell:a/1"
			}
			if _, err := l.Fund(ctx, key, 0, w, 500); err != nil {
				t.Fatal(err)
			}
			whole(key, w, ledger.KindFund, 500)
			p.Inside[key] = tick < 30
		case 25:
			if _, err := l.SetTerms(ctx, "terms/cell:a/1", 0, "a", 20, 10_000_000); err != nil {
				t.Fatal(err)
			}
			p.AfterTx["terms/cell:a/1"] = bal["a"]
			p.Count["a"][ledger.KindTerms]++
			p.Inside["terms/cell:a/1"] = true
		}
	}
	if r, err := l.Rollup(ctx, Ticks); err != nil || r.Below != 30 {
		t.Fatalf("rollup: %+v, %v", r, err)
	}
	return p
}
