package main

import (
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
			rep := poa.Report{Config: cfg, Summaries: sums}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			return rep.WriteText(cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&cfg.Instances, "instances", cfg.Instances, "random instances per setting")
	cmd.Flags().Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	cmd.Flags().IntVar(&cfg.MaxStepsPerBidder, "max-steps", cfg.MaxStepsPerBidder, "update cap per bidder before a run counts as not converged")
	cmd.Flags().IntVar(&cfg.Grid, "grid", cfg.Grid, "steps in the deviation grid used for ε")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}
