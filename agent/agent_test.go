package agent_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		socket, vsock string
		want          agent.Config
	}{
		{"", "", agent.Config{}},
		{"/run/m.sock", "", agent.Config{Transport: agent.Unix, Address: "/run/m.sock"}},
		{"/run/m.sock", "3:1024", agent.Config{Transport: agent.Unix, Address: "/run/m.sock"}},
		{"", "3:1024", agent.Config{Transport: agent.Vsock, Address: "3:1024"}},
	}
	for _, tt := range tests {
		t.Setenv(agent.EnvSocket, tt.socket)
		t.Setenv(agent.EnvVsock, tt.vsock)
		if got := agent.FromEnv(); got != tt.want {
			t.Errorf("FromEnv() with socket %q vsock %q = %+v, want %+v", tt.socket, tt.vsock, got, tt.want)
		}
	}
}

func TestDialErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := agent.Dial(ctx, agent.Config{}); !errors.Is(err, agent.ErrNoEndpoint) {
		t.Errorf("Dial(no address) = %v, want ErrNoEndpoint", err)
	}
	if _, err := agent.Dial(ctx, agent.Config{Transport: "pigeon", Address: "x"}); !errors.Is(err, agent.ErrUnsupportedTransport) {
		t.Errorf("Dial(pigeon) = %v, want ErrUnsupportedTransport", err)
	}
	if _, err := agent.DialUnix(ctx, filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("Dial(missing socket) = nil error")
	}
}

// fakeHost accepts one connection and lets the test script the host side.
type fakeHost struct {
	t    *testing.T
	path string
	conn chan net.Conn
}

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeHost{t: t, path: filepath.Join(dir, "s"), conn: make(chan net.Conn, 1)}
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			f.conn <- c
		}
	}()
	return f
}

// host is the accepted side of a fakeHost.
type host struct {
	t    *testing.T
	conn net.Conn
	rd   *bufio.Reader
}

func (f *fakeHost) accept() *host {
	f.t.Helper()
	select {
	case c := <-f.conn:
		return &host{t: f.t, conn: c, rd: bufio.NewReader(c)}
	case <-time.After(5 * time.Second):
		f.t.Fatal("no connection")
	}
	return nil
}

func (h *host) recv() proto.Message {
	h.t.Helper()
	h.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := h.rd.ReadBytes('\n')
	if err != nil {
		h.t.Errorf("host read: %v", err)
		return nil
	}
	m, err := proto.Decode(line[:len(line)-1])
	if err != nil {
		h.t.Errorf("agent sent %q: %v", line, err)
	}
	return m
}

func (h *host) send(raw string) {
	h.t.Helper()
	if _, err := io.WriteString(h.conn, raw+"\n"); err != nil {
		h.t.Errorf("host write: %v", err)
	}
}

// dial connects a Client to f, playing the host's part of the handshake.
func dial(t *testing.T, f *fakeHost) (*agent.Client, *host) {
	t.Helper()
	type result struct {
		c   *agent.Client
		err error
	}
	done := make(chan result)
	go func() {
		c, err := agent.Dial(context.Background(), agent.Config{Address: f.path, Hello: proto.Hello{Kind: "k"}})
		done <- result{c, err}
	}()
	h := f.accept()
	if m, ok := h.recv().(*proto.Hello); !ok || m.Kind != "k" || m.Software == "" {
		t.Fatalf("first message = %#v, want hello of kind k with software filled in", m)
	}
	h.send(`{"v":1,"type":"welcome","cell":"c7","protocol":1}`)
	r := <-done
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	if r.c.Cell() != "c7" {
		t.Errorf("Cell() = %q, want c7", r.c.Cell())
	}
	return r.c, h
}

func report(c *agent.Client, ctx context.Context, n uint64) <-chan error {
	done := make(chan error, 1)
	go func() { done <- c.Report(ctx, map[string]uint64{"n": n}) }()
	return done
}

func wait(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Report did not return")
	}
	return nil
}

func TestReportSeqAndAck(t *testing.T) {
	c, h := dial(t, newFakeHost(t))
	for want := uint64(1); want <= 3; want++ {
		done := report(c, context.Background(), want*10)
		m, ok := h.recv().(*proto.Report)
		if !ok || m.Seq != want || m.Counters["n"] != want*10 {
			t.Fatalf("report = %#v, want seq %d", m, want)
		}
		h.send(`{"v":1,"type":"ack","seq":` + itoa(want) + `}`)
		if err := wait(t, done); err != nil {
			t.Fatalf("Report: %v", err)
		}
	}
}

func TestReportTimeoutThenLateAck(t *testing.T) {
	c, h := dial(t, newFakeHost(t))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := report(c, ctx, 1)
	h.recv()
	if err := wait(t, done); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Report with a silent host = %v, want DeadlineExceeded", err)
	}
	// The late ack for seq 1 arrives in two pieces; the client must skip
	// it and match the ack for seq 2.
	io.WriteString(h.conn, `{"v":1,"type":"ack",`)
	done = report(c, context.Background(), 2)
	if m, ok := h.recv().(*proto.Report); !ok || m.Seq != 2 {
		t.Fatalf("second report = %#v, want seq 2", m)
	}
	h.send(`"seq":1}`)
	h.send(`{"v":1,"type":"ack","seq":2}`)
	if err := wait(t, done); err != nil {
		t.Fatalf("Report after a timeout: %v", err)
	}
}

func TestReportCancel(t *testing.T) {
	c, h := dial(t, newFakeHost(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := report(c, ctx, 1)
	h.recv()
	cancel()
	if err := wait(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Report = %v, want Canceled", err)
	}
}

func TestReportErrors(t *testing.T) {
	c, h := dial(t, newFakeHost(t))

	done := report(c, context.Background(), 5)
	h.recv()
	h.send(`{"v":1,"type":"error","code":"counter_decreased","message":"n went down","seq":1}`)
	err := wait(t, done)
	var pe *agent.ProtocolError
	if !errors.As(err, &pe) || pe.Code != proto.CodeCounterDecreased || pe.Fatal || pe.Message != "n went down" {
		t.Fatalf("Report = %#v, want non-fatal counter_decreased", err)
	}

	// Non-fatal: the client goes on.
	done = report(c, context.Background(), 6)
	h.recv()
	h.send(`{"v":1,"type":"error","code":"timeout","fatal":true}`)
	h.conn.Close()
	if err := wait(t, done); !errors.Is(err, &proto.Error{Code: proto.CodeTimeout}) {
		t.Fatalf("Report = %v, want timeout", err)
	}
	// Fatal: sticky.
	if err := c.Report(context.Background(), map[string]uint64{"n": 7}); !errors.Is(err, &proto.Error{Code: proto.CodeTimeout}) {
		t.Fatalf("Report after a fatal error = %v, want the same error", err)
	}
}

func TestHostErrorAfterHangUp(t *testing.T) {
	c, h := dial(t, newFakeHost(t))
	// The host gives up on the agent unprompted and closes.
	h.send(`{"v":1,"type":"error","code":"timeout","message":"no message within 30s","fatal":true}`)
	h.conn.Close()
	time.Sleep(10 * time.Millisecond)
	err := c.Report(context.Background(), map[string]uint64{"n": 1})
	var pe *agent.ProtocolError
	if !errors.As(err, &pe) || pe.Code != proto.CodeTimeout {
		t.Fatalf("Report after host hung up = %v, want the host's timeout error", err)
	}
}

func TestHostBreaksProtocol(t *testing.T) {
	c, h := dial(t, newFakeHost(t))
	done := report(c, context.Background(), 1)
	h.recv()
	h.send(`{"v":7,"type":"ack","seq":1}`)
	err := wait(t, done)
	var pe *agent.ProtocolError
	if !errors.As(err, &pe) || pe.Code != proto.CodeUnsupportedVersion || !pe.Fatal {
		t.Fatalf("Report = %v, want fatal unsupported_version", err)
	}
}

func TestDialRefused(t *testing.T) {
	f := newFakeHost(t)
	done := make(chan error)
	go func() {
		_, err := agent.DialUnix(context.Background(), f.path)
		done <- err
	}()
	h := f.accept()
	// Refuse at once, without reading the hello, as the real host does.
	h.send(`{"v":1,"type":"error","code":"not_a_cell","message":"pid 9 belongs to no cell","fatal":true}`)
	h.conn.Close()
	err := wait(t, done)
	var pe *agent.ProtocolError
	if !errors.As(err, &pe) || pe.Code != proto.CodeNotACell {
		t.Fatalf("Dial = %v, want not_a_cell", err)
	}
}

func TestDialTimeout(t *testing.T) {
	f := newFakeHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := agent.DialUnix(ctx, f.path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a silent host = %v, want DeadlineExceeded", err)
	}
}

func TestLocalValidation(t *testing.T) {
	c, _ := dial(t, newFakeHost(t))
	for _, counters := range []map[string]uint64{
		{"bad name": 1},
		{"big": proto.MaxCounter + 1},
	} {
		err := c.Report(context.Background(), counters)
		if !errors.Is(err, &proto.Error{Code: proto.CodeInvalidCounter}) {
			t.Errorf("Report(%v) = %v, want invalid_counter", counters, err)
		}
	}
}

func TestClose(t *testing.T) {
	c, h := dial(t, newFakeHost(t))
	done := report(c, context.Background(), 1)
	h.recv()
	c.Close()
	if err := wait(t, done); !errors.Is(err, agent.ErrClosed) {
		t.Errorf("Report interrupted by Close = %v, want ErrClosed", err)
	}
	if err := c.Report(context.Background(), map[string]uint64{"n": 1}); !errors.Is(err, agent.ErrClosed) {
		t.Errorf("Report after Close = %v, want ErrClosed", err)
	}
	if !strings.Contains(agent.ErrClosed.Error(), "closed") {
		t.Error("ErrClosed message")
	}
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
