package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
				err = writeLedgerReport(w, l.Path(), rep)
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

func writeLedgerReport(w io.Writer, path string, rep ledger.Report) error {
	verdict := "OK"
	if !rep.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "ledger %s: %s\n", path, verdict)
	fmt.Fprintf(w, "minted %d credits = balances %d + burned %d\n", rep.Minted, rep.Balances, rep.Burned)
	fmt.Fprintf(w, "%d wallets (%d open), %d transactions, %d entries, schema version %d\n",
		rep.Wallets, rep.OpenWallets, rep.Txs, rep.Entries, rep.SchemaVersion)
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	return nil
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
			if limit < 0 {
				return fmt.Errorf("--limit %d: want 0 or more", limit)
			}
			l, err := ledger.Open(cmd.Context(), path, ledger.Options{ReadOnly: true})
			if err != nil {
				return err
			}
			defer l.Close()
			// Two reads, not one snapshot: good enough for a look at a
			// running engine; verify is the command that must be exact.
			accs, err := l.Accounts(cmd.Context())
			if err != nil {
				return err
			}
			recent, err := l.Recent(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if recent == nil {
				recent = []ledger.Posted{}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					Path     string           `json:"path"`
					Accounts []ledger.Account `json:"accounts"`
					Recent   []ledger.Posted  `json:"recent"`
				}{l.Path(), accs, recent})
			}
			return writeLedgerShow(cmd.OutOrStdout(), accs, recent)
		},
	}
	cmd.Flags().StringVar(&path, "db", ledger.DefaultPath(), "ledger database")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many recent transactions to print")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeLedgerShow(w io.Writer, accs []ledger.Account, recent []ledger.Posted) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tKIND\tSTATE\tBALANCE\tENDOWMENT\tTAP /s\tTAP CAP\tOPENED\tCLOSED")
	for _, a := range accs {
		closed := "-"
		if a.ClosedTick != nil {
			closed = fmt.Sprintf("tick %d, final %d", *a.ClosedTick, *a.FinalBalance)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n",
			a.Name, a.Kind, a.State, a.Balance, a.Endowment, a.TapRate, a.TapCap, a.OpenedTick, closed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nrecent transactions (newest first):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTICK\tKIND\tKEY\tENTRIES\tMEMO")
	for _, p := range recent {
		es := make([]string, len(p.Entries))
		for i, e := range p.Entries {
			es[i] = fmt.Sprintf("%s %+d", e.Account, e.Amount)
		}
		entries := strings.Join(es, ", ")
		if entries == "" {
			entries = "(none)"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", p.ID, p.Tick, p.Kind, p.Key, entries, p.Memo)
	}
	return tw.Flush()
}
