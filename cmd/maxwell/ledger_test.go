package main

import (
	"database/sql"
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

// ledgerFixture writes a small ledger: wallet a (endowed 1000, charged 300),
// wallet z (endowed 50, closed), and returns its path.
func ledgerFixture(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(ctx, path, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	steps := []func() (ledger.Result, error){
		func() (ledger.Result, error) {
			return l.OpenWallet(ctx, "open/a", 1, ledger.WalletSpec{Name: "a", Endowment: 1000, TapRate: 5, TapCap: 2000})
		},
		func() (ledger.Result, error) {
			return l.OpenWallet(ctx, "open/z", 1, ledger.WalletSpec{Name: "z", Endowment: 50})
		},
		func() (ledger.Result, error) {
			return l.Charge(ctx, ledger.Key(2, "a", "payment"), 2, "a", 300, ledger.KindPayment)
		},
		func() (ledger.Result, error) { return l.CloseWallet(ctx, ledger.Key(3, "z", "close"), 3, "z") },
	}
	for _, s := range steps {
		if _, err := s(); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestLedgerVerifyCmd(t *testing.T) {
	path := ledgerFixture(t)
	out, _, err := run(t, "ledger", "verify", "--db", path)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	for _, want := range []string{": OK\n", "minted 1050 credits = balances 700 + burned 350", "2 wallets (1 open), 4 transactions, 8 entries"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = run(t, "ledger", "verify", "--db", path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep ledger.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if !rep.OK || rep.Minted != 1050 || rep.Burned != 350 || rep.Balances != 700 || rep.Txs != 4 {
		t.Errorf("report %+v", rep)
	}

	// Tamper: a stored balance no longer matches its entries.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE accounts SET balance = balance + 9 WHERE name = 'a'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, _, err = run(t, "ledger", "verify", "--db", path)
	if err == nil || !strings.Contains(err.Error(), `account "a": stored balance 709, entries sum to 700`) {
		t.Errorf("verify of a tampered ledger: err %v", err)
	}
	if !strings.Contains(out, ": FAILED\n") || !strings.Contains(out, "problem: ") {
		t.Errorf("verify of a tampered ledger printed:\n%s", out)
	}
	out, _, err = run(t, "ledger", "verify", "--db", path, "--json")
	if err == nil || !strings.Contains(out, `"ok": false`) {
		t.Errorf("verify --json of a tampered ledger: err %v, out:\n%s", err, out)
	}

	if _, _, err := run(t, "ledger", "verify", "--db", filepath.Join(t.TempDir(), "none.db")); err == nil {
		t.Error("verify of a missing ledger succeeded")
	}
}

func TestLedgerShowCmd(t *testing.T) {
	path := ledgerFixture(t)
	out, _, err := run(t, "ledger", "show", "--db", path, "--limit", "2")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// Header + mint, burn, a, z; blank; title; header + 2 transactions.
	if len(lines) != 5+1+1+1+2 {
		t.Fatalf("show printed %d lines:\n%s", len(lines), out)
	}
	for _, want := range []string{"mint", "burn", "a", "z"} {
		found := false
		for _, l := range lines[1:5] {
			found = found || strings.Fields(l)[0] == want
		}
		if !found {
			t.Errorf("no account %q in:\n%s", want, out)
		}
	}
	if f := strings.Fields(lines[3]); f[0] != "a" || f[2] != "open" || f[3] != "700" || f[4] != "1000" || f[5] != "5" || f[6] != "2000" {
		t.Errorf("wallet line %q", lines[3])
	}
	if !strings.Contains(lines[4], "tick 3, final 50") {
		t.Errorf("closed wallet line %q", lines[4])
	}
	if !strings.Contains(lines[8], "tick:3/cell:z/close") || !strings.Contains(lines[8], "z -50, burn +50") ||
		!strings.Contains(lines[9], "tick:2/cell:a/payment") {
		t.Errorf("recent transactions:\n%s", strings.Join(lines[7:], "\n"))
	}

	out, _, err = run(t, "ledger", "show", "--db", path, "--json", "--limit", "10")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Accounts []ledger.Account `json:"accounts"`
		Recent   []ledger.Posted  `json:"recent"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(got.Accounts) != 4 || len(got.Recent) != 4 || got.Recent[3].Key != "open/a" || got.Accounts[0].Balance != -1050 {
		t.Errorf("show --json: %+v", got)
	}
	if _, _, err := run(t, "ledger", "show", "--db", path, "--limit", "-1"); err == nil {
		t.Error("--limit -1 accepted")
	}
}

// records returns what the ledger's Export gives for f, to check the
// command against.
func records(t *testing.T, path string, f ledger.Filter) []ledger.Record {
	t.Helper()
	l, err := ledger.Open(t.Context(), path, ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var rs []ledger.Record
	if err := l.Export(t.Context(), f, func(r ledger.Record) error { rs = append(rs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestLedgerExportCmd(t *testing.T) {
	p := historyFixture(t)
	for _, tc := range []struct {
		name string
		args []string
		f    ledger.Filter
	}{
		{"everything", nil, ledger.Filter{}},
		{"a cell", []string{"--cell", "b"}, ledger.Filter{Cell: "b"}},
		{"ticks", []string{"--since", "13", "--until", "33"}, ledger.Filter{SinceTick: 13, UntilTick: 33}},
		{"a cell and times", []string{"--cell", "a", "--since", ledgertest.TimeOf(22).Format(time.RFC3339),
			"--until", ledgertest.TimeOf(31).Format(time.RFC3339)}, ledger.Filter{Cell: "a", SinceTick: 22, UntilTick: 31}},
	} {
		want := records(t, p.Path, tc.f)
		if len(want) == 0 {
			t.Fatalf("%s: nothing to export", tc.name)
		}
		t.Run(tc.name+"/jsonl", func(t *testing.T) {
			out, _, err := run(t, append([]string{"ledger", "export", "--ledger", p.Path, "--jsonl"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(want) {
				t.Fatalf("%d lines, want %d records", len(lines), len(want))
			}
			for i, line := range lines {
				var r ledger.Record
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("line %d %q: %v", i, line, err)
				}
				if got, w := mustJSON(t, r), mustJSON(t, want[i]); got != w {
					t.Errorf("line %d: %s, want %s", i, got, w)
				}
			}
		})
		t.Run(tc.name+"/csv", func(t *testing.T) {
			out, _, err := run(t, append([]string{"ledger", "export", "--db", p.Path, "--csv"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1+len(want) || rows[0][0] != "tick" || rows[0][8] != "amount" || rows[0][9] != "balance" {
				t.Fatalf("%d rows, header %q; want %d records", len(rows), rows[0], len(want))
			}
			for i, r := range want {
				row := rows[1+i]
				balance := ""
				if r.Balance != nil {
					balance = strconv.FormatInt(int64(*r.Balance), 10)
				}
				if row[0] != strconv.FormatUint(r.Tick, 10) || row[6] != r.Wallet || row[7] != string(r.Kind) ||
					row[8] != strconv.FormatInt(int64(r.Amount), 10) || row[9] != balance || row[10] != r.Key {
					t.Errorf("row %d %q, want %+v", i, row, r)
				}
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ledger", "export", "--ledger", p.Path}, "say which format: --csv or --jsonl"},
		{[]string{"ledger", "export", "--ledger", p.Path, "--csv", "--jsonl"}, "--csv or --jsonl, not both"},
		{[]string{"ledger", "export", "--ledger", p.Path, "--csv", "--cell", "mint"}, `"mint" is a system account`},
		{[]string{"ledger", "export", "--ledger", p.Path, "--csv", "--until", "0"}, "ends before the first tick"},
		{[]string{"ledger", "export", "--ledger", p.Path, "--csv", "--since", "-5m"}, "a duration back from now is positive"},
	} {
		if _, _, err := run(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}
