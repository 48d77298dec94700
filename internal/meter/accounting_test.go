package meter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTree copies the fixture dir into a temporary directory the test can
// change.
func copyTree(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAccountingV1(t *testing.T) {
	root := copyTree(t, "testdata/v1")
	cell := filepath.Join(root, "memory", "cell")
	a := OpenAccounting(AccountingOptions{PageSize: 4096, Reason: "test"})
	defer a.Close()
	if err := a.WatchPaths(7, Paths{V1Memory: cell}); err != nil {
		t.Fatal(err)
	}
	// total_pgpgout goes from 120 to 170: 50 pages freed.
	write(t, filepath.Join(cell, "memory.stat"), "pgpgout 130\ntotal_pgpgout 170\n")
	got, err := a.Read()
	if err != nil {
		t.Fatal(err)
	}
	if got[7].Unattributed != 50*4096 || got[7].FreedBytes() != 50*4096 || got[7].TotalCalls() != 0 {
		t.Errorf("Read = %+v, want 50 pages unattributed", got[7])
	}
	// The cgroup is gone: the last figures stay.
	if err := os.RemoveAll(cell); err != nil {
		t.Fatal(err)
	}
	if got, err = a.Read(); err != nil || got[7].Unattributed != 50*4096 {
		t.Errorf("Read after removal = %+v, %v", got[7], err)
	}
	src := a.Source()
	if !src.Estimated || src.Kind != SourceAccounting || !strings.Contains(src.Detail, ApproximateNote) || !strings.Contains(src.Detail, "test") {
		t.Errorf("Source = %+v", src)
	}
}

func TestAccountingV2(t *testing.T) {
	root := copyTree(t, "testdata/v2")
	cell := filepath.Join(root, "cell")
	a := OpenAccounting(AccountingOptions{PageSize: 4096, CgroupRoot: root})
	defer a.Close()
	id := inode(cell)
	// The default resolver finds the directory by its inode.
	if err := a.Watch(id); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		stat, current string
		want          uint64
	}{
		// 100 pages faulted in, usage grew by 40 pages: 60 freed.
		{"pgfault 1100\n", "172032\n", 60 * 4096},
		// 10 more faults, usage fell to 0, 2 pages below the baseline:
		// 110 + 2 pages freed in all.
		{"pgfault 1110\n", "0\n", 112 * 4096},
		// usage grows without faults: the estimate never falls.
		{"pgfault 1110\n", "10000000\n", 112 * 4096},
	}
	for i, tt := range tests {
		write(t, filepath.Join(cell, "memory.stat"), tt.stat)
		write(t, filepath.Join(cell, "memory.current"), tt.current)
		got, err := a.Read()
		if err != nil {
			t.Fatal(err)
		}
		if got[id].Unattributed != tt.want {
			t.Errorf("step %d: %d bytes, want %d", i, got[id].Unattributed, tt.want)
		}
	}
}

func TestAccountingErrors(t *testing.T) {
	root := copyTree(t, "testdata/v2")
	a := OpenAccounting(AccountingOptions{CgroupRoot: root})
	if err := a.Watch(1); !errors.Is(err, ErrNoCgroup) {
		t.Errorf("Watch of an unknown id: %v, want ErrNoCgroup", err)
	}
	if err := a.WatchPaths(2, Paths{V2: root}); !errors.Is(err, ErrNoCgroup) {
		t.Errorf("Watch without memory.stat: %v, want ErrNoCgroup", err)
	}
	bad := filepath.Join(root, "cell", "memory.stat")
	if err := a.WatchPaths(3, Paths{V2: filepath.Dir(bad)}); err != nil {
		t.Fatal(err)
	}
	write(t, bad, "pgfault lots\n")
	if _, err := a.Read(); err == nil {
		t.Error("Read of a garbled memory.stat succeeded")
	}
	if err := a.Unwatch(4); !errors.Is(err, ErrNotWatched) {
		t.Errorf("Unwatch: %v, want ErrNotWatched", err)
	}
	a.Close()
	if err := a.Watch(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch after Close: %v", err)
	}
}

func TestCounts(t *testing.T) {
	var a, b Counts
	a.Calls[Munmap], a.Bytes[Munmap] = 3, 300
	a.Calls[Brk], a.Bytes[Brk] = 1, 4096
	b.Calls[Munmap], b.Bytes[Munmap] = 1, 100
	d := a.Sub(b)
	if d.Calls[Munmap] != 2 || d.Bytes[Munmap] != 200 || d.Bytes[Brk] != 4096 {
		t.Errorf("Sub = %+v", d)
	}
	if got := a.Add(b).FreedBytes(); got != 300+4096+100 {
		t.Errorf("Add.FreedBytes = %d", got)
	}
	// A counter that went backwards (re-watched) yields the new value.
	if got := b.Sub(a).Bytes[Munmap]; got != 100 {
		t.Errorf("Sub backwards = %d, want 100", got)
	}
	if s := a.String(); !strings.Contains(s, "munmap 3/300B") || !strings.Contains(s, "4396 bytes in 4 calls") {
		t.Errorf("String = %q", s)
	}
	if MadviseDontneed.String() != "madvise_dontneed" || Kind(9).String() != "kind(9)" {
		t.Error("Kind.String")
	}
}
