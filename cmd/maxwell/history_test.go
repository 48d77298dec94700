package main

import (
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/ledger/ledgertest"
)

// historyFixture writes ledgertest.History's ledger: wallets a, b and c,
// 40 ticks, the ticks below 30 rolled up, funds inside rollups and after
// tick 34, clock anchors.
func historyFixture(t *testing.T) ledgertest.Posted {
	t.Helper()
	return ledgertest.History(t, filepath.Join(t.TempDir(), "ledger.db"))
}

// points returns what the ledger's History gives for f, to check the
// command against.
func points(t *testing.T, path string, f ledger.Filter) []ledger.Point {
	t.Helper()
	l, err := ledger.Open(t.Context(), path, ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var ps []ledger.Point
	if err := l.History(t.Context(), f, func(p ledger.Point) error { ps = append(ps, p); return nil }); err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestHistoryCmd(t *testing.T) {
	p := historyFixture(t)
	l, err := ledger.Open(t.Context(), p.Path, ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := l.Account(t.Context(), "b")
	l.Close()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("table", func(t *testing.T) {
		out, _, err := run(t, "history", "b", "--ledger", p.Path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !strings.HasPrefix(lines[0], "history of wallet b from tick 0;") || strings.Join(strings.Fields(lines[1]), " ") !=
			"TICK TIME (UTC) BALANCE PAYMENT ENERGY TAX RENT TAP INCOME OTHER" {
			t.Fatalf("head of the table:\n%s", strings.Join(lines[:2], "\n"))
		}
		rows := map[string][]string{}
		for _, line := range lines[2:] {
			if f := strings.Fields(line); len(f) >= 10 && (f[0][0] >= '0' && f[0][0] <= '9') {
				rows[f[0]] = f
			}
		}
		want := len(points(t, p.Path, ledger.Filter{Cell: "b"}))
		if len(rows) != want {
			t.Errorf("%d rows, want %d points:\n%s", len(rows), want, out)
		}
		// TICK, TIME (two fields), BALANCE, PAYMENT, ENERGY, TAX, RENT, TAP, INCOME, OTHER.
		if r := rows["10-14"]; r == nil || r[3] != strconv.FormatInt(int64(p.AfterTick["b"][14]), 10) || strings.Join(r[10:], " ") != "fund +500" {
			t.Errorf("the rollup of ticks 10 to 14: %q, want b's balance after tick 14, %d, and the fund inside it", r, p.AfterTick["b"][14])
		}
		if r := rows["40"]; r == nil || r[3] != strconv.FormatInt(int64(acc.Balance), 10) || r[1] != "2030-01-01" || r[2] != "00:00:45.000" {
			t.Errorf("tick 40: %q, want b's balance %d at 2030-01-01 00:00:45 (the clock's anchors)", r, acc.Balance)
		}
		if r := rows["0"]; r == nil || !strings.HasPrefix(r[1], "~") || !strings.Contains(out, "~: estimated time") {
			t.Errorf("tick 0, before the first anchor: %q, want its time estimated and the footnote saying so", r)
		}
	})

	t.Run("json", func(t *testing.T) {
		out, _, err := run(t, "history", "a", "--ledger", p.Path, "--since", "30", "--until", "34", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Wallet    string         `json:"wallet"`
			SinceTick uint64         `json:"since_tick"`
			UntilTick uint64         `json:"until_tick"`
			Points    []ledger.Point `json:"points"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		want := points(t, p.Path, ledger.Filter{Cell: "a", SinceTick: 30, UntilTick: 34})
		if doc.Wallet != "a" || doc.SinceTick != 30 || doc.UntilTick != 34 || len(doc.Points) != 5 || mustJSON(t, doc.Points) != mustJSON(t, want) {
			t.Errorf("history --json:\n%s\nwant the points\n%s", out, mustJSON(t, want))
		}
		if last := doc.Points[4]; last.Fund != 500 || last.Balance == nil || *last.Balance != p.AfterTx["fund/cell:a/1"] {
			t.Errorf("tick 34: %+v, want the fund after it and the balance after that", last)
		}
	})

	t.Run("csv", func(t *testing.T) {
		// A time: tick 28 fell 33 s after the clock's epoch (5 s lost at tick 20).
		since := ledgertest.TimeOf(28).Format(time.RFC3339)
		out, _, err := run(t, "history", "c", "--db", p.Path, "--csv", "--since", since)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := points(t, p.Path, ledger.Filter{Cell: "c", SinceTick: 28})
		if len(rows) != 1+len(want) || strings.Join(rows[0], ",") !=
			"tick,last_tick,time,time_basis,rollup,balance,payment,energy,tax,rent,tap,income,endow,fund,mint,refund,close,terms_changes" {
			t.Fatalf("history --csv:\n%s\nwant %d points", out, len(want))
		}
		// c's last rollup (its postings of ticks 26 and 28) meets tick 28; its
		// close at tick 30.
		if r := rows[1]; r[0] != "26" || r[1] != "28" || r[4] != "true" {
			t.Errorf("first row %q, want c's rollup of ticks 26 to 28", r)
		}
		if r := rows[len(rows)-1]; r[0] != "30" || r[5] != "0" || r[16] != strconv.FormatInt(int64(p.Sum["c"][ledger.KindClose]), 10) {
			t.Errorf("last row %q, want c's close at tick 30 and its balance 0", r)
		}
	})

	t.Run("an hour ago, before this ledger's time", func(t *testing.T) {
		// The fixture's clock starts in 2030: an hour ago is before it.
		out, _, err := run(t, "history", "a", "--ledger", p.Path, "--until", "1h")
		if err != nil || !strings.Contains(out, "in no tick") || !strings.Contains(out, "(nothing posted in those ticks)") {
			t.Errorf("history --until 1h: %v\n%s", err, out)
		}
	})

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"history", "nobody", "--ledger", p.Path}, `no such account: "nobody"`},
		{[]string{"history", "a", "--ledger", p.Path, "--json", "--csv"}, "--json or --csv, not both"},
		{[]string{"history", "a", "--ledger", p.Path, "--since", "yesterday"}, `--since "yesterday": want a tick (1234), a duration back from now`},
		{[]string{"history", "a", "--ledger", p.Path, "--since", "30", "--until", "20"}, "the end lies before the start"},
		{[]string{"history", "a", "--ledger", filepath.Join(t.TempDir(), "none.db")}, "none.db: no such file"},
		{[]string{"history", "--ledger", p.Path}, "accepts 1 arg(s), received 0"},
	} {
		if _, _, err := run(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
