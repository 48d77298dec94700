package main

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/ledger"
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
