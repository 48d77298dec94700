package celllog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRotation: the log never holds more than (Keep+1) files of at most
// MaxBytes, keeps the newest lines in order, and reads back oldest first.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, "c", Options{MaxBytes: 100, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		fmt.Fprintf(w, "line %02d\n", i) // 8 bytes each
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", ".1", ".2"} {
		fi, err := os.Stat(Path(dir, "c") + suffix)
		if err != nil || fi.Size() > 100 || fi.Mode().Perm() != 0o640 {
			t.Errorf("c.log%s: %v, %v", suffix, fi, err)
		}
	}
	if _, err := os.Stat(Path(dir, "c") + ".3"); err == nil {
		t.Error("a fourth file was kept")
	}
	var out bytes.Buffer
	if err := Read(dir, "c", Options{Keep: 2}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[len(lines)-1] != "line 49" || len(lines) < 25 { // two full files of 12 lines and the current one
		t.Errorf("read back %d lines ending %q", len(lines), lines[len(lines)-1])
	}
	for i := 1; i < len(lines); i++ {
		if lines[i] <= lines[i-1] {
			t.Fatalf("out of order at %d: %q after %q", i, lines[i], lines[i-1])
		}
	}
	if err := Read(dir, "nobody", Options{}, &out); !errors.Is(err, ErrNoLog) {
		t.Errorf("no log: %v", err)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestFollow: Follow gives what is appended, across a rotation.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(dir, "c", Options{MaxBytes: 64, Keep: 3})
	fmt.Fprintln(w, "before")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuf
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, dir, "c", Options{Keep: 3}, 10*time.Millisecond, &out) }()
	time.Sleep(50 * time.Millisecond)
	for i := range 20 {
		fmt.Fprintf(w, "after %02d\n", i)
		time.Sleep(5 * time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "after 19") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"before", "after 00", "after 10", "after 19"} {
		if !strings.Contains(got, want) {
			t.Errorf("followed output lacks %q:\n%s", want, got)
		}
	}
	w.Close()
}
