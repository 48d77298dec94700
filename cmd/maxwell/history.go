package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/ledger"
)

// newHistoryCmd builds `maxwell history`: a cell's money over time, from
// the ledger.
func newHistoryCmd(a *app) *cobra.Command {
	var path string
	var bounds boundFlags
	var asJSON, asCSV bool
	cmd := &cobra.Command{
		Use:   "history NAME [--since X] [--until Y] [--json|--csv]",
		Short: "Show a cell's balance, payments, taxes, rent, taps, income and energy charges over time, from the ledger",
		Long: `History reads a cell's wallet from the ledger, read-only (the daemon may be
running): a line per tick with postings in the window of per-tick postings
(the last hour by default), a line per rollup (a minute's postings folded)
before it, and the balance after each where the ledger knows it ("?" where
it does not; see docs/LEDGER.md). Amounts are credits (one per µJ) as the
wallet sees them: what it paid is negative. OTHER lists endowments, funds,
refunds, the write-off at its close and changes of its tap terms.

--since and --until take ticks, durations back from now or RFC 3339 times;
a time becomes a tick by the clock anchors the daemon records in the ledger,
and a time printed with "~" is estimated from the tick period where no
anchor covers its tick. Without --since it shows the cell's whole history.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeWallets(&path),
		RunE: func(cmd *cobra.Command, args []string) error {
			format := ledger.FormatTable
			switch {
			case asJSON && asCSV:
				return fmt.Errorf("history: --json or --csv, not both")
			case asJSON:
				format = ledger.FormatJSON
			case asCSV:
				format = ledger.FormatCSV
			}
			o, err := a.readOptions(args[0], bounds, format)
			if err != nil {
				return err
			}
			return ledger.WriteHistory(cmd.Context(), cmd.OutOrStdout(), path, o)
		},
	}
	ledgerFlag(cmd, &path)
	bounds.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	cmd.Flags().BoolVar(&asCSV, "csv", false, "print CSV, with a header row")
	return cmd
}

// completeWallets completes a cell's name from the wallets of the ledger
// at *path.
func completeWallets(path *string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names, err := ledger.WalletNames(cmd.Context(), *path)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
