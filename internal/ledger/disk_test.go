package ledger

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
	"golang.org/x/sys/unix"
)

// tmpfs mounts a tmpfs of size bytes on a new temporary directory,
// unmounted at cleanup. It skips the test where mounting is not allowed.
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("mount tmpfs on %s: %v: needs root (CAP_SYS_ADMIN) to simulate a full or read-only disk", dir, err)
		}
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestFullDisk fills the file system under a ledger and expects ErrFull, no
// trace of the failed transaction, and the same transaction to go through
// once space returns.
func TestFullDisk(t *testing.T) {
	ctx := t.Context()
	dir := tmpfs(t, 512<<10)
	// Ballast we can free later to give the space back.
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 256<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Open(ctx, filepath.Join(dir, "ledger.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.OpenWallet(ctx, "o", 0, WalletSpec{Name: "a", Endowment: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	// Fill the rest with transactions. The memos are long so each commit
	// takes pages and the disk fills in a few hundred.
	var failed Tx
	var charged units.Credits
	for i := 1; ; i++ {
		if i > 100_000 {
			t.Fatal("the disk never filled")
		}
		tx := Tx{Key: Key(uint64(i), "a", "energy"), Kind: KindEnergy, Tick: uint64(i), Wallet: "a",
			Memo: fmt.Sprintf("%01000d", i), Entries: []Entry{{"a", -units.Credits(i)}, {Burn, units.Credits(i)}}}
		_, err := l.Apply(ctx, tx)
		if err == nil {
			charged += units.Credits(i)
			continue
		}
		if !errors.Is(err, ErrFull) {
			t.Fatalf("charge %d: %v, want ErrFull", i, err)
		}
		t.Logf("disk full after %d charges: %v", i-1, err)
		failed = tx
		break
	}
	// Nothing of the failed transaction was written, and the ledger is
	// still consistent and readable.
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatalf("verify on a full disk: %v", err)
	}
	if !rep.OK || rep.Burned != charged || rep.Balances != 1<<40-charged {
		t.Fatalf("after ErrFull: %+v, want burned %d", rep, charged)
	}
	ps, err := l.Recent(ctx, 1)
	if err != nil || len(ps) != 1 || ps[0].Key == failed.Key {
		t.Fatalf("last transaction %+v, %v: the failed one must not be there", ps, err)
	}
	// It keeps failing while the disk is full.
	if _, err := l.Apply(ctx, failed); !errors.Is(err, ErrFull) {
		t.Fatalf("retry on a full disk: %v, want ErrFull", err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	// Space is back: the very same transaction goes through, once.
	for range 2 {
		if _, err := l.Apply(ctx, failed); err != nil {
			t.Fatalf("after freeing space: %v", err)
		}
	}
	charged += failed.Entries[1].Amount
	if _, err := l.Charge(ctx, "more", 1<<20, "a", 7, KindTax); err != nil {
		t.Fatal(err)
	}
	rep = mustVerify(t, l)
	if rep.Burned != charged+7 {
		t.Errorf("burned %d, want %d", rep.Burned, charged+7)
	}
}

// TestReadOnlyFileSystem opens a ledger on a file system remounted
// read-only: writers get ErrReadOnly, readers still read.
func TestReadOnlyFileSystem(t *testing.T) {
	ctx := t.Context()
	dir := tmpfs(t, 4<<20)
	path := filepath.Join(dir, "ledger.db")
	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenWallet(ctx, "o", 1, WalletSpec{Name: "a", Endowment: 77}); err != nil {
		t.Fatal(err)
	}
	// A copy taken while the ledger is open is what a crash leaves: the
	// last transaction only in the write-ahead log.
	if _, err := l.Fund(ctx, "f0", 1, "a", 3); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(dir, "crashed.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crashed+suffix, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	if _, err := Open(ctx, path, Options{}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("open for writing on a read-only file system: %v, want ErrReadOnly", err)
	}
	r, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open on a read-only file system: %v", err)
	}
	defer r.Close()
	if rep := mustVerify(t, r); rep.Minted != 80 {
		t.Errorf("minted %d, want 80", rep.Minted)
	}
	// Reading the crash image would need its write-ahead log replayed.
	if _, err := Open(ctx, crashed, Options{ReadOnly: true}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only open with a pending write-ahead log: %v, want ErrReadOnly", err)
	}
	if _, err := r.Fund(ctx, "f", 2, "a", 1); !errors.Is(err, ErrReadOnly) {
		t.Errorf("write: %v, want ErrReadOnly", err)
	}
}

// fillDisk fills the file system of dir to its last block with a file,
// whose path it returns.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	ballast := filepath.Join(dir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return ballast
		}
	}
}

// smallDisk opens a ledger with opts on a new 1 MiB tmpfs, closed at
// cleanup, with two wallets, and returns it, the tmpfs and the wallets.
func smallDisk(t *testing.T, opts Options) (*Ledger, string, []string) {
	t.Helper()
	dir := tmpfs(t, 1<<20)
	l, err := Open(t.Context(), filepath.Join(dir, "ledger.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	wallets := []string{"a", "b"}
	for _, w := range wallets {
		if _, err := l.OpenWallet(t.Context(), "open/cell:"+w, 0, WalletSpec{Name: w, Endowment: 1 << 40}); err != nil {
			t.Fatal(err)
		}
	}
	return l, dir, wallets
}

// tickLoad posts tick's per-tick postings for wallets: a payment and a
// tax each.
func tickLoad(tick uint64, wallets []string) []Tx {
	var txs []Tx
	for i, w := range wallets {
		pay, tax := units.Credits(1000+i), units.Credits(10+int(tick%7))
		txs = append(txs,
			Tx{Key: Key(tick, w, "payment"), Kind: KindPayment, Tick: tick, Wallet: w, Entries: []Entry{{w, -pay}, {Burn, pay}}},
			Tx{Key: Key(tick, w, "tax"), Kind: KindTax, Tick: tick, Wallet: w, Entries: []Entry{{w, -tax}, {Burn, tax}}})
	}
	return txs
}

// TestCheckpointModes: a checkpoint is passive while the disk has room and
// truncates the write-ahead log when it is short.
func TestCheckpointModes(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name     string
		dir      func(t *testing.T) string
		lowSpace uint64
		mode     CheckpointMode
	}{
		{"room to spare", func(t *testing.T) string { return t.TempDir() }, 1, CheckpointPassive},
		{"short by the setting", func(t *testing.T) string { return t.TempDir() }, math.MaxUint64, CheckpointTruncate},
		{"a 1 MiB tmpfs, default setting", func(t *testing.T) string { return tmpfs(t, 1<<20) }, 0, CheckpointTruncate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(tc.dir(t), "ledger.db")
			l, err := Open(ctx, path, Options{LowSpace: tc.lowSpace})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if _, err := l.OpenWallet(ctx, "o", 0, WalletSpec{Name: "a", Endowment: 1 << 40}); err != nil {
				t.Fatal(err)
			}
			for tick := uint64(1); tick <= 20; tick++ {
				if _, err := l.Apply(ctx, tickLoad(tick, []string{"a"})...); err != nil {
					t.Fatal(err)
				}
			}
			c, err := l.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.Mode != tc.mode || c.Busy || c.WALBefore == 0 || c.Free == 0 {
				t.Fatalf("checkpoint %+v, want mode %v, not busy", c, tc.mode)
			}
			switch tc.mode {
			case CheckpointTruncate:
				if c.WALAfter != 0 || fileSize(path+"-wal") != 0 {
					t.Errorf("truncating checkpoint left %d bytes of log", c.WALAfter)
				}
			case CheckpointPassive:
				if c.WALAfter != c.WALBefore || c.Copied != c.Frames || c.Frames == 0 {
					t.Errorf("passive checkpoint %+v: want every frame copied and the log's file kept", c)
				}
			}
			if rep := mustVerify(t, l); rep.Postings != 40 {
				t.Errorf("after the checkpoint: %+v", rep)
			}
		})
	}
	r, err := Open(ctx, filepath.Join(t.TempDir(), "ledger.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	ro, err := Open(ctx, r.Path(), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Checkpoint(ctx); !errors.Is(err, ErrReadOnly) {
		t.Errorf("checkpoint of a read-only ledger: %v", err)
	}
	if _, err := ro.Rollup(ctx, 1<<30); !errors.Is(err, ErrReadOnly) {
		t.Errorf("rollup of a read-only ledger: %v", err)
	}
}

// TestFullDiskRecovers is finding 8 of issue 11 on a real 1 MiB tmpfs: an
// engine charging two cells at 10 Hz, calling Maintain once a second of
// ticks as the economy does, fills the disk, gets ErrFull, cannot close a
// wallet and says so; once space is freed it charges for ten simulated
// minutes without failing again (before checkpoints on a schedule, the
// write-ahead log, never checkpointed below 1000 pages, filled the freed
// space within about two seconds of ticks), closes the wallet, and the
// ledger verifies.
func TestFullDiskRecovers(t *testing.T) {
	ctx := t.Context()
	l, dir, wallets := smallDisk(t, Options{Keep: time.Minute, Bucket: 10 * time.Second})
	path := l.Path()
	tick := uint64(0)
	var burned units.Credits
	// step posts one tick and, once a second of ticks, maintains.
	step := func() error {
		txs := tickLoad(tick+1, wallets)
		if _, err := l.Apply(ctx, txs...); err != nil {
			return err
		}
		tick++
		for _, tx := range txs {
			burned += tx.Entries[1].Amount
		}
		if tick%10 == 0 {
			if _, err := l.Maintain(ctx, tick); err != nil && !errors.Is(err, ErrFull) {
				t.Fatalf("maintain at tick %d: %v", tick, err)
			}
		}
		return nil
	}
	for range 200 {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	ballast := fillDisk(t, dir)
	fullAt := tick
	for {
		err := step()
		if err == nil {
			if tick > fullAt+1000 {
				t.Fatal("the disk never filled")
			}
			continue
		}
		if !errors.Is(err, ErrFull) {
			t.Fatalf("tick %d on a full disk: %v, want ErrFull", tick+1, err)
		}
		break
	}
	t.Logf("disk full at tick %d, %d ticks after the ballast", tick+1, tick-fullAt)
	// Stopping: the close is tried and fails, saying why.
	if _, err := l.CloseWallet(ctx, "stop/cell:a", 0, "a"); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), `wallet "a" stays open`) {
		t.Fatalf("close on a full disk: %v, want ErrFull saying the wallet stays open", err)
	}
	if rep := mustVerify(t, l); rep.OpenWallets != 2 || rep.Burned != burned {
		t.Fatalf("on a full disk: %+v, want 2 open wallets, burned %d", rep, burned)
	}
	// Space comes back: ten simulated minutes of charging.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	back := tick
	maxWAL := int64(0)
	for tick < back+6000 {
		if err := step(); err != nil {
			t.Fatalf("tick %d, %d after space came back: %v", tick+1, tick-back, err)
		}
		maxWAL = max(maxWAL, fileSize(path+"-wal"))
	}
	rep := mustVerify(t, l)
	if rep.Burned != burned || rep.RolledUp == 0 {
		t.Errorf("after recovery: %+v, want burned %d and rollups", rep, burned)
	}
	free, err := freeSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after %d ticks: database %d bytes, largest log %d bytes, %d bytes free", tick-back, fileSize(path), maxWAL, free)
	if maxWAL > 256<<10 {
		t.Errorf("the write-ahead log grew to %d bytes between checkpoints", maxWAL)
	}
	// The next stop settles the wallets.
	for _, w := range wallets {
		if _, err := l.CloseWallet(ctx, "stop/cell:"+w, 0, w); err != nil {
			t.Fatal(err)
		}
	}
	if rep := mustVerify(t, l); rep.OpenWallets != 0 || rep.Balances != 0 {
		t.Errorf("after settling: %+v", rep)
	}
}

// TestFullDiskTruncatesLog: a commit that finds the disk full has the
// write-ahead log truncated and is tried again, so that the space the log
// holds (mostly older copies of pages) is used before anything fails. Here
// the disk has 8 KiB left, less than a commit appends, and nothing
// checkpoints but Apply itself.
func TestFullDiskTruncatesLog(t *testing.T) {
	ctx := t.Context()
	l, dir, wallets := smallDisk(t, Options{})
	path := l.Path()
	tick := uint64(1)
	for ; tick <= 100; tick++ {
		if _, err := l.Apply(ctx, tickLoad(tick, wallets)...); err != nil {
			t.Fatal(err)
		}
		if tick == 90 {
			if _, err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	ballast := fillDisk(t, dir)
	fi, err := os.Stat(ballast)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(ballast, fi.Size()-8192); err != nil {
		t.Fatal(err)
	}
	truncated, posted := 0, 0
	for ; tick <= 1000; tick++ {
		before := fileSize(path + "-wal")
		if _, err = l.Apply(ctx, tickLoad(tick, wallets)...); err != nil {
			if !errors.Is(err, ErrFull) {
				t.Fatal(err)
			}
			break
		}
		posted++
		if fileSize(path+"-wal") < before {
			truncated++
		}
	}
	t.Logf("%d ticks posted on a disk with 8 KiB free, %d of them after truncating the log, then: %v", posted, truncated, err)
	if truncated == 0 || posted <= truncated {
		t.Errorf("%d ticks posted, %d after truncating the log: want commits that only the truncation made room for", posted, truncated)
	}
	mustVerify(t, l)
}
