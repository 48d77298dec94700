package ledger

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report of the ledger at path.
func (rep Report) WriteText(w io.Writer, path string) error {
	verdict := "OK"
	if !rep.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "ledger %s: %s\n", path, verdict)
	fmt.Fprintf(w, "minted %d credits = balances %d + burned %d\n", rep.Minted, rep.Balances, rep.Burned)
	fmt.Fprintf(w, "%d wallets (%d open), %d transactions, %d entries, schema version %d\n",
		rep.Wallets, rep.OpenWallets, rep.Txs, rep.Entries, rep.SchemaVersion)
	fmt.Fprintf(w, "%d of the transactions are per-tick postings; %d rollups replace %d per-tick postings of the ticks below %d\n",
		rep.Postings, rep.Rollups, rep.RolledUp, rep.RolledBelow)
	fmt.Fprintf(w, "%d of the transactions are changes of tap terms\n", rep.TermsChanges)
	if rep.ClockAnchors > 0 {
		fmt.Fprintf(w, "%d clock anchors tell the times of ticks\n", rep.ClockAnchors)
	} else {
		fmt.Fprintf(w, "no clock anchors: the times of ticks are estimated from the tick period and the last write\n")
	}
	fmt.Fprintf(w, "database %d bytes, write-ahead log %d bytes\n", rep.DatabaseBytes, rep.WALBytes)
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	return nil
}

// Book is a look at a ledger: its accounts and its most recent
// transactions, newest first.
type Book struct {
	Path     string    `json:"path"`
	Accounts []Account `json:"accounts"`
	Recent   []Posted  `json:"recent"`
}

// ReadBook reads the accounts and the limit most recent transactions of
// the ledger at path, read-only. It makes two reads, not one snapshot: good
// enough for a look at a running engine; Verify is what must be exact.
func ReadBook(ctx context.Context, path string, limit int) (Book, error) {
	if limit < 0 {
		return Book{}, fmt.Errorf("ledger: %d recent transactions asked for: want 0 or more", limit)
	}
	l, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		return Book{}, err
	}
	defer l.Close()
	b := Book{Path: l.Path()}
	if b.Accounts, err = l.Accounts(ctx); err != nil {
		return b, err
	}
	if b.Recent, err = l.Recent(ctx, limit); err != nil {
		return b, err
	}
	if b.Recent == nil {
		b.Recent = []Posted{}
	}
	return b, nil
}

// WalletNames returns the names of the wallets of the ledger at path, read
// only, open ones first (for completing a cell's name).
func WalletNames(ctx context.Context, path string) ([]string, error) {
	l, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	as, err := l.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	var open, closed []string
	for _, a := range as {
		switch {
		case a.Kind != "wallet":
		case a.State == "open":
			open = append(open, a.Name)
		default:
			closed = append(closed, a.Name)
		}
	}
	return append(open, closed...), nil
}

// WriteText prints the book as two tables.
func (b Book) WriteText(w io.Writer) error {
	accs, recent := b.Accounts, b.Recent
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
		if p.Terms != nil {
			entries += "; " + p.Terms.String()
		}
		id := "-" // a per-tick posting
		if p.ID != 0 {
			id = strconv.FormatInt(p.ID, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", id, p.Tick, p.Kind, p.Key, entries, p.Memo)
	}
	return tw.Flush()
}
