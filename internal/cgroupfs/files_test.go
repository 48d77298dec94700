package cgroupfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFiles: a Files reads what the package's functions read, sees a
// file's new content at every read (it rereads from offset 0 through the
// descriptor it kept), remembers a missing file, reads a file too large
// for its buffer afresh, and refuses reads once closed.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	put := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f := NewFiles()
	usage := put("cpuacct.usage", "1000\n")
	for _, want := range []uint64{1000, 2500} {
		put("cpuacct.usage", strconv.FormatUint(want, 10)+"\n") // rewritten in place
		if v, err := f.Uint(usage); err != nil || v != want {
			t.Errorf("Uint = %d, %v; want %d", v, err, want)
		}
	}
	if len(f.fds) != 1 {
		t.Errorf("Files holds %d descriptors for one file", len(f.fds))
	}
	stat := put("cpu.stat", "usage_usec 7\nuser_usec 5\n")
	if v, err := f.Keyed(stat, "user_usec"); err != nil || v != 5 {
		t.Errorf("Keyed = %d, %v", v, err)
	}
	if _, err := f.Keyed(stat, "nope"); !errors.Is(err, ErrGarbage) {
		t.Errorf("Keyed of a missing key: %v", err)
	}
	if _, err := f.Uint(put("garbage", "12x\n")); !errors.Is(err, ErrGarbage) {
		t.Errorf("Uint of garbage: %v", err)
	}
	if _, err := f.Uint(put("huge", "99999999999999999999999\n")); !errors.Is(err, ErrGarbage) {
		t.Errorf("Uint beyond 64 bits: %v", err)
	}
	missing := filepath.Join(dir, "memory.current")
	for range 2 {
		if _, err := f.Uint(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a missing file: %v", err)
		}
	}
	big := put("big", strings.Repeat("k 1\n", fileBuf)+"frozen 1\n")
	if v, err := f.Keyed(big, "frozen"); err != nil || v != 1 {
		t.Errorf("a file larger than the buffer: %d, %v", v, err)
	}
	// ReadCPUMemory on a v2 directory without the memory controller.
	v2 := filepath.Join(dir, "v2")
	os.Mkdir(v2, 0o755)
	os.WriteFile(filepath.Join(v2, "cpu.stat"), []byte("usage_usec 3\n"), 0o644)
	if u, err := f.ReadCPUMemory(Dirs{V2: v2}); err != nil || u.CPUTime.Microseconds() != 3 || u.MemoryBytes != 0 {
		t.Errorf("ReadCPUMemory = %+v, %v", u, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if _, err := f.Uint(usage); err == nil {
		t.Error("a closed Files read")
	}
	var none *Files
	if v, err := none.Uint(usage); err != nil || v != 2500 {
		t.Errorf("a nil Files reads afresh: %d, %v", v, err)
	}
}
