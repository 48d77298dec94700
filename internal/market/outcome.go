package market

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Outcome is an auction's result with the bidders' names: what `maxwell
// auction --json` prints. Amounts are credits; prices are per FullSlot of
// weight.
type Outcome struct {
	Rule          string              `json:"rule"`
	Reserve       units.Credits       `json:"reserve"`
	ClearingPrice units.Credits       `json:"clearing_price"`
	Revenue       units.Credits       `json:"revenue"`
	Allocations   []OutcomeAllocation `json:"allocations"`
	UnsoldSlots   []int               `json:"unsold_slots"`
	Losers        []string            `json:"losing_bidders"`
}

// OutcomeAllocation is one slot sold, with its buyer's name.
type OutcomeAllocation struct {
	Bidder  string        `json:"bidder"`
	Slot    int           `json:"slot"`
	Weight  uint64        `json:"weight"`
	Payment units.Credits `json:"payment"`
}

// Clear clears the request's auction.
func (req *Request) Clear() (Outcome, error) {
	res, err := Clear(req.Rule, req.Slots, req.Bids, req.Reserve)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{
		Rule:          req.Rule.String(),
		Reserve:       req.Reserve,
		ClearingPrice: res.ClearingPrice,
		Revenue:       res.Revenue,
		Allocations:   []OutcomeAllocation{},
		UnsoldSlots:   []int{},
		Losers:        []string{},
	}
	soldSlot := map[int]bool{}
	won := make([]bool, len(req.Names))
	for _, al := range res.Allocations {
		out.Allocations = append(out.Allocations, OutcomeAllocation{
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

// WriteText prints the outcome as a table.
func (out Outcome) WriteText(w io.Writer) error {
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
		"revenue %d credits\nunsold slots: %s\nlosing bidders: %s\n",
		out.Rule, out.Reserve, out.ClearingPrice, out.Revenue, nameList(unsold), nameList(out.Losers))
	return err
}

func nameList(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}
