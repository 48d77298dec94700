package economy_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/ledger"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

// syncBuffer is a log sink for an economy's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tmpfs mounts a tmpfs of size bytes for the test.
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// hog fills the file system at dir with a ballast file and keeps it full
// (as another process filling the disk would), taking back at once any
// space freed, until the returned function stops it and removes the
// ballast.
func hog(t *testing.T, dir string) (release func()) {
	t.Helper()
	p := filepath.Join(dir, "ballast")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			for {
				if _, err := f.Write(chunk[:512]); err != nil {
					break
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-stopped
		f.Close()
		os.Remove(p)
	}
}

// TestFullDisk: on a real 1 MiB tmpfs, a full disk stops charging and
// freezes nobody; once space returns, charging resumes for good; an
// economy stopped on a full disk says at warn level that it left wallets
// open, and the next one settles them.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups and mounts")
	}
	disk := tmpfs(t, 1<<20)
	cfg := config.Default()
	cfg.Engine.SetpointCelsius, cfg.Engine.CriticalCelsius = 90, 99
	cfg.Ledger.MaintainEvery = 200 * time.Millisecond
	dir := t.TempDir()
	parent := "maxwell-test-fulldisk-" + strconv.Itoa(os.Getpid())
	var logs syncBuffer
	open := func() *economy.Economy {
		econ, err := economy.Open(context.Background(), economy.Options{
			Config: cfg, Roots: sensors.HostRoots(), CgroupRoot: "/sys/fs/cgroup", CellParent: parent,
			AgentSocket: filepath.Join(dir, "agent.sock"), LedgerPath: filepath.Join(disk, "ledger.db"), CPUs: []int{0},
			Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		})
		if err != nil {
			t.Fatal(err)
		}
		return econ
	}
	econ := open()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- econ.Run(ctx) }()
	if _, err := econ.Spawn(ctx, api.SpawnRequest{Name: "busy", Argv: []string{"/bin/sh", "-c", "while :; do :; done"},
		Wallet: 1 << 40, MaxBid: 2_000_000, Units: 1}); err != nil {
		t.Fatal(err)
	}
	busy := func() api.Cell {
		st, err := econ.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range st.Cells {
			if c.Name == "busy" {
				return c
			}
		}
		t.Fatal("no cell busy")
		return api.Cell{}
	}
	await := func(what string, ok func() bool) {
		t.Helper()
		for start := time.Now(); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Since(start) > 20*time.Second {
				t.Fatalf("%s: not within 20 s", what)
			}
		}
	}
	events := func(k event.Kind) int {
		st, _ := econ.State(ctx)
		n := 0
		for _, e := range st.Events {
			if e.Kind == k {
				n++
			}
		}
		return n
	}
	await("a charge", func() bool { return busy().Paid > 0 })

	release := hog(t, disk)
	await("the ledger unavailable", func() bool { return events(event.LedgerUnavailable) == 1 })
	time.Sleep(500 * time.Millisecond)
	c := busy()
	if c.State != life.Running {
		t.Errorf("with charging stopped the cell is %s, want running: nobody is frozen", c.State)
	}
	if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/unified", parent, "busy", "cgroup.events")); err == nil && strings.Contains(string(b), "frozen 1") {
		t.Error("the cell's cgroup is frozen while charging is stopped")
	}
	paid := busy().Paid

	release()
	await("the ledger recovered", func() bool { return events(event.LedgerRecovered) == 1 })
	time.Sleep(3 * time.Second) // 30 ticks: it stays recovered
	if n := events(event.LedgerUnavailable); n != 1 {
		t.Errorf("the ledger failed again %d times after space came back", n-1)
	}
	if busy().Paid <= paid {
		t.Errorf("charging did not resume: paid %d, then %d", paid, busy().Paid)
	}

	// Stop on a full disk.
	release = hog(t, disk)
	await("the ledger unavailable again", func() bool { return events(event.LedgerUnavailable) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Logf("stopping on a full disk: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "stays open") {
		t.Errorf("stopping on a full disk did not warn that a wallet stays open:\n%s", l)
	}
	release()

	// The next economy settles it.
	econ = open()
	if err := econ.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(context.Background(), filepath.Join(disk, "ledger.db"), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := l.Account(context.Background(), "busy")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != "closed" {
		t.Errorf("the wallet left open is %s after the next start, want closed", a.State)
	}
	if rep, err := l.Verify(context.Background()); err != nil || !rep.OK {
		t.Errorf("verify: %+v, %v", rep, err)
	}
}
