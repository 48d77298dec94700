package workload

import (
	"github.com/maxwellhq/maxwell/internal/clock"

	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults of the Miner's settings.
const (
	DefaultChunkSize = 4 << 20 // bytes mapped and freed per churn step
	DefaultShareBits = 16      // leading zero bits that make a hash a share
)

// Counter names reported by the Miner.
const (
	CounterHashes       = "hashes"        // SHA-256 hashes computed
	CounterShares       = "shares"        // hashes with at least ShareBits leading zero bits
	CounterBytesChurned = "bytes_churned" // bytes of touched memory freed (by munmap or madvise)
	CounterMmapCalls    = "mmap_calls"
	CounterMunmapCalls  = "munmap_calls"
	CounterMadviseCalls = "madvise_calls"
	CounterChurnErrors  = "churn_errors" // failed mmap, munmap or madvise calls
)

// Miner burns CPU with a SHA-256 "mining" loop on every thread (hash an
// 80-byte header with an incrementing nonce, count hashes and shares) and,
// on Run's own goroutine, churns memory: map an anonymous chunk, write to
// every page, free it, alternately with madvise(MADV_DONTNEED) (keeping the
// mapping for the next chunk) and munmap. Churn is paced by Clock to
// ChurnRate bytes per second, with bursts of at most one second's worth (or
// one chunk, if larger).
type Miner struct {
	// Threads is the number of hashing goroutines. 0 means AvailableCPUs().
	Threads int
	// Interval is the report interval. 0 means DefaultInterval.
	Interval time.Duration
	// ChurnRate is the memory churn rate in bytes per second; 0 disables
	// churn.
	ChurnRate uint64
	// ChunkSize is the size of each churned mapping in bytes, rounded up to
	// whole pages. 0 means DefaultChunkSize.
	ChunkSize int
	// ShareBits is how many leading zero bits make a share, 1 to 256.
	// 0 means DefaultShareBits.
	ShareBits int
	// Clock supplies the report and pacing tickers and the time that
	// pacing measures. nil means clock.System().
	Clock clock.Clock
}

// hashCounter is one thread's tally, padded to its own cache line.
type hashCounter struct {
	hashes, shares atomic.Uint64
	_              [48]byte
}

// Run mines and churns until ctx ends, calling report with a new map of
// counters every Interval and once more before returning; report runs on
// Run's goroutine. It returns ctx's error, or an error for invalid
// settings.
func (m Miner) Run(ctx context.Context, report func(counters map[string]uint64)) error {
	threads := orThreads(m.Threads)
	if threads < 1 {
		return fmt.Errorf("workload: miner: %d threads", m.Threads)
	}
	shareBits := m.ShareBits
	if shareBits == 0 {
		shareBits = DefaultShareBits
	}
	if shareBits < 1 || shareBits > 256 {
		return fmt.Errorf("workload: miner: share bits %d out of range [1, 256]", m.ShareBits)
	}
	chunk := m.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	page := unix.Getpagesize()
	if chunk < 0 || chunk > 1<<40 {
		return fmt.Errorf("workload: miner: chunk size %d out of range", m.ChunkSize)
	}
	chunk = (chunk + page - 1) / page * page
	clock := orClock(m.Clock)

	tally := make([]hashCounter, threads)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine(uint32(i), shareBits, &tally[i], &stop)
		}()
	}
	defer wg.Wait()
	defer stop.Store(true)

	ch := &churner{size: chunk, page: page}
	defer ch.release()
	counters := func() map[string]uint64 {
		var hashes, shares uint64
		for i := range tally {
			hashes += tally[i].hashes.Load()
			shares += tally[i].shares.Load()
		}
		return map[string]uint64{
			CounterHashes:       hashes,
			CounterShares:       shares,
			CounterBytesChurned: ch.freed,
			CounterMmapCalls:    ch.mmaps,
			CounterMunmapCalls:  ch.munmaps,
			CounterMadviseCalls: ch.madvises,
			CounterChurnErrors:  ch.errors,
		}
	}

	tick := clock.NewTicker(orInterval(m.Interval))
	defer tick.Stop()
	var pace <-chan time.Time
	var bucket *tokenBucket
	if m.ChurnRate > 0 {
		period := time.Duration(float64(chunk) / float64(m.ChurnRate) * float64(time.Second))
		pt := clock.NewTicker(min(max(period, time.Millisecond), time.Second))
		defer pt.Stop()
		pace = pt.Chan()
		bucket = newTokenBucket(float64(m.ChurnRate), float64(max(uint64(chunk), m.ChurnRate)), clock.Now())
	}
	for {
		select {
		case <-ctx.Done():
			report(counters())
			return ctx.Err()
		case <-tick.Chan():
			report(counters())
		case <-pace:
			bucket.refill(clock.Now())
			for ctx.Err() == nil && bucket.take(float64(chunk)) {
				ch.churn()
			}
		}
	}
}

// mine hashes until stop is set.
func mine(id uint32, shareBits int, tally *hashCounter, stop *atomic.Bool) {
	var header [80]byte
	copy(header[:], "maxwell miner")
	binary.LittleEndian.PutUint32(header[64:], id)
	var nonce uint64
	for !stop.Load() {
		var shares uint64
		const batch = 128
		for range batch {
			binary.LittleEndian.PutUint64(header[72:], nonce)
			nonce++
			sum := sha256.Sum256(header[:])
			if leadingZeroBits(&sum) >= shareBits {
				shares++
			}
		}
		tally.hashes.Add(batch)
		if shares > 0 {
			tally.shares.Add(shares)
		}
	}
}

func leadingZeroBits(sum *[sha256.Size]byte) int {
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// tokenBucket paces churn: it holds up to burst bytes of allowance,
// refilled at rate bytes per second of Clock time.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newTokenBucket(rate, burst float64, now time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: burst, last: now}
}

func (b *tokenBucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+b.rate*d.Seconds())
		b.last = now
	}
}

func (b *tokenBucket) take(n float64) bool {
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// churner maps, touches and frees anonymous memory. It is used from one
// goroutine.
type churner struct {
	size, page int
	mem        []byte // mapping kept after madvise, for reuse
	steps      uint64

	freed, mmaps, munmaps, madvises, errors uint64
}

// churn maps (or reuses) a chunk, writes to every page, and frees the
// pages: with madvise(MADV_DONTNEED) on even steps, keeping the mapping,
// and with munmap on odd steps.
func (c *churner) churn() {
	if c.mem == nil {
		mem, err := unix.Mmap(-1, 0, c.size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			c.errors++
			return
		}
		c.mem = mem
		c.mmaps++
	}
	v := byte(c.steps) | 1 // never zero, so every page is really written
	for off := 0; off < len(c.mem); off += c.page {
		c.mem[off] = v
	}
	if c.steps%2 == 0 {
		if err := unix.Madvise(c.mem, unix.MADV_DONTNEED); err != nil {
			c.errors++
		} else {
			c.madvises++
			c.freed += uint64(c.size)
		}
	} else {
		err := unix.Munmap(c.mem)
		c.mem = nil
		if err != nil {
			c.errors++
		} else {
			c.munmaps++
			c.freed += uint64(c.size)
		}
	}
	c.steps++
}

// release unmaps a kept mapping. It is cleanup, not churn: not counted.
func (c *churner) release() {
	if c.mem != nil {
		unix.Munmap(c.mem)
		c.mem = nil
	}
}
