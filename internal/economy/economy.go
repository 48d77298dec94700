// Package economy assembles Maxwell's economy from its parts: it turns the
// configuration into an engine configuration and adapts the ledger, the
// Landauer meter and the agent hub to the small interfaces the engine
// defines. `maxwell demo`, `maxwell compare` and `maxwell daemon` share it.
package economy

import (
	"context"
	"fmt"
	"time"

	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/market"
	"github.com/maxwellhq/maxwell/internal/units"
)

// SlotEnergy is the expected energy of one busy CPU over one tick: the
// power model's full-load watts per hardware thread of its reference
// server, times the tick. It is the reserve price at multiplier 1. It comes
// from the model even on hosts with a power sensor, which measures the whole
// package and cannot say what one more busy CPU costs before it runs.
func SlotEnergy(cfg config.Config) units.Energy {
	ref := cfg.PowerModel.Reference
	perCPU := units.Power(ref.MaxWatts / float64(ref.HardwareThreads))
	return perCPU.Over(cfg.Engine.Tick)
}

// EngineConfig builds the engine's configuration for a host selling slots
// CPUs per tick.
func EngineConfig(cfg config.Config, slots int) (engine.Config, error) {
	rule, err := market.ParseRule(cfg.Engine.Rule)
	if err != nil {
		return engine.Config{}, err
	}
	e := cfg.Engine
	return engine.Config{
		Tick:       e.Tick,
		Slots:      slots,
		SlotEnergy: SlotEnergy(cfg),
		Rule:       rule,
		Controller: control.Config{
			Gains:    control.Gains{Kp: e.Gains.Kp, Ki: e.Gains.Ki, Kd: e.Gains.Kd},
			OutMin:   1,
			OutMax:   e.PriceCeiling,
			Setpoint: units.Celsius(e.SetpointCelsius),
			Critical: units.Celsius(e.CriticalCelsius),
		},
		TaxPicojoulesPerByte:        e.TaxPicojoulesPerByte,
		RentPicojoulesPerByteSecond: e.RentPicojoulesPerByteSecond,
		Insolvency:                  engine.Insolvency(e.Insolvency),
		LowBalancePercent:           e.LowBalancePercent,
	}, nil
}

// DemoEndowment is each demo agent's endowment: the configured figure, or,
// when that is 0, enough to buy every slot at twice the base price for the
// whole run.
func DemoEndowment(cfg config.Config, slots int, d time.Duration) int64 {
	if cfg.Demo.EndowmentCredits > 0 {
		return cfg.Demo.EndowmentCredits
	}
	ticks := int64(d / cfg.Engine.Tick)
	return 2 * int64(slots) * int64(SlotEnergy(cfg)) * ticks
}

// Ledger adapts a *ledger.Ledger to engine.Ledger: each tick's postings
// become ledger transactions applied in one database transaction.
type Ledger struct{ L *ledger.Ledger }

// Post implements engine.Ledger.
func (l Ledger) Post(ctx context.Context, postings []engine.Posting) error {
	if len(postings) == 0 {
		return nil
	}
	txs := make([]ledger.Tx, 0, len(postings))
	for _, p := range postings {
		tx := ledger.Tx{Key: p.Key, Tick: p.Tick, Wallet: p.Cell}
		amount := ledger.Credits(p.Amount)
		switch p.Kind {
		case "payment", "tax", "rent":
			tx.Kind = map[string]ledger.Kind{"payment": ledger.KindPayment, "tax": ledger.KindTax, "rent": ledger.KindRent}[p.Kind]
			tx.Entries = []ledger.Entry{{Account: p.Cell, Amount: -amount}, {Account: ledger.Burn, Amount: amount}}
		case "tap":
			// The engine computes tap income (a negative debit); the
			// ledger records it as money minted for the wallet.
			tx.Kind, tx.Memo = ledger.KindMint, "tap"
			tx.Entries = []ledger.Entry{{Account: ledger.Mint, Amount: amount}, {Account: p.Cell, Amount: -amount}}
		case "close":
			tx.Kind = ledger.KindClose
		default:
			return fmt.Errorf("economy: posting %q of unknown kind %q", p.Key, p.Kind)
		}
		txs = append(txs, tx)
	}
	_, err := l.L.Apply(ctx, txs...)
	return err
}

// OpenWallet opens a cell's wallet in the ledger with its endowment, once:
// the key makes a repeated call (a restarted daemon) a no-op.
func (l Ledger) OpenWallet(ctx context.Context, name string, w engine.Wallet) error {
	_, err := l.L.Apply(ctx, ledger.Tx{
		Key:  "open/cell:" + name,
		Kind: ledger.KindEndow,
		Open: &ledger.WalletSpec{Name: name, Endowment: ledger.Credits(w.Endowment), TapRate: ledger.Credits(w.TapRate), TapCap: ledger.Credits(w.TapCap)},
	})
	return err
}

// Fund mints amount credits into a wallet at an operator's request.
func (l Ledger) Fund(ctx context.Context, key, name string, amount int64) error {
	_, err := l.L.Fund(ctx, key, 0, name, ledger.Credits(amount))
	return err
}
