// Package poa measures the price of anarchy of Maxwell's slot auction: how
// much welfare is lost when bidders bid strategically rather than reveal
// their values.
//
// A Game is one position auction: bidders with private values per FullSlot
// of weight (credits), slots with weights, optional per-tick budgets
// and an optional reserve price. Every outcome is computed by market.Clear,
// so the study measures the real auction, integer rounding, budget caps and
// reserve included. Welfare is Σ value × weight over the allocated slots.
//
// Bidders adjust their bids one at a time (asynchronous best-response
// dynamics). Under GSP a bidder whose current bid is not a best response
// moves to its balanced bid (Cary et al., "Greedy bidding strategies for
// keyword auctions", EC 2007): it targets the slot that maximises its
// utility at the current prices and bids the amount b that would make it
// indifferent between that slot s at its price p_s and the slot above at
// price b, that is b = v − (w_s / w_{s−1})·(v − p_s), or b = v for the top
// slot. Under VCG it moves to its truthful bid, the VCG best response. A
// bidder whose current bid already is a best response keeps it (lazy
// dynamics), so bids left over from the start, overbids included, survive
// when they are equilibrium bids. A profile where no bidder wants to move is
// a pure Nash equilibrium up to Tolerance (one credit), because best
// responses are found exactly (see BestResponse).
package poa

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/maxwellhq/maxwell/internal/market"
	"github.com/maxwellhq/maxwell/internal/units"
)

// ErrBadGame is returned, wrapped, for a Game that cannot be played.
var ErrBadGame = errors.New("poa: bad game")

// Tolerance is the smallest utility gain, in credits, that counts as
// a gain. The auction rounds payments down to whole credits, so
// smaller differences are rounding, not incentives; without this a bidder
// could chase fractions of a credit forever.
const Tolerance = 1.0

// OverbidFactor bounds bids when overbidding is allowed: a bidder may bid up
// to OverbidFactor times its value.
const OverbidFactor = 2

// Game is one position auction between bidders with known values.
type Game struct {
	// Rule is the auction's payment rule.
	Rule market.Rule
	// Values holds each bidder's value, credits per FullSlot.
	Values []uint64
	// Weights holds the slot weights in parts of market.FullSlot.
	Weights []uint64
	// Budgets holds each bidder's budget per tick (credits), or is
	// nil. A zero budget means none.
	Budgets []uint64
	// Reserve is the reserve price, credits per FullSlot.
	Reserve uint64
	// Overbid allows bids above value (up to OverbidFactor × value).
	Overbid bool

	auction market.Auction
	slots   []market.Slot
	bids    []market.Bid
	cands   []uint64
}

func (g *Game) init() error {
	if g.Budgets != nil && len(g.Budgets) != len(g.Values) {
		return fmt.Errorf("%w: %d budgets for %d bidders", ErrBadGame, len(g.Budgets), len(g.Values))
	}
	for _, v := range g.Values {
		if v > math.MaxUint64/OverbidFactor {
			return fmt.Errorf("%w: value %d too large", ErrBadGame, v)
		}
	}
	// Rebuilt on every call (a few entries), so edits to the exported
	// fields always take effect.
	g.slots = g.slots[:0]
	for i, w := range g.Weights {
		g.slots = append(g.slots, market.Slot{ID: i, Weight: w})
	}
	g.bids = g.bids[:0]
	for i := range g.Values {
		b := market.Bid{Bidder: i}
		if g.Budgets != nil {
			b.Budget = units.Credits(g.Budgets[i])
		}
		g.bids = append(g.bids, b)
	}
	g.auction.Rule = g.Rule
	return nil
}

// MaxBid returns the highest bid bidder i may make.
func (g *Game) MaxBid(i int) uint64 {
	if g.Overbid {
		return OverbidFactor * g.Values[i]
	}
	return g.Values[i]
}

// clear runs the auction on bids.
func (g *Game) clear(bids []uint64) (market.Result, error) {
	if err := g.init(); err != nil {
		return market.Result{}, err
	}
	if len(bids) != len(g.Values) {
		return market.Result{}, fmt.Errorf("%w: %d bids for %d bidders", ErrBadGame, len(bids), len(g.Values))
	}
	for i, b := range bids {
		g.bids[i].Price = units.Credits(b)
	}
	return g.auction.Clear(g.slots, g.bids, units.Credits(g.Reserve))
}

// Utility returns bidder i's utility when everyone bids bids: the value of
// the slot it wins (value × weight / FullSlot) less its payment, in
// credits.
func (g *Game) Utility(i int, bids []uint64) (float64, error) {
	res, err := g.clear(bids)
	if err != nil {
		return 0, err
	}
	for _, al := range res.Allocations {
		if al.Bidder == i {
			return worth(g.Values[i], al.Weight) - float64(al.Payment), nil
		}
	}
	return 0, nil
}

// Welfare returns Σ value × weight / FullSlot over the slots allocated when
// everyone bids bids, in credits.
func (g *Game) Welfare(bids []uint64) (float64, error) {
	res, err := g.clear(bids)
	if err != nil {
		return 0, err
	}
	var w float64
	for _, al := range res.Allocations {
		w += worth(g.Values[al.Bidder], al.Weight)
	}
	return w, nil
}

// OptimalWelfare returns the largest welfare of any allocation: the highest
// values on the heaviest slots, ignoring reserve and budgets.
func (g *Game) OptimalWelfare() float64 {
	v := slices.Clone(g.Values)
	w := slices.Clone(g.Weights)
	slices.Sort(v)
	slices.Sort(w)
	slices.Reverse(v)
	slices.Reverse(w)
	var sum float64
	for i := range min(len(v), len(w)) {
		sum += worth(v[i], w[i])
	}
	return sum
}

func worth(value, weight uint64) float64 {
	return float64(value) * float64(weight) / market.FullSlot
}

// candidates lists bids for bidder i that between them reach every outcome
// i can reach: 0, the reserve, each other bidder's effective bid and one
// more, and i's value, all capped at MaxBid(i). Outcomes depend on i's bid
// only through its rank, so this set contains a best response.
func (g *Game) candidates(i int, bids []uint64) []uint64 {
	limit := g.MaxBid(i)
	c := append(g.cands[:0], 0, g.Reserve, g.Values[i])
	for j := range bids {
		if j == i {
			continue
		}
		b := g.effective(j, bids)
		c = append(c, b, b+1)
	}
	for k := range c {
		c[k] = min(c[k], limit)
	}
	slices.Sort(c)
	g.cands = slices.Compact(c)
	return g.cands
}

// BestResponse returns bidder i's best bid against the others' bids (its
// own entry in bids is ignored) and the utility it yields. Ties go to the
// lowest such bid.
func (g *Game) BestResponse(i int, bids []uint64) (bid uint64, utility float64, err error) {
	own := bids[i]
	defer func() { bids[i] = own }()
	utility = math.Inf(-1)
	for _, c := range g.candidates(i, bids) {
		bids[i] = c
		u, err := g.Utility(i, bids)
		if err != nil {
			return 0, 0, err
		}
		if u > utility {
			bid, utility = c, u
		}
	}
	return bid, utility, nil
}

// update applies the dynamics' rule to bidder i and reports whether its bid
// changed.
func (g *Game) update(i int, bids []uint64) (bool, error) {
	cur, err := g.Utility(i, bids)
	if err != nil {
		return false, err
	}
	best, bestU, err := g.BestResponse(i, bids)
	if err != nil {
		return false, err
	}
	if bestU-cur <= Tolerance {
		return false, nil // lazy: already a best response
	}
	own := bids[i]
	bids[i] = best
	target, err := g.slotOf(i, bids)
	if err != nil {
		return false, err
	}
	next := g.Values[i] // VCG, and GSP's top slot or losing: bid the value
	if g.Rule == market.GSP && target > 0 {
		next = g.balanced(i, bids, target)
	}
	bids[i] = min(next, g.MaxBid(i))
	u, err := g.Utility(i, bids)
	if err != nil {
		return false, err
	}
	if bestU-u > Tolerance {
		bids[i] = best // rounding or a budget cap spoilt the rule's bid
	}
	return bids[i] != own, nil
}

// slotOf returns the rank of the slot bidder i wins under bids, or -1.
func (g *Game) slotOf(i int, bids []uint64) (int, error) {
	res, err := g.clear(bids)
	if err != nil {
		return 0, err
	}
	for k, al := range res.Allocations {
		if al.Bidder == i {
			return k, nil
		}
	}
	return -1, nil
}

// balanced returns bidder i's GSP balanced bid for the slot of rank k ≥ 1,
// given that bids (with i bidding for slot k) leave it there:
// b = v − (w_k / w_{k−1})·(v − p_k), with p_k the per-unit price of slot k.
func (g *Game) balanced(i int, bids []uint64, k int) uint64 {
	res, _ := g.clear(bids) // bids were just cleared without error
	w := res.Allocations[k].Weight
	wAbove := res.Allocations[k-1].Weight
	p := g.price(res, k, bids)
	v := g.Values[i]
	if p >= v {
		return v
	}
	return v - uint64(float64(v-p)*float64(w)/float64(wAbove))
}

// price returns the GSP per-unit price of the slot of rank k in res.
func (g *Game) price(res market.Result, k int, bids []uint64) uint64 {
	if k+1 < len(res.Allocations) {
		return max(g.effective(res.Allocations[k+1].Bidder, bids), g.Reserve)
	}
	return uint64(res.ClearingPrice)
}

// effective returns bidder j's bid as the auction ranks it.
func (g *Game) effective(j int, bids []uint64) uint64 {
	b := market.Bid{Price: units.Credits(bids[j])}
	if g.Budgets != nil {
		b.Budget = units.Credits(g.Budgets[j])
	}
	var wTop uint64
	for _, w := range g.Weights {
		wTop = max(wTop, w)
	}
	return uint64(b.EffectivePrice(wTop))
}

// Dynamics runs lazy best-response dynamics from start (which it does not
// modify): at each step one bidder drawn by rng applies the update rule. It
// stops at a fixed point, where every bidder's bid is a best response, or
// after maxSteps steps. It returns the final bids, whether they are a fixed
// point, and the number of steps taken.
func (g *Game) Dynamics(start []uint64, rng *rand.Rand, maxSteps int) (bids []uint64, converged bool, steps int, err error) {
	bids = slices.Clone(start)
	n := len(bids)
	if n == 0 {
		return bids, true, 0, nil
	}
	stable := make([]bool, n)
	unstable := n
	for steps = 0; steps < maxSteps; steps++ {
		if unstable == 0 {
			return bids, true, steps, nil
		}
		i := rng.IntN(n)
		changed, err := g.update(i, bids)
		if err != nil {
			return nil, false, steps, err
		}
		if changed {
			for j := range stable {
				stable[j] = false
			}
			unstable = n
		}
		if !stable[i] {
			stable[i] = true
			unstable--
		}
	}
	return bids, unstable == 0, steps, nil
}

// Epsilon returns the smallest ε for which bids is a multiplicative
// ε-Nash equilibrium, u_i ≥ (1−ε)·u_i(d, b_{−i}) for every bidder i and
// every deviation d searched: grid+1 evenly spaced bids from 0 to MaxBid(i),
// plus the exact rank-changing bids used by BestResponse. Each bidder's term
// is its gain from its best deviation divided by that deviation's utility;
// it is capped at 1, which it reaches only when the bidder's utility is
// negative or its best deviation is worth nothing. Gains of at most
// Tolerance count as none.
func (g *Game) Epsilon(bids []uint64, grid int) (float64, error) {
	var eps float64
	for i := range bids {
		cur, err := g.Utility(i, bids)
		if err != nil {
			return 0, err
		}
		_, best, err := g.BestResponse(i, bids)
		if err != nil {
			return 0, err
		}
		own := bids[i]
		limit := g.MaxBid(i)
		for k := 0; k <= grid; k++ {
			bids[i] = uint64(float64(limit) * float64(k) / float64(max(grid, 1)))
			u, err := g.Utility(i, bids)
			if err != nil {
				bids[i] = own
				return 0, err
			}
			best = max(best, u)
		}
		bids[i] = own
		if gain := best - cur; gain > Tolerance {
			eps = max(eps, gain/max(best, gain))
		}
	}
	return eps, nil
}
