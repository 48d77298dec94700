package sensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The fixture hosts live in testdata/<host>.txtar: each archive holds a
// host's sys/ and proc/ trees in the kernel's documented formats, one
// "-- path --" header per file (the txtar format). They are archives rather
// than plain trees because sysfs names such as "intel-rapl:0" contain
// colons, which Go module zips reject, and so that every test works on a
// private, writable copy (for wraparound and chmod).

// fixture extracts testdata/<host>.txtar into a new temporary directory
// and returns its roots. Dev is <dir>/dev, which does not exist unless the
// test creates it (see writeMSR).
func fixture(t testing.TB, host string) Roots {
	t.Helper()
	dir := t.TempDir()
	extractFixture(t, host, dir)
	return Roots{
		Sys:  filepath.Join(dir, "sys"),
		Proc: filepath.Join(dir, "proc"),
		Dev:  filepath.Join(dir, "dev"),
	}
}

// extractFixture writes the files of testdata/<host>.txtar under dir.
func extractFixture(t testing.TB, host, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", host+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := parseTxtar(data)
	if err != nil {
		t.Fatalf("testdata/%s.txtar: %v", host, err)
	}
	if len(files) == 0 {
		t.Fatalf("testdata/%s.txtar: no files", host)
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// parseTxtar parses the txtar format: a free-form comment, then files, each
// introduced by a line "-- name --".
func parseTxtar(data []byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	var (
		name string
		buf  bytes.Buffer
	)
	flush := func() {
		if name != "" {
			files[name] = append([]byte(nil), buf.Bytes()...)
		}
		buf.Reset()
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if n, ok := strings.CutPrefix(trimmed, "-- "); ok && strings.HasSuffix(n, " --") {
			flush()
			name = strings.TrimSuffix(n, " --")
			if name == "" || filepath.IsAbs(name) || strings.Contains(name, "..") {
				return nil, fmt.Errorf("bad file name %q", name)
			}
			if _, dup := files[name]; dup {
				return nil, fmt.Errorf("duplicate file %q", name)
			}
			continue
		}
		buf.WriteString(line)
	}
	flush()
	return files, nil
}

// writeFile overwrites the file at path with content, as a driver's value
// changing between two reads.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeMSR writes regs into a fake <dev>/cpu/N/msr, each little-endian at
// the offset of its register number, as the msr driver presents them to
// pread. The file is sparse: AMD's registers lie beyond 3 GiB. If size is
// positive the file is then cut to size bytes, so that registers beyond it
// read as absent.
//
// A plain file differs from the driver where registers lie less than 8
// apart: IA32_THERM_STATUS (0x19C) and MSR_TEMPERATURE_TARGET (0x1A2), and
// AMD's power unit (0xC0010299) and package energy (0xC001029B) registers
// share bytes. Registers are written in ascending order so that the lower
// one keeps its low bytes (bits 0..47 and 0..15, which hold every field the
// readers use) and the higher one is intact.
func writeMSR(t testing.TB, dev string, cpu int, regs map[uint32]uint64, size int64) {
	t.Helper()
	path := filepath.Join(dev, "cpu", strconv.Itoa(cpu), "msr")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, reg := range slices.Sorted(maps.Keys(regs)) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], regs[reg])
		if _, err := f.WriteAt(b[:], int64(reg)); err != nil {
			t.Fatal(err)
		}
	}
	if size > 0 {
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseTxtar(t *testing.T) {
	files, err := parseTxtar([]byte("comment\n-- a/b --\n1\n2\n-- c --\n-- d --\nx\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a/b": "1\n2\n", "c": "", "d": "x\n"}
	if len(files) != len(want) {
		t.Fatalf("got %d files, want %d: %q", len(files), len(want), files)
	}
	for name, content := range want {
		if got := string(files[name]); got != content {
			t.Errorf("%s = %q, want %q", name, got, content)
		}
	}
	for _, bad := range []string{"-- ../x --\n", "-- /x --\n", "-- a --\n-- a --\n"} {
		if _, err := parseTxtar([]byte(bad)); err == nil {
			t.Errorf("parseTxtar(%q) succeeded, want error", bad)
		}
	}
}
