package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/market"
)

// newAuctionCmd builds `maxwell auction`, which clears one slot auction read
// as JSON (the format is in docs/AUCTION.md).
func newAuctionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "auction [file]",
		Short: "Clear one CPU-slot auction read as JSON and print who wins what at which price",
		Long: `Auction reads one auction from the file named, or from standard input, as
JSON:

  {"rule": "gsp", "reserve": 200000,
   "slots": [{"id": 0, "weight": 1000000}],
   "bids":  [{"bidder": "miner", "price": 1200000, "budget": 800000}]}

Weights are parts of 1000000 of one core for one tick; prices and the reserve
are credits (1 credit = 1 µJ) per 1000000 of weight; budgets and payments are
credits. "rule" is gsp (the default) or vcg; "budget" is optional.
Decoding is strict: unknown fields, negative or fractional numbers, numbers
that overflow 64 bits and trailing data are errors. See docs/AUCTION.md.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			req, err := market.DecodeRequest(in)
			if err != nil {
				return err
			}
			out, err := req.Clear()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			return out.WriteText(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}
