package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/poa"
)

// newPoaCmd builds `maxwell poa`, the price-of-anarchy study of the slot
// auction.
func newPoaCmd() *cobra.Command {
	cfg := poa.DefaultConfig()
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "poa",
		Short: "Measure the price of anarchy of the slot auction on random instances",
		Long: `Poa plays random position auctions under GSP and VCG, with and without
overbidding, budgets and a reserve price. Bidders adjust one at a time
(balanced bidding under GSP, truthful bidding under VCG, keeping bids that
already are best responses) until no one wants to move or a step cap is hit.

For each setting it reports optimal welfare / equilibrium welfare (median,
p95, max over the runs that converged), the non-convergence rate, and the
incentive-compatibility ε at the end state and under truthful bidding.
Results are deterministic given --seed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sums, err := poa.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON {
				return writePoaJSON(cmd.OutOrStdout(), cfg, sums)
			}
			return writePoaTable(cmd.OutOrStdout(), cfg, sums)
		},
	}
	cmd.Flags().IntVar(&cfg.Instances, "instances", cfg.Instances, "random instances per setting")
	cmd.Flags().Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	cmd.Flags().IntVar(&cfg.MaxStepsPerBidder, "max-steps", cfg.MaxStepsPerBidder, "update cap per bidder before a run counts as not converged")
	cmd.Flags().IntVar(&cfg.Grid, "grid", cfg.Grid, "steps in the deviation grid used for ε")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

func writePoaTable(w io.Writer, cfg poa.Config, sums []poa.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "rule\toverbid\tbudgets\treserve\truns\tnot conv.\tsold nothing\tratio med\tp95\tmax\tratio max (all)\tε med\tε p95\tε max\ttruthful ε max\t\n")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.1f%%\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			s.Rule, poaOnOff(s.Overbid), poaOnOff(s.Budgets), poaOnOff(s.Reserve), s.Instances,
			100*s.NonConvergence, s.SoldNothing, poaNum(s.Ratio.Median), poaNum(s.Ratio.P95), poaNum(s.Ratio.Max),
			poaNum(s.RatioAll.Max), poaNum(s.Epsilon.Median), poaNum(s.Epsilon.P95), poaNum(s.Epsilon.Max),
			poaNum(s.TruthEpsilon.Max))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nseed %d, %d instances per setting, cap %d updates per bidder, ε grid %d\n",
		cfg.Seed, cfg.Instances, cfg.MaxStepsPerBidder, cfg.Grid)
	return err
}

func poaOnOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func poaNum(x float64) string {
	switch {
	case math.IsNaN(x):
		return "-"
	case math.IsInf(x, 1):
		return "inf"
	}
	return fmt.Sprintf("%.3f", x)
}

// poaJSONNum is a float64 that encodes NaN as null and +Inf as "inf", which
// encoding/json cannot represent as numbers.
type poaJSONNum float64

func (x poaJSONNum) MarshalJSON() ([]byte, error) {
	switch f := float64(x); {
	case math.IsNaN(f):
		return []byte("null"), nil
	case math.IsInf(f, 1):
		return []byte(`"inf"`), nil
	}
	return json.Marshal(float64(x))
}

type poaJSONDist struct {
	Median poaJSONNum `json:"median"`
	P95    poaJSONNum `json:"p95"`
	Max    poaJSONNum `json:"max"`
}

func poaDistJSON(d poa.Dist) poaJSONDist {
	return poaJSONDist{poaJSONNum(d.Median), poaJSONNum(d.P95), poaJSONNum(d.Max)}
}

func writePoaJSON(w io.Writer, cfg poa.Config, sums []poa.Summary) error {
	type row struct {
		Rule           string      `json:"rule"`
		Overbid        bool        `json:"overbid"`
		Budgets        bool        `json:"budgets"`
		Reserve        bool        `json:"reserve"`
		Instances      int         `json:"instances"`
		Converged      int         `json:"converged"`
		NonConvergence float64     `json:"non_convergence"`
		SoldNothing    int         `json:"sold_nothing"`
		Ratio          poaJSONDist `json:"ratio"`
		RatioAll       poaJSONDist `json:"ratio_all"`
		Epsilon        poaJSONDist `json:"epsilon"`
		TruthEpsilon   poaJSONDist `json:"truthful_epsilon"`
	}
	out := struct {
		Seed              uint64 `json:"seed"`
		Instances         int    `json:"instances"`
		MaxStepsPerBidder int    `json:"max_steps_per_bidder"`
		Grid              int    `json:"grid"`
		Settings          []row  `json:"settings"`
	}{Seed: cfg.Seed, Instances: cfg.Instances, MaxStepsPerBidder: cfg.MaxStepsPerBidder, Grid: cfg.Grid}
	for _, s := range sums {
		out.Settings = append(out.Settings, row{
			Rule: s.Rule.String(), Overbid: s.Overbid, Budgets: s.Budgets, Reserve: s.Reserve,
			Instances: s.Instances, Converged: s.Converged, NonConvergence: s.NonConvergence,
			SoldNothing: s.SoldNothing,
			Ratio:       poaDistJSON(s.Ratio), RatioAll: poaDistJSON(s.RatioAll),
			Epsilon: poaDistJSON(s.Epsilon), TruthEpsilon: poaDistJSON(s.TruthEpsilon),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
