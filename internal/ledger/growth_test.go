package ledger

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

var growthHours = flag.Float64("ledger.growth-hours", 3, "BenchmarkGrowth: hours of ticks to simulate (at least 2.5; 24 measures a day)")

// growthLoad is a host's load on the ledger: cells wallets, each charged a
// payment and a Landauer tax on every tick, every tapEvery-th one also paid
// by its tap, hz ticks a second, Maintain once a second of ticks.
type growthLoad struct {
	cells, hz, tapEvery int
	// whole posts every charge under a key of its own, not the per-tick
	// key, so that each is stored whole, as every posting was before
	// per-tick rows and rollups.
	whole bool
}

// growth is what a simulation measured.
type growth struct {
	ticks, postings uint64
	// bytes[i] is the size of the database and its write-ahead log after
	// sample i, db[i] that of the database alone; a sample is taken every
	// sampleTicks ticks. db0 is the database's size before the first tick.
	bytes, db   []int64
	db0         int64
	sampleTicks uint64
	maxWAL      int64
}

// simulate applies ticks ticks of load to a new ledger in dir, opened
// with opts (synchronous=OFF: the bytes written are the same as with FULL,
// only faster), and samples its size every sampleTicks ticks. The clock is
// the tick counter: a simulated day takes as long as the machine needs.
func simulate(tb testing.TB, dir string, load growthLoad, ticks, sampleTicks uint64, opts Options) growth {
	tb.Helper()
	ctx := tb.Context()
	opts.synchronous = "OFF"
	opts.Tick = time.Second / time.Duration(load.hz)
	path := filepath.Join(dir, "ledger.db")
	l, err := Open(ctx, path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	names := make([]string, load.cells)
	for i := range names {
		names[i] = fmt.Sprintf("cell-%02d", i)
		spec := WalletSpec{Name: names[i], Endowment: 1 << 50}
		if load.tapEvery > 0 && i%load.tapEvery == 0 {
			spec.TapRate, spec.TapCap = 10_000, 1<<52
		}
		if _, err := l.OpenWallet(ctx, "open/cell:"+names[i], 0, spec); err != nil {
			tb.Fatal(err)
		}
	}
	g := growth{sampleTicks: sampleTicks, db0: fileSize(path)}
	rng := rand.New(rand.NewPCG(1, 2))
	txs := make([]Tx, 0, 3*load.cells)
	key := func(tick uint64, cell string, k Kind) string {
		if load.whole {
			return fmt.Sprintf("charge/%d/%s/%s", tick, cell, k)
		}
		return Key(tick, cell, string(k))
	}
	for tick := uint64(1); tick <= ticks; tick++ {
		txs = txs[:0]
		for i, c := range names {
			if load.tapEvery > 0 && i%load.tapEvery == 0 {
				a := units.Credits(1000 + rng.IntN(100_000))
				txs = append(txs, Tx{Key: key(tick, c, KindTap), Kind: KindTap, Tick: tick, Wallet: c, Entries: []Entry{{Mint, -a}, {c, a}}})
			}
			pay := units.Credits(100_000 + rng.IntN(4_000_000))
			tax := units.Credits(1 + rng.IntN(100_000))
			txs = append(txs,
				Tx{Key: key(tick, c, KindPayment), Kind: KindPayment, Tick: tick, Wallet: c, Entries: []Entry{{c, -pay}, {Burn, pay}}},
				Tx{Key: key(tick, c, KindTax), Kind: KindTax, Tick: tick, Wallet: c, Entries: []Entry{{c, -tax}, {Burn, tax}}})
		}
		if _, err := l.Apply(ctx, txs...); err != nil {
			tb.Fatalf("tick %d: %v", tick, err)
		}
		g.postings += uint64(len(txs))
		if tick%uint64(load.hz) == 0 {
			if _, err := l.Maintain(ctx, tick); err != nil {
				tb.Fatalf("tick %d: %v", tick, err)
			}
		}
		if w := fileSize(path + "-wal"); w > g.maxWAL {
			g.maxWAL = w
		}
		if tick%sampleTicks == 0 {
			db := fileSize(path)
			g.bytes, g.db = append(g.bytes, db+fileSize(path+"-wal")), append(g.db, db)
		}
		g.ticks = tick
	}
	return g
}

// windowBytes returns the bytes a ledger's database holds per cell and
// tick of its window of per-tick postings: what the database grew by until
// the window was full, before any rollup, over the cell-ticks in it.
func (g growth) windowBytes(cells int, windowTicks uint64) float64 {
	return float64(g.db[windowTicks/g.sampleTicks-1]-g.db0) / float64(uint64(cells)*windowTicks)
}

// TestGrowth runs a small host (8 cells at 10 Hz, a one-minute window,
// ten-second buckets) for four simulated minutes, and the same load with
// every posting stored whole for one: per-tick rows must be several times
// smaller than whole transactions, and once the window is full the ledger
// must grow by its rollups alone, a few bytes a cell and tick.
func TestGrowth(t *testing.T) {
	load := growthLoad{cells: 8, hz: 10, tapEvery: 4}
	opts := Options{Keep: time.Minute, Bucket: 10 * time.Second}
	const minute = 600
	g := simulate(t, t.TempDir(), load, 4*minute, 100, opts)
	whole := simulate(t, t.TempDir(), growthLoad{cells: 8, hz: 10, tapEvery: 4, whole: true}, minute, 100, Options{Keep: -1})
	perTick, perWhole := g.windowBytes(load.cells, minute), whole.windowBytes(load.cells, minute)
	// From the second minute after the window filled to the end: rollups,
	// and pages freed by them reused.
	from, to := g.db[2*minute/100-1], g.db[len(g.db)-1]
	grow := float64(to-from) / float64(load.cells*2*minute)
	t.Logf("per cell-tick: %.1f bytes in per-tick rows, %.1f stored whole; growth once the window is full: %.2f bytes per cell-tick; largest log %d bytes",
		perTick, perWhole, grow, g.maxWAL)
	if perTick*5 > perWhole {
		t.Errorf("per-tick rows take %.1f bytes a cell-tick, whole transactions %.1f: want at least 5 times less", perTick, perWhole)
	}
	if grow > 2 {
		t.Errorf("once the window is full the ledger grows %.2f bytes a cell-tick, want at most 2 (rollups only)", grow)
	}
}

// BenchmarkGrowth is the ledger-growth benchmark of issue 11: a 64-CPU
// host at 10 Hz, 64 cells each charged a payment and a tax on every tick
// and every fourth one paid by its tap, Maintain once a second of ticks,
// the default window (an hour) and buckets (a minute). Ticks are numbers,
// not wall time: it posts -ledger.growth-hours of ticks as fast as it can,
// and reports the bytes of database and write-ahead log after a day,
// measured when the run covers a day and extrapolated otherwise from the
// database's growth in the last hour; and, for comparison, the bytes a day of
// the same load would take stored whole (every posting a transaction with
// its entries, as before per-tick rows and rollups), from ten simulated
// minutes of it.
//
//	go test ./internal/ledger -run '^$' -bench Growth -benchtime 1x -ledger.growth-hours 3
func BenchmarkGrowth(b *testing.B) {
	load := growthLoad{cells: 64, hz: 10, tapEvery: 4}
	const minute, hour, day = 600, 36_000, 864_000
	ticks := uint64(*growthHours*hour) / minute * minute
	if ticks < 5*hour/2 {
		b.Fatalf("-ledger.growth-hours %v: want at least 2.5, for an hour of growth after the ledger settles", *growthHours)
	}
	for b.Loop() {
		g := simulate(b, b.TempDir(), load, ticks, minute, Options{})
		whole := simulate(b, b.TempDir(), growthLoad{cells: 64, hz: 10, tapEvery: 4, whole: true}, 10*minute, minute, Options{Keep: -1})
		// The database's growth over the last hour: by then the window has
		// been full for a while and the pages the first rollups freed are
		// reused (the database grows some 3 MB in the hour after the
		// window fills, a transient). The log's size is bounded (by
		// checkpoints and journal_size_limit), not growth: an
		// extrapolated day counts its largest.
		last := g.db[len(g.db)-1]
		hourAgo := g.db[len(g.db)-1-hour/minute]
		slope := float64(last-hourAgo) / hour // bytes a tick
		perDay := float64(g.bytes[len(g.bytes)-1])
		how := "measured"
		if ticks < day {
			perDay = float64(last) + slope*float64(day-ticks) + float64(g.maxWAL)
			how = "extrapolated from the last hour"
		}
		wholeTick := float64(whole.db[len(whole.db)-1]-whole.db0) / float64(whole.ticks)
		b.ReportMetric(perDay/1e6, "MB/day")
		b.ReportMetric(slope*day/1e6, "MB/day-growth")
		b.ReportMetric(g.windowBytes(load.cells, hour), "B/cell-tick")
		b.ReportMetric(wholeTick*day/1e6, "MB/day-whole")
		b.ReportMetric(wholeTick/float64(load.cells), "B/cell-tick-whole")
		b.ReportMetric(float64(whole.db[len(whole.db)-1]-whole.db0)/float64(whole.postings), "B/posting-whole")
		b.Logf("%d ticks (%.1f h) of %d cells, %d postings: database %.2f MB at the end, growing %.2f MB in its last hour; largest log %.2f MB; a day: %.1f MB (%s)",
			g.ticks, float64(g.ticks)/hour, load.cells, g.postings, float64(last)/1e6, float64(last-hourAgo)/1e6, float64(g.maxWAL)/1e6, perDay/1e6, how)
		for _, h := range []uint64{1, 2, 3, 6, 12, 18, 24} {
			if h*hour > g.ticks {
				break
			}
			i := h*hour/minute - 1
			b.Logf("after %2d h: database %.2f MB, log %.2f MB", h, float64(g.db[i])/1e6, float64(g.bytes[i]-g.db[i])/1e6)
		}
	}
}
