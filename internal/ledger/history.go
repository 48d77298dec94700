package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Point is a wallet's history at one tick, or over the span of a rollup:
// what moved, by kind, as the wallet saw it (what it paid negative), and
// its balance after.
type Point struct {
	// Tick is the tick, or the first of a rollup's span (Rollup) and
	// LastTick its last; LastTick is Tick otherwise.
	Tick     uint64 `json:"tick"`
	LastTick uint64 `json:"last_tick"`
	Rollup   bool   `json:"rollup,omitempty"`
	// Time is when Tick fell, as the ledger can tell (TimeBasis says how).
	Time      *time.Time `json:"time,omitempty"`
	TimeBasis TimeBasis  `json:"time_basis,omitempty"`
	// Balance is the wallet's balance after the point, where the ledger
	// knows it (see Export); nil where it does not.
	Balance *units.Credits `json:"balance,omitempty"`

	Payment units.Credits `json:"payment"`
	Energy  units.Credits `json:"energy"`
	Tax     units.Credits `json:"tax"`
	Rent    units.Credits `json:"rent"`
	Tap     units.Credits `json:"tap"`
	Income  units.Credits `json:"income"`
	Endow   units.Credits `json:"endow"`
	Fund    units.Credits `json:"fund"`
	Mint    units.Credits `json:"mint"`
	Refund  units.Credits `json:"refund"`
	// Close is the write-off of the wallet's balance at its close.
	Close units.Credits `json:"close"`
	// TermsChanges counts the changes of its tap terms.
	TermsChanges int `json:"terms_changes,omitempty"`
}

// field returns the point's figure for kind k, nil for KindTerms.
func (p *Point) field(k Kind) *units.Credits {
	switch k {
	case KindPayment:
		return &p.Payment
	case KindEnergy:
		return &p.Energy
	case KindTax:
		return &p.Tax
	case KindRent:
		return &p.Rent
	case KindTap:
		return &p.Tap
	case KindIncome:
		return &p.Income
	case KindEndow:
		return &p.Endow
	case KindFund:
		return &p.Fund
	case KindMint:
		return &p.Mint
	case KindRefund:
		return &p.Refund
	case KindClose:
		return &p.Close
	}
	return nil
}

// add adds what the item moved.
func (p *Point) add(it *item) {
	if it.kind == itemWhole {
		if it.txKind == KindTerms {
			p.TermsChanges++
		} else if f := p.field(it.txKind); f != nil {
			*f += it.amount
		}
		return
	}
	for i, k := range perTickKinds {
		*p.field(k) += signed(i, it.amounts[i])
	}
}

// History calls yield with the history of the wallet f.Cell in the ticks
// f selects, in tick order, streamed as Export is: a point per tick with
// postings in the window of per-tick postings, a point per rollup below
// it, a point per tick of a transaction stored whole that falls at no
// per-tick posting of its wallet. Transactions stored whole inside a
// rollup's span count in its point. The balance after the last point of a
// wallet's whole history is its balance in the accounts (Account), where
// the order of its transactions is known (see Export).
func (l *Ledger) History(ctx context.Context, f Filter, yield func(Point) error) error {
	if f.Cell == "" {
		return fmt.Errorf("ledger: %w: a history is of one wallet: name it", ErrInvalid)
	}
	var cur *Point
	var at [2]uint64 // cur's ticks
	var pending []*item
	flush := func() error {
		if cur == nil {
			return nil
		}
		p := *cur
		cur = nil
		return yield(p)
	}
	start := func(it *item) {
		cur = &Point{Tick: it.first, LastTick: it.last, Rollup: it.kind == itemRollup}
		if !it.time.IsZero() {
			t := it.time
			cur.Time, cur.TimeBasis = &t, it.basis
		}
		at = [2]uint64{it.first, it.last}
	}
	err := l.walk(ctx, f, func(it *item) error {
		if it.kind == itemWhole && it.inside {
			pending = append(pending, it)
			return nil
		}
		rollup := it.kind == itemRollup
		if cur == nil || at != [2]uint64{it.first, it.last} || cur.Rollup != rollup {
			if err := flush(); err != nil {
				return err
			}
			start(it)
		}
		if rollup {
			for _, p := range pending {
				cur.add(p)
			}
			pending = nil
		}
		cur.add(it)
		cur.Balance = nil
		if it.known {
			b := it.balance
			cur.Balance = &b
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	for _, it := range pending { // none: a rollup follows what lies inside it
		start(it)
		cur.add(it)
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}
