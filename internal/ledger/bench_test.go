package ledger

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// benchLedger opens a ledger with PRAGMA synchronous = sync and ten funded
// wallets c0..c9.
func benchLedger(b *testing.B, sync string) *Ledger {
	b.Helper()
	l, err := Open(b.Context(), filepath.Join(b.TempDir(), "ledger.db"), Options{synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	for i := range 10 {
		name := fmt.Sprintf("c%d", i)
		if _, err := l.OpenWallet(b.Context(), "open/"+name, 0, WalletSpec{Name: name, Endowment: 1 << 50, TapRate: 1000, TapCap: 1 << 51}); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

// BenchmarkCharge measures one Charge, one SQLite transaction, committed
// with synchronous=FULL (the default: fsync of the WAL on every commit) and
// NORMAL (durable against a crash of the process, not of the host).
func BenchmarkCharge(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("sync="+sync, func(b *testing.B) {
			l := benchLedger(b, sync)
			i := 0
			for b.Loop() {
				if _, err := l.Charge(b.Context(), fmt.Sprintf("c/%d", i), uint64(i), "c3", 17, KindEnergy); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkApplyBatch measures a tick's batch of 10 transactions (payments,
// energy charges and taps across ten wallets) applied in one SQLite
// transaction; ns/op is per batch.
func BenchmarkApplyBatch(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("sync="+sync, func(b *testing.B) {
			l := benchLedger(b, sync)
			tick := uint64(0)
			txs := make([]Tx, 10)
			for b.Loop() {
				tick++
				for i := range txs {
					c := fmt.Sprintf("c%d", i)
					switch i % 3 {
					case 0:
						txs[i] = Tx{Key: Key(tick, c, "payment"), Kind: KindPayment, Tick: tick, Wallet: c, Entries: []Entry{{c, -100}, {Burn, 100}}}
					case 1:
						txs[i] = Tx{Key: Key(tick, c, "energy"), Kind: KindEnergy, Tick: tick, Wallet: c, Entries: []Entry{{c, -7}, {Burn, 7}}}
					default:
						txs[i] = Tx{Key: Key(tick, c, "tap"), Kind: KindTap, Tick: tick, Wallet: c, Entries: []Entry{{Mint, -100}, {c, 100}}}
					}
				}
				if _, err := l.Apply(b.Context(), txs...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify measures Verify on a ledger of 10 wallets and 10,000
// per-tick payments, and on one holding a full window of per-tick
// postings of a 64-CPU host (an hour at 10 Hz, 64 cells: 2,304,000 rows of
// 5,184,000 postings).
func BenchmarkVerify(b *testing.B) {
	b.Run("10x1000", func(b *testing.B) {
		l := benchLedger(b, "OFF")
		for tick := range uint64(1000) {
			txs := make([]Tx, 10)
			for i := range txs {
				c := fmt.Sprintf("c%d", i)
				txs[i] = Tx{Key: Key(tick, c, "payment"), Kind: KindPayment, Tick: tick, Wallet: c, Entries: []Entry{{c, -100}, {Burn, 100}}}
			}
			if _, err := l.Apply(b.Context(), txs...); err != nil {
				b.Fatal(err)
			}
		}
		benchVerify(b, l)
	})
	b.Run("window-64x36000", func(b *testing.B) {
		dir := b.TempDir()
		simulate(b, dir, growthLoad{cells: 64, hz: 10, tapEvery: 4}, 36_000, 36_000, Options{})
		l, err := Open(b.Context(), filepath.Join(dir, "ledger.db"), Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		benchVerify(b, l)
	})
}

func benchVerify(b *testing.B, l *Ledger) {
	for b.Loop() {
		rep, err := l.Verify(b.Context())
		if err != nil || !rep.OK {
			b.Fatal(rep, err)
		}
	}
}

// BenchmarkExport measures Export and History on the ledger of a 64-CPU
// host after an hour at 10 Hz (64 cells, 36,000 ticks, 5,184,000 postings),
// half an hour kept per tick (1,152,000 rows) and the half hour before
// rolled up per minute: the whole ledger as CSV, one cell's postings, and
// one cell's history of its last ten minutes. It reports the records (or
// points) a second and the peak of the heap in use, sampled every 4,096
// of them: the export streams, so the heap does not grow with the ledger.
func BenchmarkExport(b *testing.B) {
	dir := b.TempDir()
	simulate(b, dir, growthLoad{cells: 64, hz: 10, tapEvery: 4}, 36_000, 36_000, Options{Keep: 30 * time.Minute})
	path := filepath.Join(dir, "ledger.db")
	l, err := Open(b.Context(), path, Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var peak uint64
	sample := func(n int) {
		if n%4096 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
	}
	for _, bc := range []struct {
		name string
		run  func() (int, error)
	}{
		{"all-csv", func() (int, error) {
			n := 0
			rw, err := NewRecordWriter(io.Discard, FormatCSV)
			if err != nil {
				return 0, err
			}
			err = l.Export(b.Context(), Filter{}, func(r Record) error { n++; sample(n); return rw.Write(r) })
			return n, errors.Join(err, rw.Flush())
		}},
		{"one-cell", func() (int, error) {
			n := 0
			err := l.Export(b.Context(), Filter{Cell: "cell-07"}, func(Record) error { n++; sample(n); return nil })
			return n, err
		}},
		{"history-last-10m", func() (int, error) {
			n := 0
			err := l.History(b.Context(), Filter{Cell: "cell-07", SinceTick: 36_000 - 6_000}, func(Point) error { n++; sample(n); return nil })
			return n, err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			peak = 0
			runtime.GC()
			var n int
			for b.Loop() {
				if n, err = bc.run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "records")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
