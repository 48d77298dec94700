package economy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"
)

func TestEngineConfigFromDefaults(t *testing.T) {
	cfg := config.Default()
	ec, err := EngineConfig(cfg, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	// 243 W / 32 threads × 100 ms = 0.759375 J.
	if ec.SlotEnergy != 759375 {
		t.Errorf("slot energy %d µJ, want 759375", ec.SlotEnergy)
	}
	if _, err := engine.NewCore(ec); err != nil {
		t.Errorf("default engine configuration rejected: %v", err)
	}
	if got := DemoEndowment(cfg, 2, time.Minute); got != 2*2*759375*600 {
		t.Errorf("demo endowment %d", got)
	}
}

// TestLedgerPostsATick runs real engine decisions into a real ledger and
// checks the invariant and the balances.
func TestLedgerPostsATick(t *testing.T) {
	ctx := context.Background()
	l, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := config.Default()
	ec, _ := EngineConfig(cfg, 2, "")
	core, err := engine.NewCore(ec)
	if err != nil {
		t.Fatal(err)
	}
	lg := Ledger{L: l}
	for _, name := range []string{"scientist", "miner"} {
		w := engine.Wallet{Balance: 10_000_000, Endowment: 10_000_000}
		if err := core.Admit(name, w); err != nil {
			t.Fatal(err)
		}
		if err := lg.OpenWallet(ctx, name, w); err != nil {
			t.Fatal(err)
		}
		if err := lg.OpenWallet(ctx, name, w); err != nil {
			t.Fatalf("reopening a wallet is not idempotent: %v", err)
		}
	}
	for tick := uint64(1); tick <= 20; tick++ {
		d, err := core.Decide(engine.Input{Tick: tick, Dt: ec.Tick, Temperature: 40, Cells: []engine.CellInput{
			{Name: "scientist", Bid: engine.Bid{Price: 2 * units.Credits(ec.SlotEnergy), Units: 2}},
			{Name: "miner", Bid: engine.Bid{Price: 6 * units.Credits(ec.SlotEnergy), Units: 2}, FreedBytes: 64 << 20},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if err := lg.Post(ctx, d.Postings); err != nil {
			t.Fatalf("tick %d: %v", tick, err)
		}
		if err := lg.Post(ctx, d.Postings); err != nil {
			t.Fatalf("tick %d posted twice: %v", tick, err)
		}
		core.Commit(d)
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	for _, name := range []string{"scientist", "miner"} {
		acct, err := l.Account(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		_, w, _ := core.Cell(name)
		st, _, _ := core.Cell(name)
		want := w.Balance
		if st == life.Dead {
			want = 0 // the close wrote the balance off
		}
		if acct.Balance != want {
			t.Errorf("%s: ledger balance %d, engine %d (%s)", name, acct.Balance, w.Balance, st)
		}
	}
}

// TestAPIErrorSaysItOnce: the engine's and the ledger's errors keep their
// own words and gain the API's code, without the code's words twice ("no
// such cell: no such cell: x").
func TestAPIErrorSaysItOnce(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code *api.Error
	}{
		{fmt.Errorf("%w: x", engine.ErrUnknown), api.ErrNotFound},
		{fmt.Errorf("%w: x", engine.ErrDead), api.ErrConflict},
		{fmt.Errorf("%w: x", engine.ErrBadAmount), api.ErrBadRequest},
		{fmt.Errorf("%w: x", ledger.ErrFull), api.ErrUnavailable},
	} {
		got := apiError(tt.err)
		if !errors.Is(got, tt.code) || !errors.Is(got, tt.err) || got.Error() != tt.err.Error() {
			t.Errorf("apiError(%q) = %q (is %v: %t)", tt.err, got, tt.code.Code, errors.Is(got, tt.code))
		}
	}
}
