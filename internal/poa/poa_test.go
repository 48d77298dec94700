package poa

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/maxwellhq/maxwell/internal/market"
)

const M = market.FullSlot

// twoByTwo is a GSP game worked by hand: values 10 and 4 (× 100,000 per
// FullSlot) for slots of weight 1 and 1/2 (× FullSlot), no reserve.
//
// Optimal welfare: 10·1 + 4·½ = 12. In the inefficient profile bidder 1 (v=4)
// takes the top slot and pays b₀, bidder 0 takes slot 2 and pays 0. It is an
// equilibrium iff 4 − b₀ ≥ 4·½ (b₀ ≤ 2) and 10·½ ≥ 10 − b₁ (b₁ ≥ 5): bidder 1
// must bid above its value 4, so without overbidding every equilibrium is
// efficient, and with it the welfare is 4·1 + 10·½ = 9, a ratio of 4/3.
func twoByTwo(overbid bool) *Game {
	return &Game{
		Rule:    market.GSP,
		Values:  []uint64{1_000_000, 400_000},
		Weights: []uint64{M, M / 2},
		Overbid: overbid,
	}
}

func TestTwoByTwoInefficientEquilibrium(t *testing.T) {
	g := twoByTwo(true)
	start := []uint64{100_000, 600_000} // b₀ = 1, b₁ = 6
	end, converged, steps, err := g.Dynamics(start, rand.New(rand.NewPCG(1, 1)), 100)
	if err != nil {
		t.Fatal(err)
	}
	if !converged || end[0] != start[0] || end[1] != start[1] {
		t.Fatalf("got %v converged=%v after %d steps; want the start, which is an equilibrium", end, converged, steps)
	}
	w, err := g.Welfare(end)
	if err != nil {
		t.Fatal(err)
	}
	if w != 900_000 || g.OptimalWelfare() != 1_200_000 {
		t.Fatalf("welfare %v, optimal %v; want 900000 and 1200000", w, g.OptimalWelfare())
	}
	if eps, err := g.Epsilon(end, 40); err != nil || eps != 0 {
		t.Fatalf("ε at an equilibrium = %v, %v; want 0", eps, err)
	}
	// Bidder 1 bidding 4.5 instead: bidder 0 now prefers the top slot
	// (10 − 4.5 > 5), so the profile is not an equilibrium.
	if eps, err := g.Epsilon([]uint64{100_000, 450_000}, 40); err != nil || eps <= 0 {
		t.Fatalf("ε off equilibrium = %v, %v; want > 0", eps, err)
	}
}

func TestTwoByTwoWithoutOverbiddingIsEfficient(t *testing.T) {
	g := twoByTwo(false)
	// From b = (1, 3) bidder 0 gains by taking the top slot (10 − 3 >
	// 10·½) and its balanced bid there is its value; bidder 1 then stays
	// put (4·½ > 4 − 10). Both orders of updates reach this.
	for seed := range uint64(5) {
		end, converged, _, err := g.Dynamics([]uint64{100_000, 300_000}, rand.New(rand.NewPCG(seed, 0)), 100)
		if err != nil {
			t.Fatal(err)
		}
		if !converged || end[0] != 1_000_000 || end[1] != 300_000 {
			t.Fatalf("seed %d: got %v converged=%v, want [1000000 300000]", seed, end, converged)
		}
	}
	// Every start without overbidding ends efficient.
	for b0 := uint64(0); b0 <= 1_000_000; b0 += 50_000 {
		for b1 := uint64(0); b1 <= 400_000; b1 += 50_000 {
			end, converged, _, err := g.Dynamics([]uint64{b0, b1}, rand.New(rand.NewPCG(b0, b1)), 100)
			if err != nil {
				t.Fatal(err)
			}
			r, err := welfareRatio(g, end)
			if err != nil {
				t.Fatal(err)
			}
			if !converged || r != 1 {
				t.Fatalf("start (%d, %d): end %v converged=%v ratio %v", b0, b1, end, converged, r)
			}
		}
	}
}

func TestBalancedBid(t *testing.T) {
	// Bidder 1 (v=4) targets slot 2 whose price is 0: balanced bid
	// 4 − ½·(4 − 0) = 2.
	g := twoByTwo(false)
	bids := []uint64{1_000_000, 0}
	if got := g.balanced(1, bids, 1); got != 200_000 {
		t.Fatalf("balanced bid %d, want 200000", got)
	}
	// With a reserve of 1 the price of slot 2 is 1: 4 − ½·3 = 2.5.
	g.Reserve = 100_000
	bids[1] = 150_000
	if got := g.balanced(1, bids, 1); got != 250_000 {
		t.Fatalf("balanced bid with reserve %d, want 250000", got)
	}
}

func TestGSPIsNotTruthful(t *testing.T) {
	// Values 10 and 9 on slots 1 and ½. Truthful, bidder 0 pays 9 for
	// utility 1, but dropping to slot 2 (price 0) gives 5: ε = 4/5.
	g := &Game{Rule: market.GSP, Values: []uint64{1_000_000, 900_000}, Weights: []uint64{M, M / 2}}
	eps, err := g.Epsilon([]uint64{1_000_000, 900_000}, 40)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(eps-0.8) > 1e-12 {
		t.Fatalf("ε = %v, want 0.8", eps)
	}
	// Under VCG bidder 0 pays ½·9 = 4.5 for utility 5.5 > 5: truthful.
	g.Rule = market.VCG
	if eps, err = g.Epsilon([]uint64{1_000_000, 900_000}, 40); err != nil || eps != 0 {
		t.Fatalf("VCG ε = %v, %v; want 0", eps, err)
	}
}

// TestVCGTruthfulOneShot: under VCG with truthful bids, no reserve and no
// budgets, the allocation is efficient and no deviation gains more than the
// auction's rounding (one credit).
func TestVCGTruthfulOneShot(t *testing.T) {
	s := Setting{Rule: market.VCG}
	for k := range 200 {
		g := s.Game(7, k)
		r, err := welfareRatio(g, g.Values)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r-1) > 1e-12 {
			t.Fatalf("instance %d: ratio %v, want 1", k, r)
		}
		eps, err := g.Epsilon(append([]uint64(nil), g.Values...), 40)
		if err != nil {
			t.Fatal(err)
		}
		if eps > 1e-4 {
			t.Fatalf("instance %d: ε = %v, want ≈ 0", k, eps)
		}
	}
}

func TestRunDeterministic(t *testing.T) {
	cfg := Config{Instances: 20, Seed: 42, MaxStepsPerBidder: 50, Grid: 10}
	a, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different results:\n%+v\n%+v", a, b)
	}
	if len(a) != 16 {
		t.Fatalf("%d settings, want 16", len(a))
	}
}

// TestRunBounds checks the study against theory where theory applies:
// without overbidding, budgets or reserve, pure GSP equilibria lose at most
// a factor 1.282 (Caragiannis et al. 2015) and VCG equilibria none.
func TestRunBounds(t *testing.T) {
	cfg := Config{Instances: 150, Seed: 3, MaxStepsPerBidder: 100, Grid: 10,
		Settings: []Setting{{Rule: market.GSP}, {Rule: market.VCG}}}
	sums, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := sums[0].Ratio.Max; !(r >= 1 && r <= 1.282) {
		t.Errorf("GSP pure equilibrium ratio max %v, want in [1, 1.282]", r)
	}
	if r := sums[1].Ratio.Max; !(r >= 1 && r <= 1+1e-9) {
		t.Errorf("VCG equilibrium ratio max %v, want 1", r)
	}
	for _, s := range sums {
		if s.Converged == 0 {
			t.Errorf("%v: nothing converged", s.Setting)
		}
	}
	if sums[1].TruthEpsilon.Max > 1e-4 || sums[0].TruthEpsilon.Max < 0.01 {
		t.Errorf("truthful ε: GSP max %v (want clearly > 0), VCG max %v (want ≈ 0)",
			sums[0].TruthEpsilon.Max, sums[1].TruthEpsilon.Max)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	if _, err := Run(context.Background(), Config{}); err == nil {
		t.Fatal("zero config accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, DefaultConfig()); err == nil {
		t.Fatal("cancelled context ignored")
	}
}

func TestDistOf(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i) // 100..1
	}
	if d := distOf(xs); d != (Dist{Median: 50, P95: 95, Max: 100}) {
		t.Fatalf("got %+v", d)
	}
	if d := distOf(nil); !math.IsNaN(d.Median) {
		t.Fatalf("empty sample gave %+v", d)
	}
}
