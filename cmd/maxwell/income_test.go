package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/event"
)

// TestIncomeForCheckedWork: under a real daemon, an honest Scientist paid
// per prime earns income, and one that claims 5 % more primes than it
// finds is caught by the host's recount and earns no more (issue 12);
// income for a counter the host cannot check is refused at spawn.
func TestIncomeForCheckedWork(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "income.yaml")
	// Recount every claim, so that the liar is caught in seconds.
	if err := os.WriteFile(cfg, []byte("income:\n  verify_fraction: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := startDaemon(t, "--config", cfg)
	exe, _ := os.Executable()
	ctx := context.Background()
	income := &api.Income{Counter: "primes", CreditsPerUnit: 0.01}
	for _, a := range []struct {
		name string
		argv []string
	}{
		{"honest", []string{exe, "agent", "scientist", "--threads", "1", "--report-interval", "100ms"}},
		{"liar", []string{exe, "agent", "scientist", "--threads", "1", "--report-interval", "100ms", "--inflate", "1.05"}},
	} {
		if _, err := c.Spawn(ctx, api.SpawnRequest{Name: a.name, Argv: a.argv, Wallet: 1 << 40, MaxBid: 2_000_000, Units: 1, Dir: "/", Income: income}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Spawn(ctx, api.SpawnRequest{Name: "svc", Argv: []string{exe, "agent", "service"}, Wallet: 1 << 30, Dir: "/",
		Income: &api.Income{Counter: "requests", CreditsPerUnit: 1}})
	if err == nil || !strings.Contains(err.Error(), "cannot check") {
		t.Errorf("income on requests: %v, want refused", err)
	}

	cell := func(st api.State, name string) api.Cell {
		for _, cl := range st.Cells {
			if cl.Name == name {
				return cl
			}
		}
		return api.Cell{}
	}
	var st api.State
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		if st, err = c.State(ctx); err != nil {
			t.Fatal(err)
		}
		if cell(st, "liar").IncomeStopped != "" && cell(st, "honest").Income > 1000 {
			break
		}
		if time.Since(start) > 40*time.Second {
			t.Fatalf("after 40 s: honest %+v, liar %+v", cell(st, "honest"), cell(st, "liar"))
		}
	}
	liar := cell(st, "liar")
	t.Logf("honest earned %d credits; the liar %d before: %s", cell(st, "honest").Income, liar.Income, liar.IncomeStopped)
	if !strings.Contains(liar.IncomeStopped, "false claim") {
		t.Errorf("the liar's income stopped for %q", liar.IncomeStopped)
	}
	seen := false
	for _, e := range st.Events {
		seen = seen || e.Kind == event.IncomeStopped && e.Cell == "liar"
	}
	if !seen {
		t.Error("no income_stopped event for the liar")
	}
	time.Sleep(time.Second)
	later, _ := c.State(ctx)
	if got := cell(later, "liar").Income; got != liar.Income {
		t.Errorf("the liar earned %d more credits after it was caught", got-liar.Income)
	}
	if h := cell(later, "honest"); h.IncomeStopped != "" || h.Income <= cell(st, "honest").Income {
		t.Errorf("the honest Scientist stopped earning: %+v", h)
	}
}
