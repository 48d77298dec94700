package poa

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/maxwellhq/maxwell/internal/market"
)

// Setting is one cell of the study: a rule and which frictions are on.
type Setting struct {
	Rule market.Rule
	// Overbid allows bids above value, up to OverbidFactor × value, both
	// in the random starting bids and in the deviations searched.
	Overbid bool
	// Budgets gives about half of the bidders a per-tick budget.
	Budgets bool
	// Reserve turns the instance's reserve price on.
	Reserve bool
}

// String returns a short label such as "gsp overbid budgets reserve".
func (s Setting) String() string {
	out := s.Rule.String()
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Overbid, "overbid"}, {s.Budgets, "budgets"}, {s.Reserve, "reserve"}} {
		if f.on {
			out += " " + f.name
		} else {
			out += " -"
		}
	}
	return out
}

// Settings returns the 16 settings of the study, GSP first.
func Settings() []Setting {
	var out []Setting
	for _, rule := range []market.Rule{market.GSP, market.VCG} {
		for _, ob := range []bool{false, true} {
			for _, bu := range []bool{false, true} {
				for _, re := range []bool{false, true} {
					out = append(out, Setting{Rule: rule, Overbid: ob, Budgets: bu, Reserve: re})
				}
			}
		}
	}
	return out
}

// Config sets the size of the study.
type Config struct {
	// Instances is the number of random instances per setting.
	Instances int
	// Seed makes the study deterministic.
	Seed uint64
	// MaxStepsPerBidder caps the dynamics at this many updates per
	// bidder; a run that hits the cap has not converged.
	MaxStepsPerBidder int
	// Grid is the number of steps in the deviation grid of Epsilon.
	Grid int
	// Settings to run; nil means Settings().
	Settings []Setting
}

// DefaultConfig returns the configuration `maxwell poa` uses by default:
// small enough to run in a few seconds.
func DefaultConfig() Config {
	return Config{Instances: 500, Seed: 1, MaxStepsPerBidder: 100, Grid: 40}
}

// Dist summarises a sample.
type Dist struct {
	Median, P95, Max float64
}

// Summary is the result of one setting.
type Summary struct {
	Setting
	// Instances and Converged count the runs and those that reached a
	// fixed point (a pure Nash equilibrium).
	Instances, Converged int
	// NonConvergence is the fraction of runs that did not converge.
	NonConvergence float64
	// Ratio is optimal welfare / equilibrium welfare over the converged
	// runs that sold something.
	Ratio Dist
	// RatioAll is the same ratio at the end state of every run that sold
	// something, converged or not.
	RatioAll Dist
	// SoldNothing counts the runs that ended selling nothing although
	// some allocation has positive welfare (every bidder priced out by
	// the reserve or its budget): an infinite ratio, left out of Ratio
	// and RatioAll.
	SoldNothing int
	// Epsilon is the incentive-compatibility ε (see Game.Epsilon) at the
	// end state of every run.
	Epsilon Dist
	// TruthEpsilon is ε when every bidder bids its value: how far the
	// one-shot auction is from truthful.
	TruthEpsilon Dist
}

// instance draws the random instance number k for seed. The same k gives
// the same values, weights, budgets and reserve in every setting.
func instance(seed uint64, k int) (values, weights, budgets []uint64, reserve uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(k)))
	n := 2 + rng.IntN(5) // bidders: 2..6
	s := 2 + rng.IntN(3) // slots: 2..4
	values = make([]uint64, n)
	for i := range values {
		values[i] = 1000 * (1 + rng.Uint64N(1000)) // up to 1e6 per FullSlot
	}
	// Click-through-like weights: a full slot on top, each next one a
	// random 20–100 % of the one above.
	weights = make([]uint64, s)
	w := float64(market.FullSlot)
	for i := range weights {
		weights[i] = max(1, uint64(w))
		w *= 0.2 + 0.8*rng.Float64()
	}
	// About half of the bidders can afford only 10–100 % of their value
	// on the top slot.
	budgets = make([]uint64, n)
	for i := range budgets {
		if rng.IntN(2) == 0 {
			budgets[i] = max(1, uint64(float64(values[i])*(0.1+0.9*rng.Float64())))
		}
	}
	reserve = 50_000 + rng.Uint64N(250_001)
	return values, weights, budgets, reserve
}

// Game returns the game of instance k for seed in setting s.
func (s Setting) Game(seed uint64, k int) *Game {
	values, weights, budgets, reserve := instance(seed, k)
	g := &Game{Rule: s.Rule, Values: values, Weights: weights, Overbid: s.Overbid}
	if s.Budgets {
		g.Budgets = budgets
	}
	if s.Reserve {
		g.Reserve = reserve
	}
	return g
}

// Run runs the study. It is deterministic given cfg.
func Run(ctx context.Context, cfg Config) ([]Summary, error) {
	if cfg.Instances <= 0 || cfg.MaxStepsPerBidder <= 0 || cfg.Grid <= 0 {
		return nil, fmt.Errorf("%w: instances, steps and grid must be positive", ErrBadGame)
	}
	settings := cfg.Settings
	if settings == nil {
		settings = Settings()
	}
	var out []Summary
	for si, s := range settings {
		sum := Summary{Setting: s, Instances: cfg.Instances}
		var ratio, ratioAll, eps, truthEps []float64
		for k := range cfg.Instances {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			g := s.Game(cfg.Seed, k)
			rng := rand.New(rand.NewPCG(cfg.Seed^0x9e3779b97f4a7c15, uint64(si)<<32|uint64(k)))
			start := make([]uint64, len(g.Values))
			for i := range start {
				start[i] = rng.Uint64N(g.MaxBid(i) + 1)
			}
			end, converged, _, err := g.Dynamics(start, rng, cfg.MaxStepsPerBidder*len(start))
			if err != nil {
				return nil, fmt.Errorf("%v instance %d: %w", s, k, err)
			}
			r, err := welfareRatio(g, end)
			if err != nil {
				return nil, err
			}
			if converged {
				sum.Converged++
			}
			switch {
			case math.IsInf(r, 1):
				sum.SoldNothing++
			case converged:
				ratio = append(ratio, r)
				fallthrough
			default:
				ratioAll = append(ratioAll, r)
			}
			e, err := g.Epsilon(end, cfg.Grid)
			if err != nil {
				return nil, err
			}
			eps = append(eps, e)
			e, err = g.Epsilon(slices.Clone(g.Values), cfg.Grid)
			if err != nil {
				return nil, err
			}
			truthEps = append(truthEps, e)
		}
		sum.NonConvergence = 1 - float64(sum.Converged)/float64(sum.Instances)
		sum.Ratio = distOf(ratio)
		sum.RatioAll = distOf(ratioAll)
		sum.Epsilon = distOf(eps)
		sum.TruthEpsilon = distOf(truthEps)
		out = append(out, sum)
	}
	return out, nil
}

// welfareRatio returns optimal welfare / the welfare of bids.
func welfareRatio(g *Game, bids []uint64) (float64, error) {
	w, err := g.Welfare(bids)
	if err != nil {
		return 0, err
	}
	opt := g.OptimalWelfare()
	switch {
	case opt == 0:
		return 1, nil
	case w == 0:
		return math.Inf(1), nil
	}
	return opt / w, nil
}

// distOf returns the median, 95th percentile (nearest rank) and maximum of
// xs, or NaNs for an empty sample.
func distOf(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{math.NaN(), math.NaN(), math.NaN()}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Dist{Median: rank(0.5), P95: rank(0.95), Max: s[len(s)-1]}
}
