// Package market clears Maxwell's per-tick auction for CPU slots.
//
// Each tick the host sells the CPU slots its thermal budget allows. A slot has
// a Weight: its share of one core for one tick, in parts of FullSlot (one
// million), so a whole core for the tick weighs 1,000,000 and a core next to a
// hot one may weigh less. Money is units.Credits (one credit is one
// microjoule of host energy). A bid's Price and the reserve price are in
// credits per FullSlot of weight, and never negative, so a bidder that is
// charged a per-unit price p for a slot of weight w pays
//
//	floor(p × w / FullSlot)
//
// credits. All arithmetic is on integers; products are formed in 128 bits
// (math/bits) and every total is divided by FullSlot exactly once, rounding
// down (in the buyer's favour). A payment or revenue that does not fit in
// units.Credits is reported as ErrOverflow, never wrapped.
//
// The package is pure: no clock, no I/O, no goroutines. An Auction keeps
// scratch buffers between calls, so clearing in the steady state does not
// allocate.
//
// # Ranking
//
// Slots are ranked by Weight, largest first; equal weights are ranked by
// lower slot ID first. Bids are ranked by effective price (see Bid.Budget),
// highest first; equal prices are ranked by lower Bidder ID first, so a
// bidder that wants priority in ties needs a lower ID. Bids whose effective
// price is below the reserve are dropped. The i-th ranked bid wins the i-th
// ranked slot, so with k slots and n eligible bids min(k, n) slots are sold
// and the rest stay unsold.
//
// # Payment rules
//
// Write b₁ ≥ b₂ ≥ … for the ranked eligible bids, w₁ ≥ w₂ ≥ … for the ranked
// slot weights, m = min(k, n) for the number of winners, r for the reserve
// and c = max(b_{m+1}, r) for the clearing price, where b_{m+1} is taken as 0
// when there is no (m+1)-th eligible bid.
//
// GSP (generalised second price, the default) charges winner i the next
// bid down, or the reserve if that is higher, for every unit of its slot:
//
//	GSP_i = max(b_{i+1}, r) × w_i        (b_{m+1} as above)
//
// VCG charges winner i the externality it imposes on the others, with the
// seller keeping unsold weight at value r per unit (equivalently, the
// reserve acts as an unlimited supply of phantom bids at r). This is the
// position-auction VCG price of Edelman, Ostrovsky and Schwarz (2007, AER
// 97(1), §IV) and Varian (2007, IJIO 25(6), eq. 5), extended with the
// reserve:
//
//	VCG_i = Σ_{j=i+1..m} (w_{j-1} − w_j) × b_j  +  w_m × c
//
// Both are divided by FullSlot and rounded down. Since every b_j in the sum
// is at most b_{i+1} and the weights telescope to w_i, VCG_i ≤ GSP_i for the
// same bids. With equal weights the sum vanishes and VCG is the uniform
// (m+1)-th price auction, while GSP still charges each slot the bid just
// below it.
package market

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/maxwellhq/maxwell/internal/units"
)

// FullSlot is the weight of one whole core for one tick. Slot weights are in
// parts of FullSlot (parts per million), prices are per FullSlot of weight.
const FullSlot = 1_000_000

// Errors returned by Clear. They are wrapped with details; test with
// errors.Is.
var (
	ErrZeroWeight      = errors.New("market: slot has zero weight")
	ErrDuplicateSlot   = errors.New("market: duplicate slot id")
	ErrDuplicateBidder = errors.New("market: duplicate bidder")
	ErrOverflow        = errors.New("market: amount overflows the credits type")
	ErrNegative        = errors.New("market: negative price, budget or reserve")
	ErrUnknownRule     = errors.New("market: unknown auction rule")
)

// Rule selects the payment rule.
type Rule int

// The payment rules. The zero value is GSP.
const (
	// GSP is the generalised second-price auction: each winner pays the
	// next bid down (or the reserve) per unit of its slot's weight.
	GSP Rule = iota
	// VCG is the Vickrey–Clarke–Groves auction for positions: each winner
	// pays the externality it imposes on the others. Truthful bidding is a
	// dominant strategy in the one-shot auction.
	VCG
)

// String returns "gsp", "vcg", or "Rule(n)".
func (r Rule) String() string {
	switch r {
	case GSP:
		return "gsp"
	case VCG:
		return "vcg"
	}
	return fmt.Sprintf("Rule(%d)", int(r))
}

// ParseRule parses "gsp" or "vcg".
func ParseRule(s string) (Rule, error) {
	switch s {
	case "gsp":
		return GSP, nil
	case "vcg":
		return VCG, nil
	}
	return 0, fmt.Errorf("%w: %q (want gsp or vcg)", ErrUnknownRule, s)
}

// MarshalText implements encoding.TextMarshaler.
func (r Rule) MarshalText() ([]byte, error) {
	if r != GSP && r != VCG {
		return nil, fmt.Errorf("%w: %d", ErrUnknownRule, int(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rule) UnmarshalText(b []byte) error {
	v, err := ParseRule(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Slot is one CPU slot for sale this tick.
type Slot struct {
	// ID names the slot; IDs must be unique within one auction.
	ID int
	// Weight is the slot's share of one core for the tick, in parts of
	// FullSlot. It must not be zero.
	Weight uint64
}

// Bid is one bidder's offer for a slot.
type Bid struct {
	// Bidder identifies the bidder; IDs must be unique within one auction.
	// Lower IDs win ties.
	Bidder int
	// Price is the most the bidder pays per FullSlot of weight, in
	// credits; never negative.
	Price units.Credits
	// Budget, if not zero, caps what the bidder pays this tick, in
	// credits. It is enforced by lowering the bid's effective price
	// to floor(Budget × FullSlot / w₁), where w₁ is the largest slot
	// weight on sale, so the bidder can pay for any slot it may win and no
	// payment ever exceeds Budget. The effective price is what is ranked
	// and what sets other winners' prices.
	Budget units.Credits
}

// Allocation is one slot sold to one bidder.
type Allocation struct {
	Bidder int
	Slot   int
	// Weight is the slot's weight in parts of FullSlot.
	Weight uint64
	// Payment is what the bidder pays for the slot, in credits.
	Payment units.Credits
}

// Result is the outcome of one auction.
type Result struct {
	// Allocations lists the slots sold, best slot first. The slice belongs
	// to the Auction that returned it and is overwritten by its next Clear.
	Allocations []Allocation
	// Revenue is the sum of all payments, in credits.
	Revenue units.Credits
	// ClearingPrice is the per-FullSlot price of the marginal unit of
	// weight: the highest eligible bid that won nothing, or the reserve if
	// that is higher or there is no such bid (credits per FullSlot).
	ClearingPrice units.Credits
}

// ranked is a bid reduced to what ranking needs.
type ranked struct {
	bidder int
	price  uint64 // effective price per FullSlot
}

// better reports whether a ranks strictly before b.
func better(a, b ranked) bool {
	if a.price != b.price {
		return a.price > b.price
	}
	return a.bidder < b.bidder
}

// Auction clears auctions under one Rule. Its zero value is a GSP auction
// ready to use. An Auction keeps scratch buffers between calls so that
// clearing does not allocate in the steady state; it must not be used by
// more than one goroutine at a time.
type Auction struct {
	// Rule is the payment rule.
	Rule Rule

	slots   []Slot
	top     []ranked // min-heap of the best len(slots)+1 eligible bids
	allocs  []Allocation
	bidders idSet
	slotIDs idSet
}

// Clear runs one auction with a fresh Auction under rule. It is a
// convenience for one-off use; reuse an Auction to avoid allocating.
func Clear(rule Rule, slots []Slot, bids []Bid, reserve units.Credits) (Result, error) {
	a := Auction{Rule: rule}
	res, err := a.Clear(slots, bids, reserve)
	if err != nil {
		return Result{}, err
	}
	res.Allocations = slices.Clone(res.Allocations)
	return res, nil
}

// Clear sells slots to bids at the reserve price (credits per FullSlot of
// weight) under a.Rule. It does not modify slots or bids. The returned
// Allocations alias a's buffer and are valid until a's next Clear.
//
// Clear returns ErrZeroWeight, ErrDuplicateSlot, ErrDuplicateBidder,
// ErrNegative, ErrOverflow (a winner's Price × Weight, or the revenue, does
// not fit in units.Credits once divided by FullSlot) or ErrUnknownRule, each
// wrapped.
func (a *Auction) Clear(slots []Slot, bids []Bid, reserve units.Credits) (Result, error) {
	if a.Rule != GSP && a.Rule != VCG {
		return Result{}, fmt.Errorf("%w: %d", ErrUnknownRule, int(a.Rule))
	}
	if reserve < 0 {
		return Result{}, fmt.Errorf("%w: reserve %d", ErrNegative, reserve)
	}
	if err := a.rankSlots(slots); err != nil {
		return Result{}, err
	}
	if err := a.selectBids(bids, uint64(reserve)); err != nil {
		return Result{}, err
	}
	return a.pay(uint64(reserve))
}

// rankSlots validates slots and copies them into a.slots, best first.
func (a *Auction) rankSlots(slots []Slot) error {
	lo, hi := 0, 0
	for i, s := range slots {
		if s.Weight == 0 {
			return fmt.Errorf("%w: slot %d", ErrZeroWeight, s.ID)
		}
		if i == 0 || s.ID < lo {
			lo = s.ID
		}
		if i == 0 || s.ID > hi {
			hi = s.ID
		}
	}
	a.slotIDs.reset(lo, hi, len(slots))
	for _, s := range slots {
		if a.slotIDs.add(s.ID) {
			return fmt.Errorf("%w: %d", ErrDuplicateSlot, s.ID)
		}
	}
	a.slots = append(a.slots[:0], slots...)
	slices.SortFunc(a.slots, func(x, y Slot) int {
		switch {
		case x.Weight > y.Weight:
			return -1
		case x.Weight < y.Weight:
			return 1
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
	return nil
}

// selectBids validates bids and leaves the best len(a.slots)+1 eligible ones
// in a.top, best first. It keeps a min-heap of that size, so it runs in
// O(n log k) rather than sorting all n bids.
func (a *Auction) selectBids(bids []Bid, reserve uint64) error {
	lo, hi := 0, 0
	for i, b := range bids {
		if i == 0 || b.Bidder < lo {
			lo = b.Bidder
		}
		if i == 0 || b.Bidder > hi {
			hi = b.Bidder
		}
	}
	a.bidders.reset(lo, hi, len(bids))
	var wTop uint64
	if len(a.slots) > 0 {
		wTop = a.slots[0].Weight
	}
	keep := len(a.slots) + 1
	h := a.top[:0]
	for _, b := range bids {
		if a.bidders.add(b.Bidder) {
			return fmt.Errorf("%w: %d", ErrDuplicateBidder, b.Bidder)
		}
		if b.Price < 0 || b.Budget < 0 {
			return fmt.Errorf("%w: bidder %d price %d budget %d", ErrNegative, b.Bidder, b.Price, b.Budget)
		}
		r := ranked{bidder: b.Bidder, price: uint64(b.EffectivePrice(wTop))}
		if r.price < reserve {
			continue
		}
		if len(h) < keep {
			h = append(h, r)
			siftUp(h, len(h)-1)
			continue
		}
		if better(r, h[0]) {
			h[0] = r
			siftDown(h, 0)
		}
	}
	// Heap-sort in place: repeatedly move the worst to the end, which
	// leaves the slice ordered best first.
	for n := len(h) - 1; n > 0; n-- {
		h[0], h[n] = h[n], h[0]
		siftDown(h[:n], 0)
	}
	a.top = h
	return nil
}

// EffectivePrice returns the per-FullSlot price at which b is ranked and
// charged when the largest slot on sale weighs maxWeight: b.Price, lowered
// to floor(b.Budget × FullSlot / maxWeight) if b has a Budget. Negative
// figures, which Clear refuses, give 0.
func (b Bid) EffectivePrice(maxWeight uint64) units.Credits {
	if b.Price <= 0 {
		return 0
	}
	if b.Budget <= 0 || maxWeight == 0 {
		return b.Price
	}
	hi, lo := bits.Mul64(uint64(b.Budget), FullSlot)
	if hi >= maxWeight { // the cap does not fit in 64 bits, so it cannot bind
		return b.Price
	}
	limit, _ := bits.Div64(hi, lo, maxWeight)
	return units.Credits(min(uint64(b.Price), limit))
}

// The heap is a min-heap under better: h[0] is the worst bid kept.

func siftUp(h []ranked, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !better(h[p], h[i]) {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func siftDown(h []ranked, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && better(h[l], h[r]) {
			m = r
		}
		if !better(h[i], h[m]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// pay assigns a.top to a.slots and computes payments under a.Rule.
func (a *Auction) pay(reserve uint64) (Result, error) {
	m := min(len(a.slots), len(a.top))
	clearing := reserve
	if len(a.top) > m {
		clearing = max(clearing, a.top[m].price)
	}
	a.allocs = a.allocs[:0]
	for i := range m {
		a.allocs = append(a.allocs, Allocation{
			Bidder: a.top[i].bidder,
			Slot:   a.slots[i].ID,
			Weight: a.slots[i].Weight,
		})
		// A winner's own price × weight bounds both of its payments, so
		// checking it once guards every later division.
		if _, ok := mulDiv(a.top[i].price, a.slots[i].Weight); !ok {
			return Result{}, fmt.Errorf("%w: bidder %d price %d × weight %d",
				ErrOverflow, a.top[i].bidder, a.top[i].price, a.slots[i].Weight)
		}
	}
	switch a.Rule {
	case GSP:
		for i := range m {
			p := clearing
			if i+1 < m {
				p = a.top[i+1].price // ≥ reserve, since it is eligible
			}
			pay, _ := mulDiv(p, a.slots[i].Weight)
			a.allocs[i].Payment = units.Credits(pay)
		}
	case VCG:
		// Walk up from the last winner, accumulating the 128-bit
		// numerator VCG_i × FullSlot. It never exceeds b_i × w_i, so it
		// neither overflows 128 bits nor, given the check above, yields
		// a quotient over 64 bits.
		var hi, lo uint64
		for i := m - 1; i >= 0; i-- {
			var h, l uint64
			if i == m-1 {
				h, l = bits.Mul64(clearing, a.slots[i].Weight)
			} else {
				h, l = bits.Mul64(a.top[i+1].price, a.slots[i].Weight-a.slots[i+1].Weight)
			}
			var carry uint64
			lo, carry = bits.Add64(lo, l, 0)
			hi, _ = bits.Add64(hi, h, carry)
			if hi >= FullSlot {
				return Result{}, fmt.Errorf("%w: VCG payment of bidder %d", ErrOverflow, a.top[i].bidder)
			}
			pay, _ := bits.Div64(hi, lo, FullSlot)
			if pay > math.MaxInt64 {
				return Result{}, fmt.Errorf("%w: VCG payment of bidder %d", ErrOverflow, a.top[i].bidder)
			}
			a.allocs[i].Payment = units.Credits(pay)
		}
	}
	var revenue units.Credits
	for _, al := range a.allocs {
		var ok bool
		if revenue, ok = revenue.Add(al.Payment); !ok {
			return Result{}, fmt.Errorf("%w: revenue", ErrOverflow)
		}
	}
	return Result{Allocations: a.allocs, Revenue: revenue, ClearingPrice: units.Credits(clearing)}, nil
}

// mulDiv returns floor(p × w / FullSlot) and whether it fits in
// units.Credits.
func mulDiv(p, w uint64) (uint64, bool) {
	hi, lo := bits.Mul64(p, w)
	if hi >= FullSlot {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, FullSlot)
	return q, q <= math.MaxInt64
}

// Value returns floor(price × weight / FullSlot), the worth in credits of
// weight at a per-FullSlot price, or ErrNegative or ErrOverflow.
func Value(price units.Credits, weight uint64) (units.Credits, error) {
	if price < 0 {
		return 0, fmt.Errorf("%w: price %d", ErrNegative, price)
	}
	v, ok := mulDiv(uint64(price), weight)
	if !ok {
		return 0, fmt.Errorf("%w: %d × %d", ErrOverflow, price, weight)
	}
	return units.Credits(v), nil
}
