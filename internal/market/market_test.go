package market

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

const M = FullSlot // shorthand: a weight of M is one whole core-tick

func bids(prices ...units.Credits) []Bid {
	out := make([]Bid, len(prices))
	for i, p := range prices {
		out[i] = Bid{Bidder: i, Price: p}
	}
	return out
}

func slotsOf(weights ...uint64) []Slot {
	out := make([]Slot, len(weights))
	for i, w := range weights {
		out[i] = Slot{ID: i + 1, Weight: w}
	}
	return out
}

// TestClearHandComputed checks both rules against examples worked by hand;
// the arithmetic is in each case's comment.
func TestClearHandComputed(t *testing.T) {
	tests := []struct {
		name     string
		slots    []Slot
		bids     []Bid
		reserve  units.Credits
		winners  []int           // bidder per sold slot, best slot first
		gsp      []units.Credits // payments
		vcg      []units.Credits
		clearing units.Credits
	}{
		{
			// GSP: 80×1, 50×0.6, 20×0.3. VCG from the bottom:
			// 0.3×20=6; 6+(0.6−0.3)×50=21; 21+(1−0.6)×80=53.
			name:  "unequal weights, no reserve",
			slots: slotsOf(M, 600_000, 300_000), bids: bids(100, 80, 50, 20),
			winners: []int{0, 1, 2}, gsp: []units.Credits{80, 30, 6}, vcg: []units.Credits{53, 21, 6},
			clearing: 20,
		},
		{
			// A reserve under every bid changes nothing.
			name:  "reserve not binding",
			slots: slotsOf(M, 600_000, 300_000), bids: bids(100, 80, 50, 20), reserve: 10,
			winners: []int{0, 1, 2}, gsp: []units.Credits{80, 30, 6}, vcg: []units.Credits{53, 21, 6},
			clearing: 20,
		},
		{
			// Bid 50 is below the reserve 60 and dropped; two bidders
			// for three slots, so slot 3 stays unsold and the last
			// winner pays the reserve: GSP 80×1, 60×0.6=36; VCG
			// 0.6×60=36, 36+0.4×80=68.
			name:  "reserve binding, fewer bidders than slots",
			slots: slotsOf(M, 600_000, 300_000), bids: bids(100, 80, 50), reserve: 60,
			winners: []int{0, 1}, gsp: []units.Credits{80, 36}, vcg: []units.Credits{68, 36},
			clearing: 60,
		},
		{
			// The reserve 60 sits above the losing bid 50, so it sets
			// the price of the only winner under both rules.
			name:  "reserve binding over the next bid",
			slots: slotsOf(M), bids: bids(100, 50), reserve: 60,
			winners: []int{0}, gsp: []units.Credits{60}, vcg: []units.Credits{60},
			clearing: 60,
		},
		{
			// A bid equal to the reserve is eligible.
			name:  "bid equal to reserve",
			slots: slotsOf(M, 500_000), bids: bids(100, 60), reserve: 60,
			winners: []int{0, 1}, gsp: []units.Credits{60, 30}, vcg: []units.Credits{60, 30},
			clearing: 60,
		},
		{
			// Equal prices rank by lower bidder ID, whatever the input
			// order; equal weights rank by lower slot ID.
			name:  "ties",
			slots: []Slot{{ID: 7, Weight: M}, {ID: 3, Weight: M}},
			bids:  []Bid{{Bidder: 5, Price: 70}, {Bidder: 9, Price: 70}, {Bidder: 2, Price: 70}},
			// bidder 2 → slot 3, bidder 5 → slot 7, bidder 9 loses
			winners: []int{2, 5}, gsp: []units.Credits{70, 70}, vcg: []units.Credits{70, 70},
			clearing: 70,
		},
		{
			name:  "zero bidders",
			slots: slotsOf(M, M), bids: nil, reserve: 5,
			winners: nil, gsp: nil, vcg: nil, clearing: 5,
		},
		{
			// No slots: nothing is sold; the best losing bid sets the
			// clearing price.
			name:  "zero slots",
			slots: nil, bids: bids(40, 30), reserve: 5,
			winners: nil, gsp: nil, vcg: nil, clearing: 40,
		},
		{
			// Rounding is down: GSP 3×0.333333 = 0.999999 → 0.
			// VCG: 3×333333 = 999999 → 0; 999999 + 666667×5 =
			// 4333334 → 4.
			name:  "rounding down",
			slots: slotsOf(M, 333_333), bids: bids(7, 5, 3),
			winners: []int{0, 1}, gsp: []units.Credits{5, 0}, vcg: []units.Credits{4, 0},
			clearing: 3,
		},
		{
			// Bidder 0 bids 100 with a budget of 30 for a largest slot
			// of M: its effective price is 30, so bidder 1 (50) ranks
			// first and pays 30; bidder 0 pays the reserve 0.
			name:    "budget caps the effective price",
			slots:   slotsOf(M, 500_000),
			bids:    []Bid{{Bidder: 0, Price: 100, Budget: 30}, {Bidder: 1, Price: 50}},
			winners: []int{1, 0}, gsp: []units.Credits{30, 0}, vcg: []units.Credits{15, 0},
			clearing: 0,
		},
	}
	for _, tt := range tests {
		for _, rule := range []Rule{GSP, VCG} {
			t.Run(tt.name+"/"+rule.String(), func(t *testing.T) {
				want := tt.gsp
				if rule == VCG {
					want = tt.vcg
				}
				a := Auction{Rule: rule}
				res, err := a.Clear(tt.slots, tt.bids, tt.reserve)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Allocations) != len(tt.winners) {
					t.Fatalf("got %d allocations %+v, want %d", len(res.Allocations), res.Allocations, len(tt.winners))
				}
				var revenue units.Credits
				for i, al := range res.Allocations {
					if al.Bidder != tt.winners[i] || al.Payment != want[i] {
						t.Errorf("slot rank %d: got bidder %d paying %d, want bidder %d paying %d",
							i, al.Bidder, al.Payment, tt.winners[i], want[i])
					}
					revenue += want[i]
				}
				if res.Revenue != revenue {
					t.Errorf("revenue %d, want %d", res.Revenue, revenue)
				}
				if res.ClearingPrice != tt.clearing {
					t.Errorf("clearing price %d, want %d", res.ClearingPrice, tt.clearing)
				}
			})
		}
	}
}

// TestEqualWeightsGSPvsVCG shows the textbook difference: with equal slot
// weights VCG is the uniform (k+1)-th price auction, while GSP charges each
// slot the bid just below it.
func TestEqualWeightsGSPvsVCG(t *testing.T) {
	slots := slotsOf(M, M, M)
	b := bids(100, 80, 60, 40, 10)
	gsp, err := Clear(GSP, slots, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	vcg, err := Clear(VCG, slots, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []units.Credits{80, 60, 40} {
		if got := gsp.Allocations[i].Payment; got != want {
			t.Errorf("GSP slot %d pays %d, want %d (the next bid)", i, got, want)
		}
		if got := vcg.Allocations[i].Payment; got != 40 {
			t.Errorf("VCG slot %d pays %d, want the uniform 4th price 40", i, got)
		}
	}
	if gsp.Revenue != 180 || vcg.Revenue != 120 {
		t.Errorf("revenues GSP %d VCG %d, want 180 and 120", gsp.Revenue, vcg.Revenue)
	}
}

func TestClearErrors(t *testing.T) {
	tests := []struct {
		name  string
		rule  Rule
		slots []Slot
		bids  []Bid
		want  error
	}{
		{"zero weight", GSP, []Slot{{ID: 1, Weight: M}, {ID: 2}}, bids(1), ErrZeroWeight},
		{"duplicate slot", GSP, []Slot{{ID: 1, Weight: M}, {ID: 1, Weight: 2}}, bids(1), ErrDuplicateSlot},
		{"duplicate bidder", GSP, slotsOf(M), []Bid{{Bidder: 3, Price: 1}, {Bidder: 4}, {Bidder: 3, Price: 9}}, ErrDuplicateBidder},
		{"price × weight overflows", GSP, slotsOf(2 * M), bids(math.MaxInt64), ErrOverflow},
		{"price × weight overflows (VCG)", VCG, slotsOf(2 * M), bids(math.MaxInt64, 1), ErrOverflow},
		{"revenue overflows", GSP, slotsOf(M, M), bids(math.MaxInt64, math.MaxInt64, math.MaxInt64), ErrOverflow},
		{"duplicate bidder, sparse ids", GSP, slotsOf(M), []Bid{{Bidder: math.MinInt}, {Bidder: math.MaxInt}, {Bidder: math.MinInt}}, ErrDuplicateBidder},
		{"duplicate slot, sparse ids", GSP, []Slot{{ID: math.MaxInt, Weight: 1}, {ID: -5, Weight: 1}, {ID: math.MaxInt, Weight: 2}}, nil, ErrDuplicateSlot},
		{"unknown rule", Rule(7), slotsOf(M), bids(1), ErrUnknownRule},
		{"negative price", GSP, slotsOf(M), bids(5, -1), ErrNegative},
		{"negative budget", GSP, slotsOf(M), []Bid{{Bidder: 1, Price: 5, Budget: -1}}, ErrNegative},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Clear(tt.rule, tt.slots, tt.bids, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Clear(GSP, slotsOf(M), bids(1), -1); !errors.Is(err, ErrNegative) {
		t.Errorf("negative reserve: %v", err)
	}
	// Extreme but distinct IDs are fine.
	res, err := Clear(GSP, []Slot{{ID: math.MinInt, Weight: 1}, {ID: math.MaxInt, Weight: 1}},
		[]Bid{{Bidder: math.MaxInt, Price: 3}, {Bidder: math.MinInt, Price: 3}, {Bidder: 0, Price: 2}}, 0)
	if err != nil || len(res.Allocations) != 2 || res.Allocations[0].Bidder != math.MinInt || res.Allocations[0].Slot != math.MinInt {
		t.Fatalf("extreme ids: got %+v, %v", res, err)
	}
	// The largest amounts that do fit are accepted.
	res, err = Clear(VCG, slotsOf(M), bids(math.MaxInt64, math.MaxInt64), 0)
	if err != nil || res.Revenue != math.MaxInt64 {
		t.Fatalf("max price on a full slot: got %+v, %v", res, err)
	}
}

func TestRuleText(t *testing.T) {
	for _, r := range []Rule{GSP, VCG} {
		b, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Rule
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("%v round-trips to %v, %v", r, back, err)
		}
	}
	if _, err := ParseRule("GSP"); !errors.Is(err, ErrUnknownRule) {
		t.Errorf("ParseRule is case-sensitive, got %v", err)
	}
	if _, err := Rule(2).MarshalText(); !errors.Is(err, ErrUnknownRule) {
		t.Errorf("MarshalText(Rule(2)) = %v", err)
	}
}

// reference clears by brute force: a full sort, GSP by definition, and VCG
// by literally recomputing the others' welfare without each winner (the
// seller valuing unsold weight at the reserve). Amounts must stay small
// enough for uint64 numerators.
func reference(rule Rule, slots []Slot, bs []Bid, reserve units.Credits) (winners []int, pay []units.Credits) {
	ss := slices.Clone(slots)
	slices.SortStableFunc(ss, func(x, y Slot) int {
		if x.Weight != y.Weight {
			if x.Weight > y.Weight {
				return -1
			}
			return 1
		}
		return x.ID - y.ID
	})
	var wTop uint64
	if len(ss) > 0 {
		wTop = ss[0].Weight
	}
	r := uint64(reserve)
	var rb []ranked
	for _, b := range bs {
		p := uint64(b.Price)
		if b.Budget != 0 && wTop != 0 {
			p = min(p, uint64(b.Budget)*M/wTop)
		}
		if p >= r {
			rb = append(rb, ranked{b.Bidder, p})
		}
	}
	slices.SortFunc(rb, func(x, y ranked) int {
		if better(x, y) {
			return -1
		}
		return 1
	})
	// welfare of a ranked list placed on ss, seller keeps the rest at r.
	welfare := func(list []ranked) uint64 {
		var w uint64
		for i, s := range ss {
			if i < len(list) {
				w += list[i].price * s.Weight
			} else {
				w += r * s.Weight
			}
		}
		return w
	}
	m := min(len(ss), len(rb))
	for i := range m {
		winners = append(winners, rb[i].bidder)
		switch rule {
		case GSP:
			p := r
			if i+1 < len(rb) {
				p = max(p, rb[i+1].price)
			}
			pay = append(pay, units.Credits(p*ss[i].Weight/M))
		case VCG:
			without := slices.Delete(slices.Clone(rb), i, i+1)
			others := welfare(rb) - rb[i].price*ss[i].Weight
			pay = append(pay, units.Credits((welfare(without)-others)/M))
		}
	}
	return winners, pay
}

func randomInstance(rng *rand.Rand) ([]Slot, []Bid, units.Credits) {
	slots := make([]Slot, rng.IntN(6))
	for i := range slots {
		// Few distinct weights, so ties happen.
		slots[i] = Slot{ID: rng.IntN(1000)*10 + i, Weight: uint64(1+rng.IntN(4)) * 250_000}
	}
	bs := make([]Bid, rng.IntN(10))
	for i := range bs {
		bs[i] = Bid{Bidder: rng.IntN(1000)*10 + i, Price: units.Credits(rng.IntN(20)) * 50}
		if rng.IntN(4) == 0 {
			bs[i].Budget = units.Credits(1 + rng.IntN(1000))
		}
	}
	reserve := units.Credits(0)
	if rng.IntN(2) == 0 {
		reserve = units.Credits(rng.IntN(10)) * 50
	}
	return slots, bs, reserve
}

// TestClearProperties checks Clear against the brute-force reference and
// the auction's invariants on random instances.
func TestClearProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var gspA, vcgA Auction
	vcgA.Rule = VCG
	for n := range 3000 {
		slots, bs, reserve := randomInstance(rng)
		gsp, err := gspA.Clear(slots, bs, reserve)
		if err != nil {
			t.Fatal(err)
		}
		vcg, err := vcgA.Clear(slots, bs, reserve)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			rule Rule
			res  Result
		}{{GSP, gsp}, {VCG, vcg}} {
			winners, pay := reference(c.rule, slots, bs, reserve)
			if len(winners) != len(c.res.Allocations) {
				t.Fatalf("instance %d %v: %d winners, reference %d", n, c.rule, len(c.res.Allocations), len(winners))
			}
			var rev units.Credits
			for i, al := range c.res.Allocations {
				if al.Bidder != winners[i] || al.Payment != pay[i] {
					t.Fatalf("instance %d %v rank %d: got %+v, reference bidder %d pays %d\nslots %v bids %v reserve %d",
						n, c.rule, i, al, winners[i], pay[i], slots, bs, reserve)
				}
				bid := bs[slices.IndexFunc(bs, func(b Bid) bool { return b.Bidder == al.Bidder })]
				if al.Payment > bid.Price*units.Credits(al.Weight)/M {
					t.Fatalf("instance %d: payment %d over bid × weight", n, al.Payment)
				}
				if bid.Budget != 0 && al.Payment > bid.Budget {
					t.Fatalf("instance %d: payment %d over budget %d", n, al.Payment, bid.Budget)
				}
				rev += al.Payment
			}
			if rev != c.res.Revenue {
				t.Fatalf("instance %d: revenue %d, sum of payments %d", n, c.res.Revenue, rev)
			}
		}
		for i := range gsp.Allocations {
			if gsp.Allocations[i].Payment < vcg.Allocations[i].Payment {
				t.Fatalf("instance %d rank %d: GSP pays %d < VCG %d", n, i, gsp.Allocations[i].Payment, vcg.Allocations[i].Payment)
			}
		}
		// Determinism: the input order does not matter.
		want := slices.Clone(gsp.Allocations)
		rng.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
		rng.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
		again, err := gspA.Clear(slots, bs, reserve)
		if err != nil || !slices.Equal(again.Allocations, want) {
			t.Fatalf("instance %d: shuffled input gave %v, %v; want %v", n, again.Allocations, err, want)
		}
	}
}

func TestClearDoesNotModifyInput(t *testing.T) {
	slots := []Slot{{ID: 2, Weight: 1}, {ID: 1, Weight: 9}}
	bs := []Bid{{Bidder: 1, Price: 1}, {Bidder: 0, Price: 9}}
	s0, b0 := slices.Clone(slots), slices.Clone(bs)
	if _, err := Clear(GSP, slots, bs, 0); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slots, s0) || !slices.Equal(bs, b0) {
		t.Fatalf("input modified: %v %v", slots, bs)
	}
}

func TestClearSteadyStateDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	bs := make([]Bid, 5000)
	for i := range bs {
		bs[i] = Bid{Bidder: i, Price: units.Credits(rng.Uint64N(1 << 40))}
	}
	slots := make([]Slot, 64)
	for i := range slots {
		slots[i] = Slot{ID: i, Weight: 1 + rng.Uint64N(M)}
	}
	for _, rule := range []Rule{GSP, VCG} {
		a := Auction{Rule: rule}
		if _, err := a.Clear(slots, bs, 0); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := a.Clear(slots, bs, 1<<20); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per steady-state Clear, want 0", rule, allocs)
		}
	}
}

// FuzzClear checks that Clear never panics on any input and that whatever
// it returns satisfies the auction's invariants.
func FuzzClear(f *testing.F) {
	f.Add([]byte{3, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3}, uint64(0), false)
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255, 1, 1, 1, 1, 1, 1, 1, 1, 1}, uint64(1), true)
	f.Fuzz(func(t *testing.T, data []byte, reserve uint64, vcg bool) {
		next := func() uint64 {
			var v uint64
			for i := 0; i < 8 && len(data) > 0; i++ {
				v = v<<8 | uint64(data[0])
				data = data[1:]
			}
			return v
		}
		var slots []Slot
		var bs []Bid
		for len(data) > 0 {
			kind := next() // consumes up to 8 bytes
			if kind%2 == 0 {
				slots = append(slots, Slot{ID: int(next() % 16), Weight: next()})
			} else {
				// Any 64-bit pattern, negative prices and budgets included.
				bs = append(bs, Bid{Bidder: int(next() % 32), Price: units.Credits(next()), Budget: units.Credits(next()%4) - 1})
			}
		}
		rule := GSP
		if vcg {
			rule = VCG
		}
		res, err := Clear(rule, slots, bs, units.Credits(reserve))
		if err != nil {
			return
		}
		if len(res.Allocations) > len(slots) || len(res.Allocations) > len(bs) {
			t.Fatalf("%d allocations for %d slots and %d bids", len(res.Allocations), len(slots), len(bs))
		}
		if res.ClearingPrice < units.Credits(reserve) {
			t.Fatalf("clearing price %d below reserve %d", res.ClearingPrice, reserve)
		}
		var wTop uint64
		for _, s := range slots {
			wTop = max(wTop, s.Weight)
		}
		var rev units.Credits
		seen := map[int]bool{}
		for _, al := range res.Allocations {
			if seen[al.Bidder] {
				t.Fatalf("bidder %d won twice", al.Bidder)
			}
			seen[al.Bidder] = true
			bid := bs[slices.IndexFunc(bs, func(b Bid) bool { return b.Bidder == al.Bidder })]
			// The budget-capped price is what won, so its value fits.
			v, err := Value(bid.EffectivePrice(wTop), al.Weight)
			if err != nil || al.Payment > v {
				t.Fatalf("payment %d over bid value %d (%v)", al.Payment, v, err)
			}
			if bid.Budget > 0 && al.Payment > bid.Budget {
				t.Fatalf("payment %d over budget %d", al.Payment, bid.Budget)
			}
			rev += al.Payment
		}
		if rev != res.Revenue {
			t.Fatalf("revenue %d, sum of payments %d", res.Revenue, rev)
		}
		// The other rule allocates the same way, and GSP never charges
		// less than VCG for a slot.
		other, err := Clear(1-rule, slots, bs, units.Credits(reserve))
		if err != nil {
			t.Fatalf("%v cleared but %v failed: %v", rule, 1-rule, err)
		}
		gr, vr := res, other
		if rule == VCG {
			gr, vr = other, res
		}
		for i := range gr.Allocations {
			g, v := gr.Allocations[i], vr.Allocations[i]
			if g.Bidder != v.Bidder || g.Slot != v.Slot || g.Payment < v.Payment {
				t.Fatalf("rank %d: GSP %+v, VCG %+v", i, g, v)
			}
		}
	})
}

func benchInstance(n, k int) ([]Slot, []Bid) {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(k)))
	bs := make([]Bid, n)
	for i := range bs {
		bs[i] = Bid{Bidder: i, Price: units.Credits(rng.Uint64N(1 << 32))}
	}
	slots := make([]Slot, k)
	for i := range slots {
		slots[i] = Slot{ID: i, Weight: 1 + rng.Uint64N(M)}
	}
	return slots, bs
}

func BenchmarkClear(b *testing.B) {
	for _, rule := range []Rule{GSP, VCG} {
		for _, k := range []int{2, 64} {
			for _, n := range []int{10, 1_000, 10_000, 100_000} {
				slots, bs := benchInstance(n, k)
				name := rule.String() + "/slots=" + strconv.Itoa(k) + "/bidders=" + strconv.Itoa(n)
				b.Run(name, func(b *testing.B) {
					a := Auction{Rule: rule}
					b.ReportAllocs()
					for b.Loop() {
						if _, err := a.Clear(slots, bs, 1<<20); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
