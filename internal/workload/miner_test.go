package workload

import (
	"github.com/maxwellhq/maxwell/internal/clock/clocktest"

	"context"
	"errors"
	"os"
	"testing"
	"time"
)

type minerRun struct {
	clock   *clocktest.Fake
	report  *clocktest.Ticker
	pace    *clocktest.Ticker // nil without churn
	reports chan map[string]uint64
	done    chan struct{}
	err     error
	cancel  context.CancelFunc
}

func startMiner(t *testing.T, m Miner) *minerRun {
	t.Helper()
	r := &minerRun{clock: clocktest.New(), reports: make(chan map[string]uint64), done: make(chan struct{})}
	quit := make(chan struct{}) // closed when the test no longer reads reports
	m.Clock = r.clock
	// Reports come only when the test ticks by hand: advancing the clock
	// must never fire the report ticker on its own.
	m.Interval = 1000 * time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.err = m.Run(ctx, func(c map[string]uint64) {
			select {
			case r.reports <- c:
			case <-quit:
			}
		})
	}()
	r.report = <-r.clock.Tickers()
	if m.ChurnRate > 0 {
		r.pace = <-r.clock.Tickers()
	}
	t.Cleanup(func() {
		close(quit)
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancel")
		}
	})
	return r
}

// tick ticks tk by hand and returns once Run has received it.
func (r *minerRun) tick(t *testing.T, tk *clocktest.Ticker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tk.Tick(ctx); err != nil {
		t.Fatalf("tick: %v", err)
	}
}

// snapshot ticks the report ticker and returns the report. Run handles
// ticks in order, so it reflects all pacing ticks before it.
func (r *minerRun) snapshot(t *testing.T) map[string]uint64 {
	t.Helper()
	r.tick(t, r.report)
	select {
	case c := <-r.reports:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no report")
	}
	return nil
}

func TestMinerChurnPaced(t *testing.T) {
	const mib = 1 << 20
	r := startMiner(t, Miner{Threads: 1, ChurnRate: 8 * mib, ChunkSize: 4 * mib})
	if r.pace.Period() != 500*time.Millisecond {
		t.Errorf("pacing period %v, want 500ms (one 4 MiB chunk at 8 MiB/s)", r.pace.Period())
	}
	steps := []struct {
		advance                         time.Duration
		bytes, mmaps, madvises, munmaps uint64
	}{
		{0, 0, 0, 0, 0},
		{time.Second, 8 * mib, 1, 1, 1},            // 8 MiB allowed: madvise, then munmap
		{250 * time.Millisecond, 8 * mib, 1, 1, 1}, // 2 MiB allowed: less than a chunk
		{250 * time.Millisecond, 12 * mib, 2, 2, 1},
		{10 * time.Second, 20 * mib, 3, 3, 2}, // a long stall allows one second's worth, not ten
		{500 * time.Millisecond, 24 * mib, 3, 3, 3},
	}
	for i, s := range steps {
		r.clock.Advance(s.advance)
		r.tick(t, r.pace)
		c := r.snapshot(t)
		if c[CounterBytesChurned] != s.bytes || c[CounterMmapCalls] != s.mmaps ||
			c[CounterMadviseCalls] != s.madvises || c[CounterMunmapCalls] != s.munmaps || c[CounterChurnErrors] != 0 {
			t.Fatalf("step %d: %v, want bytes %d mmap %d madvise %d munmap %d", i, c, s.bytes, s.mmaps, s.madvises, s.munmaps)
		}
	}
}

func TestMinerChurnSlowRate(t *testing.T) {
	// 1 MiB/s with 4 MiB chunks: a chunk every 4 s, never a partial one.
	const mib = 1 << 20
	r := startMiner(t, Miner{Threads: 1, ChurnRate: mib, ChunkSize: 4 * mib})
	for i := 1; i <= 8; i++ {
		r.clock.Advance(time.Second)
		r.tick(t, r.pace)
		if got, want := r.snapshot(t)[CounterBytesChurned], uint64(i/4*4*mib); got != want {
			t.Fatalf("after %ds: %d bytes churned, want %d", i, got, want)
		}
	}
}

func TestMinerHashes(t *testing.T) {
	r := startMiner(t, Miner{Threads: 2, ShareBits: 1})
	deadline := time.Now().Add(5 * time.Second)
	var prev map[string]uint64
	increases := 0
	for increases < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("hashes did not increase 3 times within 5s: %v", prev)
		}
		c := r.snapshot(t)
		if c[CounterBytesChurned] != 0 || c[CounterMmapCalls] != 0 {
			t.Fatalf("churn without a churn rate: %v", c)
		}
		if c[CounterShares] > c[CounterHashes] {
			t.Fatalf("more shares than hashes: %v", c)
		}
		if prev != nil {
			if c[CounterHashes] < prev[CounterHashes] || c[CounterShares] < prev[CounterShares] {
				t.Fatalf("counters went back: %v after %v", c, prev)
			}
			if c[CounterHashes] > prev[CounterHashes] {
				increases++
			}
		}
		prev = c
		time.Sleep(time.Millisecond)
	}
	// With one leading zero bit, about half the hashes are shares.
	if h, s := prev[CounterHashes], prev[CounterShares]; h >= 4096 && (s < h/4 || s > 3*h/4) {
		t.Errorf("%d shares of %d hashes at 1 bit, want about half", s, h)
	}
}

func TestMinerCancel(t *testing.T) {
	r := startMiner(t, Miner{Threads: 2, ChurnRate: 1 << 30})
	r.cancel()
	select {
	case c := <-r.reports:
		if _, ok := c[CounterHashes]; !ok {
			t.Errorf("final report %v lacks hashes", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no final report")
	}
	<-r.done
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Run = %v, want Canceled", r.err)
	}
}

func TestMinerInvalid(t *testing.T) {
	for _, m := range []Miner{{Threads: -2}, {ShareBits: 257}, {ChunkSize: -1}} {
		if err := m.Run(context.Background(), func(map[string]uint64) { t.Error("report called") }); err == nil {
			t.Errorf("%+v: Run = nil, want an error", m)
		}
	}
}

// TestChurnerFrees checks that the churn really frees memory: pages given
// back with MADV_DONTNEED read as zero again, though they were written.
func TestChurnerFrees(t *testing.T) {
	page := os.Getpagesize()
	c := &churner{size: 4 * page, page: page}
	defer c.release()
	c.churn() // mmap, write, madvise: mapping kept
	if c.mem == nil || c.madvises != 1 || c.munmaps != 0 || c.freed != uint64(4*page) {
		t.Fatalf("after step 1: %+v", c)
	}
	for off := 0; off < len(c.mem); off += page {
		if c.mem[off] != 0 {
			t.Fatalf("byte %d = %d after MADV_DONTNEED, want 0", off, c.mem[off])
		}
	}
	c.churn() // reuse, write, munmap
	if c.mem != nil || c.mmaps != 1 || c.munmaps != 1 || c.freed != uint64(8*page) {
		t.Fatalf("after step 2: %+v", c)
	}
}

func TestLeadingZeroBits(t *testing.T) {
	var s [32]byte
	if got := leadingZeroBits(&s); got != 256 {
		t.Errorf("zero hash: %d", got)
	}
	s[2] = 0x10
	if got := leadingZeroBits(&s); got != 19 {
		t.Errorf("0000 10…: %d, want 19", got)
	}
}
