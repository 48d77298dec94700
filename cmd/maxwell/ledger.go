package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/maxwellhq/maxwell/internal/ledger"
)

// newLedgerCmd builds `maxwell ledger`: checking, showing and exporting
// the wallets' ledger.
func newLedgerCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Check, show and export the ledger of wallets and transactions",
		Long: `The ledger is the engine's durable double-entry book (SQLite, WAL mode):
every mint, payment, charge, tax, tap, income, refund and closing is an
immutable transaction whose entries sum to zero. Amounts are whole credits,
one per microjoule of host energy.

Every subcommand opens the ledger read-only and takes no lock, so it can run
while the engine writes. A cell's history over time is ` + "`maxwell history NAME`" + `.`,
	}
	cmd.AddCommand(newLedgerVerifyCmd(), newLedgerShowCmd(), newLedgerExportCmd(a))
	return cmd
}

// ledgerFlag registers --ledger, the ledger database, and takes --db, its
// older name, for it.
func ledgerFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "ledger", ledger.DefaultPath(), "ledger database (--db is the same)")
	cmd.Flags().SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "db" {
			name = "ledger"
		}
		return pflag.NormalizedName(name)
	})
}

// boundFlags are --since and --until of a reader of the ledger.
type boundFlags struct{ since, until string }

func (b *boundFlags) register(cmd *cobra.Command) {
	const how = "a tick (1234), a duration back from now (90s, 10m, 2h) or an RFC 3339 time"
	cmd.Flags().StringVar(&b.since, "since", "", "from this tick or time on: "+how)
	cmd.Flags().StringVar(&b.until, "until", "", "up to this tick or time: "+how)
}

// readOptions turns the flags of a reader of the ledger into its options:
// the bounds, and the engine's tick period from the configuration, which
// dates the ticks of a ledger that holds no clock anchors.
func (a *app) readOptions(cell string, b boundFlags, format ledger.Format) (ledger.ReadOptions, error) {
	o := ledger.ReadOptions{Cell: cell, Format: format}
	now := time.Now()
	var err error
	if o.Since, err = ledger.ParseMoment(b.since, now); err != nil {
		return o, fmt.Errorf("--since %w", err)
	}
	if o.Until, err = ledger.ParseMoment(b.until, now); err != nil {
		return o, fmt.Errorf("--until %w", err)
	}
	cfg, err := a.config()
	if err != nil {
		return o, err
	}
	o.Tick = cfg.Engine.Tick
	return o, nil
}

func newLedgerExportCmd(a *app) *cobra.Command {
	var path, cell string
	var bounds boundFlags
	var asCSV, asJSONL bool
	cmd := &cobra.Command{
		Use:   "export [--cell NAME] [--since X] [--until Y] --csv|--jsonl",
		Short: "Write every posting, or one cell's, in tick order as CSV or JSON lines",
		Long: `Export writes every posting of the ledger in tick order, streamed: a record
per wallet of each transaction stored whole (opens, funds, refunds, closes,
changes of tap terms), per kind of each cell's per-tick postings (payment,
energy, tax, rent, tap, income), and per kind of each rollup, the older
per-tick postings folded per minute (rollup true, its span of ticks from tick
to last_tick, count the postings it stands for). Amounts are as the wallet
sees them: what it paid is negative. The balance after a record is given where
the ledger knows it: after a transaction stored whole, after a cell's
postings of a tick (the last of them), after a rollup; see docs/LEDGER.md.

--cell keeps one cell's wallet; --since and --until keep the ticks between
(a rollup is kept when its span meets them). A time becomes a tick by the
clock anchors the daemon records in the ledger; the time and time_basis of
each record say when its tick fell and how that is known ("clock", or
"estimated" from the tick period where no anchor covers it).

One of --csv and --jsonl is required.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var format ledger.Format
			switch {
			case asCSV && asJSONL:
				return fmt.Errorf("export: --csv or --jsonl, not both")
			case asCSV:
				format = ledger.FormatCSV
			case asJSONL:
				format = ledger.FormatJSONL
			default:
				return fmt.Errorf("export: say which format: --csv or --jsonl")
			}
			o, err := a.readOptions(cell, bounds, format)
			if err != nil {
				return err
			}
			return ledger.WriteExport(cmd.Context(), cmd.OutOrStdout(), path, o)
		},
	}
	ledgerFlag(cmd, &path)
	cmd.Flags().StringVar(&cell, "cell", "", "only this cell's wallet")
	bounds.register(cmd)
	cmd.Flags().BoolVar(&asCSV, "csv", false, "write CSV, with a header row")
	cmd.Flags().BoolVar(&asJSONL, "jsonl", false, "write JSON lines, an object a record")
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
equals the sum of its account's entries, per-tick postings and rollups; that
no idempotency key appears twice, not even once whole and once per tick; that
closed wallets hold nothing; that every income is money minted for a wallet
(the mint's entry and the wallet's, nothing else); that every rollup
balances, fits its counts and its span of ticks and lies below the rollup
watermark, every per-tick posting at or above it; that every change of tap
terms moves no money, belongs to a wallet not closed before it and follows
the change before it, the last one setting the terms the wallet holds; and
that every tap went to a wallet that had a tap at its place in the ledger.
It cannot check a tap's cap afterwards (the balance before it is not kept):
the ledger checks that when the tap is posted. It exits non-zero, saying why,
when any check fails. See docs/LEDGER.md, "What ledger verify proves".`,
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
	ledgerFlag(cmd, &path)
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
	ledgerFlag(cmd, &path)
	cmd.Flags().IntVar(&limit, "limit", 20, "how many recent transactions to print")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
