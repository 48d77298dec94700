package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

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
are micro-credits per 1000000 of weight; budgets and payments are
micro-credits. "rule" is gsp (the default) or vcg; "budget" is optional.
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
			out, err := runAuction(req)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			return writeAuctionTable(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

// auctionOutput is what `maxwell auction --json` prints. Amounts are
// micro-credits; prices are per 1000000 of weight.
type auctionOutput struct {
	Rule          string             `json:"rule"`
	Reserve       uint64             `json:"reserve"`
	ClearingPrice uint64             `json:"clearing_price"`
	Revenue       uint64             `json:"revenue"`
	Allocations   []auctionAllocJSON `json:"allocations"`
	UnsoldSlots   []int              `json:"unsold_slots"`
	Losers        []string           `json:"losing_bidders"`
}

type auctionAllocJSON struct {
	Bidder  string `json:"bidder"`
	Slot    int    `json:"slot"`
	Weight  uint64 `json:"weight"`
	Payment uint64 `json:"payment"`
}

func runAuction(req *market.Request) (auctionOutput, error) {
	res, err := market.Clear(req.Rule, req.Slots, req.Bids, req.Reserve)
	if err != nil {
		return auctionOutput{}, err
	}
	out := auctionOutput{
		Rule:          req.Rule.String(),
		Reserve:       req.Reserve,
		ClearingPrice: res.ClearingPrice,
		Revenue:       res.Revenue,
		Allocations:   []auctionAllocJSON{},
		UnsoldSlots:   []int{},
		Losers:        []string{},
	}
	soldSlot := map[int]bool{}
	won := make([]bool, len(req.Names))
	for _, al := range res.Allocations {
		out.Allocations = append(out.Allocations, auctionAllocJSON{
			Bidder: req.Names[al.Bidder], Slot: al.Slot, Weight: al.Weight, Payment: al.Payment,
		})
		soldSlot[al.Slot] = true
		won[al.Bidder] = true
	}
	for _, s := range req.Slots {
		if !soldSlot[s.ID] {
			out.UnsoldSlots = append(out.UnsoldSlots, s.ID)
		}
	}
	for i, name := range req.Names {
		if !won[i] {
			out.Losers = append(out.Losers, name)
		}
	}
	return out, nil
}

func writeAuctionTable(w io.Writer, out auctionOutput) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BIDDER\tSLOT\tWEIGHT\tPAYMENT")
	for _, al := range out.Allocations {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", al.Bidder, al.Slot, al.Weight, al.Payment)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	unsold := make([]string, len(out.UnsoldSlots))
	for i, id := range out.UnsoldSlots {
		unsold[i] = fmt.Sprint(id)
	}
	_, err := fmt.Fprintf(w, "\nrule %s, reserve %d, clearing price %d per 1000000 weight\n"+
		"revenue %d micro-credits\nunsold slots: %s\nlosing bidders: %s\n",
		out.Rule, out.Reserve, out.ClearingPrice, out.Revenue, auctionList(unsold), auctionList(out.Losers))
	return err
}

func auctionList(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}
