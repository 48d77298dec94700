package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
