package firecracker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeVsock is a Unix socket peer that plays Firecracker's vsock device
// for host-initiated connections: it reads "CONNECT <port>\n" and answers
// as its behaviour says.
type fakeVsock struct {
	path    string
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	gotLine []string
}

func newFakeVsock(t *testing.T, answer func(conn net.Conn, port string)) *fakeVsock {
	t.Helper()
	f := &fakeVsock{path: filepath.Join(t.TempDir(), "v.sock")}
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				var line []byte
				var b [1]byte
				for {
					if _, err := conn.Read(b[:]); err != nil {
						return
					}
					if b[0] == '\n' {
						break
					}
					line = append(line, b[0])
				}
				f.mu.Lock()
				f.gotLine = append(f.gotLine, string(line))
				f.mu.Unlock()
				port, _ := strings.CutPrefix(string(line), "CONNECT ")
				answer(conn, port)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func TestDialVsock(t *testing.T) {
	echo := func(conn net.Conn, port string) {
		// The answer and the guest's first bytes in one write: the
		// dialer must leave the latter for its caller.
		conn.Write([]byte("OK 1073741824\nguest says hi\n"))
		io.Copy(conn, conn)
	}
	f := newFakeVsock(t, echo)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := DialVsock(ctx, f.path, 52)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, len("guest says hi\n"))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "guest says hi\n" {
		t.Errorf("first guest bytes = %q, %v", buf, err)
	}
	conn.Write([]byte("ping\n"))
	if _, err := io.ReadFull(conn, buf[:5]); err != nil || string(buf[:5]) != "ping\n" {
		t.Errorf("echo = %q, %v", buf[:5], err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.gotLine) != 1 || f.gotLine[0] != "CONNECT 52" {
		t.Errorf("peer got %q; want CONNECT 52", f.gotLine)
	}
}

func TestDialVsockMisbehavingPeer(t *testing.T) {
	tests := []struct {
		name   string
		answer func(net.Conn, string)
		want   string
	}{
		{"no guest listener", func(c net.Conn, _ string) {}, "closed without an answer"},
		{"garbage", func(c net.Conn, _ string) { c.Write([]byte("HTTP/1.1 400 Bad Request\n")) }, "answer"},
		{"bad port", func(c net.Conn, _ string) { c.Write([]byte("OK port\n")) }, "answer"},
		{"flood", func(c net.Conn, _ string) { c.Write(bytes.Repeat([]byte("A"), 1<<20)) }, "longer than"},
		{"half answer then close", func(c net.Conn, _ string) { c.Write([]byte("OK 12")) }, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVsock(t, tt.answer)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := DialVsock(ctx, f.path, 1)
			if err == nil {
				conn.Close()
				t.Fatal("DialVsock succeeded")
			}
			if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DialVsock = %v; want ErrHandshake saying %q", err, tt.want)
			}
		})
	}
}

func TestDialVsockSilentPeerTimesOut(t *testing.T) {
	release := make(chan struct{})
	f := newFakeVsock(t, func(c net.Conn, _ string) { <-release })
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := DialVsock(ctx, f.path, 1)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrHandshake) {
		t.Errorf("DialVsock = %v; want a handshake error from the deadline", err)
	}
}

func TestDialVsockNoSocket(t *testing.T) {
	_, err := DialVsock(context.Background(), filepath.Join(t.TempDir(), "none"), 1)
	if err == nil {
		t.Fatal("DialVsock to a missing socket succeeded")
	}
	// A stale socket file: bound, never listened on again.
	path := filepath.Join(t.TempDir(), "stale")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := DialVsock(context.Background(), path, 1); err == nil {
		t.Error("DialVsock to a stale socket succeeded")
	}
}

func TestListenVsock(t *testing.T) {
	uds := filepath.Join(t.TempDir(), "vm.vsock")
	// A stale socket from a dead listener is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: ListenerPath(uds, 1024), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	ln, err := ListenVsock(uds, 1024)
	if err != nil {
		t.Fatalf("ListenVsock over a stale socket: %v", err)
	}
	if got := ln.Addr().String(); got != uds+"_1024" {
		t.Errorf("listening on %s; want %s_1024", got, uds)
	}
	// A live one is not.
	if _, err := ListenVsock(uds, 1024); !errors.Is(err, ErrInUse) {
		t.Errorf("second ListenVsock = %v; want ErrInUse", err)
	}
	// Firecracker connects from its own process: the peer credentials
	// name the connecting process, here this test.
	go func() {
		c, err := net.Dial("unix", uds+"_1024")
		if err == nil {
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, _ := conn.(*net.UnixConn).SyscallConn()
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil || int(cred.Pid) != os.Getpid() {
		t.Errorf("peer credentials %+v, %v; want pid %d", cred, err, os.Getpid())
	}
	ln.Close()
	if _, err := os.Lstat(uds + "_1024"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after Close: %v", err)
	}

	// A path taken by a regular file is refused, and the file kept.
	if err := os.WriteFile(uds+"_7", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenVsock(uds, 7); !errors.Is(err, ErrInUse) {
		t.Errorf("ListenVsock over a file = %v; want ErrInUse", err)
	}
	if _, err := os.Stat(uds + "_7"); err != nil {
		t.Errorf("regular file removed: %v", err)
	}
}

func TestLinkVsock(t *testing.T) {
	dir := t.TempDir()
	hubSock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", hubSock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	uds := filepath.Join(dir, "vm1.vsock")
	if err := LinkVsock(hubSock, uds, 1024); err != nil {
		t.Fatal(err)
	}
	// Firecracker's side: connect to <uds>_<port>; the hub accepts it.
	go func() {
		if c, err := net.Dial("unix", uds+"_1024"); err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(conn, b); err != nil || b[0] != 'x' {
		t.Errorf("read %q, %v through the link", b, err)
	}
	conn.Close()
	// The link is live now: linking again is refused.
	if err := LinkVsock(hubSock, uds, 1024); !errors.Is(err, ErrInUse) {
		t.Errorf("second LinkVsock = %v; want ErrInUse", err)
	}
}
