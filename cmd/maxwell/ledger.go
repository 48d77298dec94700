package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/ledger"
)

// newLedgerCmd builds `maxwell ledger`: checking and showing the wallets'
// ledger.
func newLedgerCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Check and show the ledger of wallets and transactions",
		Long: `The ledger is the engine's durable double-entry book (SQLite, WAL mode):
every mint, payment, charge, tax, refund and closing is an immutable
transaction whose entries sum to zero. Amounts are whole credits, one per
microjoule of host energy.

Both subcommands open the ledger read-only and take no lock, so they can run
while the engine writes.`,
	}
	cmd.AddCommand(newLedgerVerifyCmd(), newLedgerShowCmd())
	return cmd
}

func newLedgerVerifyCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that minted = Σ balances + burned, exactly, and that the books are consistent",
		Long: `Verify checks, in one snapshot: SQLite's quick_check; that all money ever
minted equals the wallets' balances plus what was burned, to the credit;
that every transaction's entries sum to zero; that every stored balance
equals the sum of its account's entries; that no idempotency key appears
twice; and that closed wallets hold nothing. It exits non-zero, saying why,
when any check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := ledger.Open(cmd.Context(), path, ledger.Options{ReadOnly: true})
			if err != nil {
				return err
			}
			defer l.Close()
			rep, err := l.Verify(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				err = printJSON(w, rep)
			} else {
				err = rep.WriteText(w, l.Path())
			}
			if err != nil {
				return err
			}
			if !rep.OK {
				return fmt.Errorf("ledger %s fails verification: %s", l.Path(), strings.Join(rep.Problems, "; "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "db", ledger.DefaultPath(), "ledger database")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func newLedgerShowCmd() *cobra.Command {
	var path string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the accounts and the most recent transactions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := ledger.ReadBook(cmd.Context(), path, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), b)
			}
			return b.WriteText(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&path, "db", ledger.DefaultPath(), "ledger database")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many recent transactions to print")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
