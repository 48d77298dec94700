package hub_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/hub"
)

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// ownPID maps this test process to cell names. With a fixed name every
// connection gets it; with an empty one each connection gets a new name,
// cell-1, cell-2, ...
type ownPID struct {
	name string
	mu   sync.Mutex
	n    int
	pids []int
}

func (r *ownPID) CellForPID(pid int) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pids = append(r.pids, pid)
	if pid != os.Getpid() {
		return "", false
	}
	if r.name != "" {
		return r.name, true
	}
	r.n++
	return fmt.Sprintf("cell-%d", r.n), true
}

type noCell struct{}

func (noCell) CellForPID(int) (string, bool) { return "", false }

type testHub struct {
	*hub.Hub
	path   string
	events chan hub.Event
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// sockDir returns a short temporary directory: socket paths are limited to
// 108 bytes, which t.TempDir can exceed.
func sockDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "hub")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func startHub(t testing.TB, r hub.Resolver, opts hub.Options) *testHub {
	t.Helper()
	th := &testHub{path: filepath.Join(sockDir(t), "agent.sock"), events: make(chan hub.Event, 1000), done: make(chan error, 1)}
	opts.Now = func() time.Time { return epoch }
	opts.OnEvent = func(e hub.Event) {
		select {
		case th.events <- e:
		default:
		}
	}
	h, err := hub.Listen(th.path, r, opts)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	th.Hub = h
	ctx, cancel := context.WithCancel(context.Background())
	th.cancel = cancel
	go func() { th.done <- h.Serve(ctx) }()
	t.Cleanup(func() { th.stop(t) })
	return th
}

func (th *testHub) stop(t testing.TB) {
	t.Helper()
	th.once.Do(func() {
		th.cancel()
		select {
		case err := <-th.done:
			if err != nil {
				t.Errorf("Serve = %v, want nil after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return within 5s of cancel")
		}
	})
}

// waitEvent returns the next event of kind, failing after 5s.
func (th *testHub) waitEvent(t *testing.T, kind hub.EventKind) hub.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-th.events:
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %v event within 5s", kind)
		}
	}
}

// raw is a hand-driven agent connection.
type raw struct {
	t    *testing.T
	conn net.Conn
	rd   *bufio.Reader
}

func dialRaw(t *testing.T, path string) *raw {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, conn: c, rd: bufio.NewReader(c)}
}

func (r *raw) send(line string) {
	r.t.Helper()
	if _, err := io.WriteString(r.conn, line+"\n"); err != nil {
		r.t.Fatalf("send %.80q: %v", line, err)
	}
}

// next reads and decodes the host's next message.
func (r *raw) next() proto.Message {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.rd.ReadBytes('\n')
	if err != nil {
		r.t.Fatalf("read: %v (got %q)", err, line)
	}
	m, err := proto.Decode(line[:len(line)-1])
	if err != nil {
		r.t.Fatalf("host sent undecodable %q: %v", line, err)
	}
	return m
}

func (r *raw) expectError(code proto.Code, fatal bool) *proto.Error {
	r.t.Helper()
	m := r.next()
	e, ok := m.(*proto.Error)
	if !ok || e.Code != code || e.Fatal != fatal {
		r.t.Fatalf("got %#v, want error %s (fatal %v)", m, code, fatal)
	}
	return e
}

func (r *raw) expectAck(seq uint64) {
	r.t.Helper()
	if m := r.next(); !equalMsg(m, &proto.Ack{Seq: seq}) {
		r.t.Fatalf("got %#v, want ack %d", m, seq)
	}
}

// expectClosed checks that the host closed the connection.
func (r *raw) expectClosed() {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := r.rd.ReadBytes('\n')
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		r.t.Fatalf("connection still open: read %q, %v", b, err)
	}
}

func (r *raw) hello() {
	r.t.Helper()
	r.send(`{"v":1,"type":"hello","kind":"test"}`)
	if _, ok := r.next().(*proto.Welcome); !ok {
		r.t.Fatal("no welcome")
	}
}

func equalMsg(a, b proto.Message) bool {
	return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

func TestReportsArrive(t *testing.T) {
	res := &ownPID{name: "cell-a"}
	th := startHub(t, res, hub.Options{})
	ctx := context.Background()

	c, err := agent.Dial(ctx, agent.Config{Address: th.path, Hello: proto.Hello{Kind: "scientist", Name: "liar-name",
		Useful: &proto.Useful{Counter: "primes", Unit: "prime"}}})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if c.Cell() != "cell-a" {
		t.Errorf("Cell() = %q, want cell-a", c.Cell())
	}
	e := th.waitEvent(t, hub.EventConnected)
	if e.Cell != "cell-a" || e.PID != os.Getpid() || !e.At.Equal(epoch) || !strings.Contains(e.Detail, `kind="scientist"`) {
		t.Errorf("connected event = %+v", e)
	}
	if _, _, ok := th.Counters("cell-a"); ok {
		t.Error("Counters before any report: ok = true")
	}

	if err := c.Report(ctx, map[string]uint64{"primes": 4, "range_end": 10}); err != nil {
		t.Fatalf("Report: %v", err)
	}
	if err := c.Report(ctx, map[string]uint64{"primes": 25, "segments": 1}); err != nil {
		t.Fatalf("Report: %v", err)
	}
	got, at, ok := th.Counters("cell-a")
	want := map[string]uint64{"primes": 25, "range_end": 10, "segments": 1}
	if !ok || !maps.Equal(got, want) || !at.Equal(epoch) {
		t.Errorf("Counters(cell-a) = %v, %v, %v; want %v, %v, true", got, at, ok, want, epoch)
	}
	got["primes"] = 0 // must be a copy
	snap := th.Snapshot()
	if s := snap["cell-a"]; !maps.Equal(s.Counters, want) || s.Seq != 2 || !s.Connected ||
		s.Useful == nil || *s.Useful != (proto.Useful{Counter: "primes", Unit: "prime"}) {
		t.Errorf("Snapshot()[cell-a] = %+v", s)
	}
	if len(snap) != 1 {
		t.Errorf("Snapshot() has %d cells, want 1", len(snap))
	}

	c.Close()
	if e := th.waitEvent(t, hub.EventDisconnected); e.Cell != "cell-a" {
		t.Errorf("disconnected event = %+v", e)
	}
	// The counters outlive the connection, until the cell is forgotten.
	if got, _, ok := th.Counters("cell-a"); !ok || !maps.Equal(got, want) {
		t.Errorf("Counters after disconnect = %v, %v", got, ok)
	}
	if th.Snapshot()["cell-a"].Connected {
		t.Error("cell still connected after disconnect")
	}
	th.Forget("cell-a")
	if _, _, ok := th.Counters("cell-a"); ok {
		t.Error("Counters after Forget: ok = true")
	}
}

func TestNewSessionStartsOver(t *testing.T) {
	th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{})
	r := dialRaw(t, th.path)
	r.hello()
	r.send(`{"v":1,"type":"report","seq":5,"counters":{"primes":100}}`)
	r.expectAck(5)
	r.conn.Close()
	th.waitEvent(t, hub.EventDisconnected)

	// A restarted agent counts from zero again: not a decrease.
	r = dialRaw(t, th.path)
	r.hello()
	r.send(`{"v":1,"type":"report","seq":1,"counters":{"primes":3}}`)
	r.expectAck(1)
	if got, _, _ := th.Counters("cell-a"); got["primes"] != 3 {
		t.Errorf("primes = %d, want 3", got["primes"])
	}
}

func TestProtocolErrors(t *testing.T) {
	const setup = `{"v":1,"type":"report","seq":3,"counters":{"primes":10,"range_end":30}}`
	tests := []struct {
		name  string
		hello bool   // send hello and setup report first
		line  string // the offending line
		code  proto.Code
		fatal bool
	}{
		{"malformed json", true, `{"v":1,"type":"report"`, proto.CodeMalformed, false},
		{"not an object", true, `42`, proto.CodeMalformed, false},
		{"wrong version", true, `{"v":2,"type":"report","seq":4,"counters":{}}`, proto.CodeUnsupportedVersion, false},
		{"unknown type", true, `{"v":1,"type":"sell","amount":3}`, proto.CodeUnknownType, false},
		{"second hello", true, `{"v":1,"type":"hello"}`, proto.CodeUnexpectedType, false},
		{"host message from agent", true, `{"v":1,"type":"welcome","cell":"root"}`, proto.CodeUnexpectedType, false},
		{"counter decreased", true, `{"v":1,"type":"report","seq":4,"counters":{"primes":9}}`, proto.CodeCounterDecreased, false},
		{"same seq", true, `{"v":1,"type":"report","seq":3,"counters":{"primes":11}}`, proto.CodeOutOfOrder, false},
		{"lower seq", true, `{"v":1,"type":"report","seq":2,"counters":{"primes":11}}`, proto.CodeOutOfOrder, false},
		{"negative counter", true, `{"v":1,"type":"report","seq":4,"counters":{"x":-1}}`, proto.CodeInvalidCounter, false},
		{"float counter", true, `{"v":1,"type":"report","seq":4,"counters":{"x":2.5}}`, proto.CodeInvalidCounter, false},
		{"counter above 2^53", true, `{"v":1,"type":"report","seq":4,"counters":{"x":18014398509481984}}`, proto.CodeInvalidCounter, false},
		{"oversized", true, `{"v":1,"type":"report","seq":4,"counters":{"x":1},"pad":"` + strings.Repeat("a", proto.MaxLine) + `"}`, proto.CodeOversized, true},

		{"report before hello", false, setup, proto.CodeUnexpectedType, true},
		{"hello wrong version", false, `{"v":3,"type":"hello"}`, proto.CodeUnsupportedVersion, true},
		{"hello malformed", false, `{"v":1,"type":"hello"`, proto.CodeMalformed, true},
		{"hello oversized", false, strings.Repeat(" ", proto.MaxLine+1), proto.CodeOversized, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{})
			r := dialRaw(t, th.path)
			if tt.hello {
				r.hello()
				r.send(setup)
				r.expectAck(3)
			}
			r.send(tt.line)
			e := r.expectError(tt.code, tt.fatal)
			if e.Message == "" {
				t.Error("error has no message")
			}
			wantEvent := hub.EventProtocolError
			if !tt.hello {
				wantEvent = hub.EventRefused
			}
			if ev := th.waitEvent(t, wantEvent); ev.Code != tt.code || ev.Cell != "cell-a" {
				t.Errorf("event = %+v, want code %s for cell-a", ev, tt.code)
			}
			if tt.fatal {
				r.expectClosed()
				return
			}
			// A rejected message changes nothing: the session goes on.
			if got, _, _ := th.Counters("cell-a"); got["primes"] != 10 {
				t.Errorf("primes = %d after rejected message, want 10", got["primes"])
			}
			r.send(`{"v":1,"type":"report","seq":9,"counters":{"primes":12}}`)
			r.expectAck(9)
			if got, _, _ := th.Counters("cell-a"); got["primes"] != 12 || got["range_end"] != 30 {
				t.Errorf("counters = %v, want primes 12, range_end 30", got)
			}
		})
	}
}

func TestRejectedReportNamesSeq(t *testing.T) {
	th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{})
	r := dialRaw(t, th.path)
	r.hello()
	r.send(`{"v":1,"type":"report","seq":1,"counters":{"a":5,"b":5}}`)
	r.expectAck(1)
	// One bad counter rejects the whole report: b must not move to 9.
	r.send(`{"v":1,"type":"report","seq":2,"counters":{"a":4,"b":9}}`)
	if e := r.expectError(proto.CodeCounterDecreased, false); e.Seq != 2 || !strings.Contains(e.Message, `"a"`) {
		t.Errorf("error = %+v, want seq 2 naming counter a", e)
	}
	if got, _, _ := th.Counters("cell-a"); got["b"] != 5 {
		t.Errorf("b = %d after rejected report, want 5", got["b"])
	}
}

func TestTooManyErrors(t *testing.T) {
	th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{MaxErrors: 3})
	r := dialRaw(t, th.path)
	r.hello()
	r.send(`nonsense`)
	r.expectError(proto.CodeMalformed, false)
	r.send(`nonsense`)
	r.expectError(proto.CodeMalformed, false)
	r.send(`nonsense`)
	r.expectError(proto.CodeTooManyErrors, true)
	r.expectClosed()
	if e := th.waitEvent(t, hub.EventDisconnected); e.Code != proto.CodeTooManyErrors {
		t.Errorf("disconnect event = %+v", e)
	}
}

func TestNotACell(t *testing.T) {
	th := startHub(t, noCell{}, hub.Options{})
	_, err := agent.DialUnix(context.Background(), th.path)
	var pe *agent.ProtocolError
	if !errors.As(err, &pe) || pe.Code != proto.CodeNotACell || !pe.Fatal {
		t.Fatalf("Dial = %v, want fatal not_a_cell", err)
	}
	if e := th.waitEvent(t, hub.EventRefused); e.Code != proto.CodeNotACell || e.PID != os.Getpid() || e.Cell != "" {
		t.Errorf("refused event = %+v", e)
	}
	if len(th.Snapshot()) != 0 {
		t.Errorf("Snapshot() = %v, want empty", th.Snapshot())
	}
}

func TestResolverSeesKernelPID(t *testing.T) {
	res := &ownPID{name: "cell-a"}
	th := startHub(t, res, hub.Options{})
	r := dialRaw(t, th.path)
	r.send(`{"v":1,"type":"hello","name":"cell-root","kind":"pid 1"}`)
	if w, ok := r.next().(*proto.Welcome); !ok || w.Cell != "cell-a" {
		t.Fatalf("welcome = %#v, want cell-a", w)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	if len(res.pids) != 1 || res.pids[0] != os.Getpid() {
		t.Errorf("resolver asked about %v, want [%d]", res.pids, os.Getpid())
	}
}

// TestSupersede: a cell's newer connection wins once it says hello; one
// that says nothing takes nothing from the cell's agent.
func TestSupersede(t *testing.T) {
	th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{})
	first := dialRaw(t, th.path)
	first.hello()
	first.send(`{"v":1,"type":"report","seq":5,"counters":{"primes":100}}`)
	first.expectAck(5)

	second := dialRaw(t, th.path)
	first.send(`{"v":1,"type":"report","seq":6,"counters":{"primes":101}}`)
	first.expectAck(6) // a connection that has not said hello changes nothing

	second.hello()
	if e := first.expectError(proto.CodeSuperseded, true); !strings.Contains(e.Message, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("superseded message %q does not name the new connection's pid", e.Message)
	}
	first.expectClosed()
	if e := th.waitEvent(t, hub.EventDisconnected); e.Code != proto.CodeSuperseded || e.Cell != "cell-a" {
		t.Errorf("disconnected event = %+v, want code superseded for cell-a", e)
	}
	// The new session starts over: a lower seq and counter are fine.
	second.send(`{"v":1,"type":"report","seq":1,"counters":{"primes":3}}`)
	second.expectAck(1)
	if s := th.Snapshot()["cell-a"]; !s.Connected || s.Counters["primes"] != 3 || s.Seq != 1 {
		t.Errorf("Snapshot()[cell-a] = %+v, want connected, primes 3, seq 1", s)
	}
	second.conn.Close()
	if e := th.waitEvent(t, hub.EventDisconnected); e.Code != "" {
		t.Errorf("disconnected event = %+v, want an ordinary disconnect", e)
	}
	waitFor(t, "cell-a disconnected", func() bool { return !th.Snapshot()["cell-a"].Connected })
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHungPeer(t *testing.T) {
	th := startHub(t, &ownPID{}, hub.Options{HandshakeTimeout: 200 * time.Millisecond, IdleTimeout: 400 * time.Millisecond})
	silent := dialRaw(t, th.path) // connects, never says hello
	quiet := dialRaw(t, th.path)  // says hello, then nothing
	quiet.hello()

	// Others are served while those two hang.
	c, err := agent.DialUnix(context.Background(), th.path)
	if err != nil {
		t.Fatalf("Dial beside hung peers: %v", err)
	}
	defer c.Close()
	if err := c.Report(context.Background(), map[string]uint64{"n": 1}); err != nil {
		t.Fatalf("Report beside hung peers: %v", err)
	}

	silent.expectError(proto.CodeTimeout, true)
	silent.expectClosed()
	quiet.expectError(proto.CodeTimeout, true)
	quiet.expectClosed()
}

func TestBusy(t *testing.T) {
	th := startHub(t, &ownPID{}, hub.Options{MaxConns: 1})
	first := dialRaw(t, th.path)
	first.hello()
	second := dialRaw(t, th.path)
	second.expectError(proto.CodeBusy, true)
	second.expectClosed()
	if e := th.waitEvent(t, hub.EventRefused); e.Code != proto.CodeBusy {
		t.Errorf("refused event = %+v", e)
	}
	first.conn.Close()
	th.waitEvent(t, hub.EventDisconnected)
	// The slot is free again.
	third := dialRaw(t, th.path)
	third.hello()
}

func TestServeStopsCleanly(t *testing.T) {
	base := runtime.NumGoroutine()
	th := startHub(t, &ownPID{}, hub.Options{})
	silent := dialRaw(t, th.path)
	busy := dialRaw(t, th.path)
	busy.hello()
	c, err := agent.DialUnix(context.Background(), th.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Report(context.Background(), map[string]uint64{"n": 1}); err != nil {
		t.Fatal(err)
	}
	th.stop(t)

	silent.expectClosed()
	busy.expectClosed()
	var pe *agent.ProtocolError
	if err := c.Report(context.Background(), map[string]uint64{"n": 2}); err == nil || errors.As(err, &pe) {
		t.Errorf("Report after host stopped = %v, want an I/O error", err)
	}
	if _, err := os.Lstat(th.path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file still there after Serve returned: %v", err)
	}
	silent.conn.Close()
	busy.conn.Close()
	c.Close()
	checkNoLeak(t, base)
	if err := th.Serve(context.Background()); !errors.Is(err, hub.ErrServed) {
		t.Errorf("second Serve = %v, want ErrServed", err)
	}
}

// checkNoLeak waits for the goroutine count to fall back to base.
func checkNoLeak(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestListen(t *testing.T) {
	dir := sockDir(t)
	path := filepath.Join(dir, "a.sock")

	t.Run("mode", func(t *testing.T) {
		h, err := hub.Listen(path, noCell{}, hub.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != hub.SocketMode {
			t.Errorf("socket mode = %v, want socket %v", fi.Mode(), hub.SocketMode)
		}
		if _, err := os.Lstat(path + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("temporary socket left behind: %v", err)
		}
		if h.Addr().String() != path {
			t.Errorf("Addr() = %v, want %s", h.Addr(), path)
		}

		// A live host is never displaced.
		if _, err := hub.Listen(path, noCell{}, hub.Options{}); !errors.Is(err, hub.ErrInUse) {
			t.Errorf("Listen on a live socket = %v, want ErrInUse", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := h.Serve(ctx); err != nil {
			t.Errorf("Serve(cancelled) = %v", err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket not removed by Serve: %v", err)
		}
	})

	t.Run("stale", func(t *testing.T) {
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close() // a dead host's leftover
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("stale socket missing: %v", err)
		}
		h, err := hub.Listen(path, &ownPID{name: "x"}, hub.Options{})
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- h.Serve(ctx) }()
		c, err := agent.DialUnix(context.Background(), path)
		if err != nil {
			t.Errorf("Dial the new host: %v", err)
		} else {
			c.Close()
		}
		cancel()
		<-done
	})

	t.Run("not a socket", func(t *testing.T) {
		if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := hub.Listen(path, noCell{}, hub.Options{}); !errors.Is(err, hub.ErrInUse) {
			t.Errorf("Listen over a regular file = %v, want ErrInUse", err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
			t.Errorf("regular file damaged: %q, %v", b, err)
		}
	})
}

func TestNonUnixListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	events := make(chan hub.Event, 10)
	h := hub.New(ln, &ownPID{name: "a"}, hub.Options{OnEvent: func(e hub.Event) { events <- e }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case e := <-events:
		// TCP has no SO_PEERCRED: the peer cannot be placed in a cell.
		if e.Kind != hub.EventRefused {
			t.Errorf("event = %+v, want refused", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for a TCP peer")
	}
}
