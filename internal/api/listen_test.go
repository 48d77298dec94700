package api_test

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/api/apitest"
)

func TestListenPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another group needs root")
	}
	named := otherGroup(t)
	tests := []struct {
		name, group string
		anyone      bool
		mode        fs.FileMode
		gid         int
	}{
		{"root only", "", false, 0o600, os.Getgid()},
		{"numeric group", "4242", false, 0o660, 4242},
		{"named group", named.Name, false, 0o660, named.Gid},
		{"anyone", "", true, 0o666, os.Getgid()},
		{"anyone, owned by a group", "4242", true, 0o666, 4242},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.group == "" && tt.name == "named group" {
				t.Skip("no group other than root in /etc/group")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "sub", "control.sock")
			ln, err := api.Listen(path, api.Access{Group: tt.group, Anyone: tt.anyone})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != tt.mode {
				t.Errorf("socket mode %v, want socket %v", fi.Mode(), tt.mode)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != os.Getuid() || int(st.Gid) != tt.gid {
				t.Errorf("socket owned by %d:%d, want %d:%d", st.Uid, st.Gid, os.Getuid(), tt.gid)
			}
			if ln.Addr().String() != path {
				t.Errorf("Addr() = %s, want %s", ln.Addr(), path)
			}
			// Only the socket is left: the temporary name is gone.
			ents, _ := os.ReadDir(filepath.Dir(path))
			if len(ents) != 1 {
				t.Errorf("socket directory holds %v", ents)
			}
		})
	}
	if _, err := api.Listen(filepath.Join(t.TempDir(), "c.sock"), api.Access{Group: "no-such-group-maxwell"}); err == nil || !strings.Contains(err.Error(), "no-such-group-maxwell") {
		t.Errorf("unknown group: %v", err)
	}
}

type group struct {
	Name string
	Gid  int
}

// otherGroup returns a group from /etc/group other than root's, or a zero
// group if there is none.
func otherGroup(t *testing.T) group {
	f, err := os.Open("/etc/group")
	if err != nil {
		return group{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 {
			continue
		}
		gid, err := strconv.Atoi(fields[2])
		if err != nil || gid == 0 {
			continue
		}
		if g, err := user.LookupGroup(fields[0]); err == nil && g.Gid == fields[2] {
			return group{Name: fields[0], Gid: gid}
		}
	}
	return group{}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "control.sock")
	l1, err := api.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if l1.Path() != path+".lock" {
		t.Errorf("lock path %s", l1.Path())
	}
	_, err = api.Lock(path)
	if !errors.Is(err, api.ErrRunning) {
		t.Fatalf("second Lock = %v, want ErrRunning", err)
	}
	if want := "process " + strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("second Lock error %q does not name the holder (%s)", err, want)
	}
	if err := l1.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := api.Lock(path)
	if err != nil {
		t.Fatalf("Lock after Release: %v", err)
	}
	l2.Release()
}

func TestListenSocketInUse(t *testing.T) {
	t.Run("stale socket is replaced", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.sock")
		staleSocket(t, path)
		ln, err := api.Listen(path, api.Access{})
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		defer ln.Close()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("the new socket does not answer: %v", err)
		}
		c.Close()
	})
	t.Run("live socket is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.sock")
		ln, err := api.Listen(path, api.Access{})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if _, err := api.Listen(path, api.Access{}); !errors.Is(err, api.ErrRunning) {
			t.Errorf("second Listen = %v, want ErrRunning", err)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("the live socket was removed: %v", err)
		}
	})
	t.Run("regular file is left alone", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.sock")
		if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := api.Listen(path, api.Access{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("Listen over a file = %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "precious" {
			t.Errorf("file now holds %q", b)
		}
	})
	t.Run("close removes only its own socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.sock")
		ln, err := api.Listen(path, api.Access{})
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket left after Close: %v", err)
		}
		ln2, err := api.Listen(path, api.Access{})
		if err != nil {
			t.Fatal(err)
		}
		defer ln2.Close()
		ln.Close() // a second Close of the old listener must not remove the new socket
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("the new socket was removed: %v", err)
		}
	})
}

// staleSocket leaves a socket file at path that nobody listens on, as a
// killed daemon would.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
}

func TestClientWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	staleSocket(t, stale)
	for _, path := range []string{filepath.Join(dir, "missing.sock"), stale} {
		c := dial(t, path)
		_, err := c.State(context.Background())
		if !errors.Is(err, api.ErrNotRunning) {
			t.Fatalf("%s: State = %v, want ErrNotRunning", path, err)
		}
		want := "no maxwell daemon at " + path + " (is `maxwell daemon` running?)"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		if err := c.Kill(context.Background(), "x"); !errors.Is(err, api.ErrNotRunning) {
			t.Errorf("Kill = %v", err)
		}
	}
	if _, err := api.Dial(""); err == nil {
		t.Error("Dial(\"\") succeeded")
	}
}

// TestClientDaemonDies has the daemon drop the connection mid-request, as
// a daemon that crashes does.
func TestClientDaemonDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			c.Read(buf)
			c.Close()
		}
	}()
	_, err = dial(t, path).State(context.Background())
	if !errors.Is(err, api.ErrNotRunning) || !strings.Contains(err.Error(), "closed the connection") {
		t.Errorf("State from a dying daemon = %v", err)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	path := filepath.Join(t.TempDir(), "c.sock")
	ln, err := api.Listen(path, api.Access{})
	if err != nil {
		t.Fatal(err)
	}
	b := &apitest.Backend{Block: make(chan struct{}), CtxErr: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.NewServer(b, api.Options{}).Serve(ctx, ln) }()

	c := dial(t, path)
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A request in flight when the daemon stops sees its context end.
	inflight := make(chan error, 1)
	go func() { inflight <- c.Kill(context.Background(), "x") }()
	time.Sleep(20 * time.Millisecond) // let the request reach the backend; the test holds either way
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if err := <-inflight; err == nil {
		t.Error("the request in flight succeeded")
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after Serve returned: %v", err)
	}
	if _, err := c.Ping(context.Background()); !errors.Is(err, api.ErrNotRunning) {
		t.Errorf("Ping after shutdown = %v, want ErrNotRunning", err)
	}
	c.Close()
	// Every goroutine the server and client started ends.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after shutdown, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
