package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/hub"
)

// The test binary plays the hub's peers in other processes, which is what
// makes their PIDs belong to no cell (or to another cell) for real: with
// peerEnv set it runs that peer instead of the tests.
const (
	peerEnv       = "MAXWELL_HUB_TEST_PEER" // "flood" or "agent"
	peerSocketEnv = "MAXWELL_HUB_TEST_SOCKET"
	peerConnsEnv  = "MAXWELL_HUB_TEST_CONNS"
)

func TestMain(m *testing.M) {
	switch os.Getenv(peerEnv) {
	case "":
		os.Exit(m.Run())
	case "flood":
		os.Exit(floodPeer(os.Getenv(peerSocketEnv), os.Getenv(peerConnsEnv)))
	case "agent":
		os.Exit(agentPeer(os.Getenv(peerSocketEnv)))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", peerEnv, os.Getenv(peerEnv))
		os.Exit(2)
	}
}

// refusal is what one flood connection got from the host.
type refusal struct {
	Code proto.Code `json:"code"`          // "" if the host sent no error
	Err  string     `json:"err,omitempty"` // why nothing was read
	Ms   float64    `json:"ms"`            // from connect to the host's answer
}

// floodPeer opens n connections to the socket at once, says nothing on
// any, prints "dialed", then waits for the host's answer on each and
// prints them as one JSON array.
func floodPeer(path, conns string) int {
	n, err := strconv.Atoi(conns)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := make([]refusal, n)
	cs := make([]net.Conn, n)
	starts := make([]time.Time, n)
	for i := range n {
		starts[i] = time.Now()
		if cs[i], err = net.Dial("unix", path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println("dialed")
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			line, err := bufio.NewReader(c).ReadBytes('\n')
			out[i].Ms = float64(time.Since(starts[i]).Microseconds()) / 1000
			if err != nil {
				out[i].Err = err.Error()
				return
			}
			m, err := proto.Decode(line[:len(line)-1])
			if e, ok := m.(*proto.Error); ok && e.Fatal {
				out[i].Code = e.Code
			} else {
				out[i].Err = fmt.Sprintf("host sent %q (%v)", line, err)
			}
		})
	}
	wg.Wait()
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return 1
	}
	return 0
}

// agentPeer joins the host as an agent, reports once and prints its cell.
func agentPeer(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := agent.DialUnix(ctx, path)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer c.Close()
	if err := c.Report(ctx, map[string]uint64{"n": 1}); err != nil {
		fmt.Println("report:", err)
		return 1
	}
	fmt.Println(c.Cell())
	return 0
}

// peer is a running peer process.
type peer struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

func startPeer(t *testing.T, role, path string, env ...string) *peer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), peerEnv+"="+role, peerSocketEnv+"="+path)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &peer{cmd: cmd, out: bufio.NewReader(stdout)}
}

// line reads the peer's next line of output.
func (p *peer) line(t *testing.T) string {
	t.Helper()
	s, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("peer %d: %v (read %q)", p.cmd.Process.Pid, err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// byPID places this test process in cell own and every other process in
// cell others, or in none if others is "".
type byPID struct{ own, others string }

func (r byPID) CellForPID(pid int) (string, bool) {
	if pid == os.Getpid() {
		return r.own, true
	}
	return r.others, r.others != ""
}

// TestFloodOfStrangers: 200 connections from four processes that belong
// to no cell, held open, while a real agent of a cell connects and reports
// again and again. Strangers never hold one of the MaxConns slots, so the
// agent is never refused busy; all but one connection per process (and
// at most MaxPending) are refused at once rather than after ResolveWait;
// and the 200 refusals reach OnEvent as a few events that still count
// them all.
func TestFloodOfStrangers(t *testing.T) {
	const procs, perProc = 4, 50
	const resolveWait = 2 * time.Second
	opts := hub.Options{MaxConns: 8, MaxPending: 2, ResolveWait: resolveWait}
	th := startHub(t, byPID{own: "cell-a"}, opts)

	floods := make([]*peer, procs)
	for i := range floods {
		floods[i] = startPeer(t, "flood", th.path, fmt.Sprintf("%s=%d", peerConnsEnv, perProc))
	}
	for _, p := range floods {
		if l := p.line(t); l != "dialed" {
			t.Fatalf("flood peer said %q", l)
		}
	}

	// The cell's agent joins and reports, every 10 ms, until every
	// stranger has its answer, and at least 10 times.
	done := make(chan [][]refusal, 1)
	go func() {
		var all [][]refusal
		for _, p := range floods {
			var rs []refusal
			if err := json.NewDecoder(p.out).Decode(&rs); err != nil {
				t.Errorf("flood peer %d: %v", p.cmd.Process.Pid, err)
			}
			all = append(all, rs)
		}
		done <- all
	}()
	var results [][]refusal
	var joins int
	var dialMs []float64
	ctx := context.Background()
	for results == nil || joins < 10 {
		select {
		case results = <-done:
		default:
		}
		start := time.Now()
		c, err := agent.DialUnix(ctx, th.path)
		if err != nil {
			t.Fatalf("join %d during the flood: %v", joins, err)
		}
		dialMs = append(dialMs, float64(time.Since(start).Microseconds())/1000)
		if err := c.Report(ctx, map[string]uint64{"joins": uint64(joins)}); err != nil {
			t.Fatalf("report %d during the flood: %v", joins, err)
		}
		c.Close()
		joins++
		time.Sleep(10 * time.Millisecond)
	}

	var atOnce, waited int
	var slowestAtOnce float64
	for _, rs := range results {
		if len(rs) != perProc {
			t.Fatalf("a flood peer has %d answers, want %d", len(rs), perProc)
		}
		for _, r := range rs {
			if r.Code != proto.CodeNotACell {
				t.Fatalf("stranger got %+v, want not_a_cell", r)
			}
			if r.Ms >= float64(resolveWait.Milliseconds()) {
				waited++
			} else {
				atOnce++
				slowestAtOnce = max(slowestAtOnce, r.Ms)
			}
		}
	}
	if waited > opts.MaxPending {
		t.Errorf("%d strangers waited ResolveWait for a cell, want at most MaxPending = %d", waited, opts.MaxPending)
	}
	slices.Sort(dialMs)
	t.Logf("%d joins of the cell's agent during the flood, dial ms median %.2f, max %.2f; strangers: %d refused at once (slowest %.1f ms), %d after waiting for a cell",
		joins, dialMs[len(dialMs)/2], dialMs[len(dialMs)-1], atOnce, slowestAtOnce, waited)

	// Every refusal is counted, in a few events.
	var refused, delivered int
	deadline := time.After(10 * time.Second)
	for refused < procs*perProc {
		select {
		case e := <-th.events:
			if e.Kind == hub.EventRefused && e.Code == proto.CodeNotACell {
				refused += e.Count
				delivered++
			}
		case <-deadline:
			t.Fatalf("refusal events count %d connections, want %d", refused, procs*perProc)
		}
	}
	if refused != procs*perProc {
		t.Errorf("refusal events count %d connections, want %d", refused, procs*perProc)
	}
	// Per process: DefaultEventBurst as they happen and one summary in
	// each of at most two windows (the flood's, and the waiting one's
	// end), plus the waiting connection's own event.
	if limit := procs * (hub.DefaultEventBurst + 3); delivered > limit {
		t.Errorf("%d refusal events for %d refusals, want at most %d", delivered, refused, limit)
	}
	t.Logf("%d refusals in %d events", refused, delivered)
}

// TestLateCell: a cell's first process may connect before its cell is
// registered: it waits for it, outside the slots, while its process's
// other connections are refused at once.
func TestLateCell(t *testing.T) {
	var ready atomic.Bool
	var asked atomic.Int32
	r := resolverFunc(func(pid int) (string, bool) {
		asked.Add(1)
		return "late", pid == os.Getpid() && ready.Load()
	})
	th := startHub(t, r, hub.Options{ResolveWait: 5 * time.Second, MaxConns: 1})
	joined := make(chan error, 1)
	go func() {
		c, err := agent.DialUnix(context.Background(), th.path)
		if err == nil {
			if c.Cell() != "late" {
				err = fmt.Errorf("cell %q, want late", c.Cell())
			}
			c.Close()
		}
		joined <- err
	}()
	// Connections are admitted in turn: once the resolver was asked about
	// the first, it waits, and the next one of the process is refused at
	// once.
	waitFor(t, "the first connection is asked about", func() bool { return asked.Load() > 0 })
	second := dialRaw(t, th.path)
	if e := second.expectError(proto.CodeNotACell, true); !strings.Contains(e.Message, "waits for its cell") {
		t.Errorf("second connection's refusal %q, want one that says the first waits", e.Message)
	}
	ready.Store(true) // the economy registers the cell
	select {
	case err := <-joined:
		if err != nil {
			t.Fatalf("the late cell's agent: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the late cell's agent was not welcomed")
	}
}

type resolverFunc func(pid int) (string, bool)

func (f resolverFunc) CellForPID(pid int) (string, bool) { return f(pid) }

// TestReconnectSupersedes: an agent that closes and at once reconnects is
// always welcomed, never refused, and the host ends up with the last
// session's counters; an agent whose old connection is still open when it
// reconnects takes the cell over from it.
func TestReconnectSupersedes(t *testing.T) {
	const rounds = 300
	ctx := context.Background()

	t.Run("close then dial", func(t *testing.T) {
		th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{})
		var refused []string
		for i := range rounds {
			c, err := agent.DialUnix(ctx, th.path)
			if err != nil {
				refused = append(refused, err.Error())
				continue
			}
			if err := c.Report(ctx, map[string]uint64{"round": uint64(i)}); err != nil {
				t.Fatalf("round %d: Report: %v", i, err)
			}
			c.Close()
		}
		if len(refused) > 0 {
			t.Fatalf("%d of %d reconnects refused; first: %s", len(refused), rounds, refused[0])
		}
		waitFor(t, "last session's counters", func() bool {
			s := th.Snapshot()["cell-a"]
			return s.Counters["round"] == rounds-1 && !s.Connected
		})
	})

	t.Run("dial while open", func(t *testing.T) {
		th := startHub(t, &ownPID{name: "cell-a"}, hub.Options{})
		old, err := agent.DialUnix(ctx, th.path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rounds {
			c, err := agent.DialUnix(ctx, th.path)
			if err != nil {
				t.Fatalf("round %d: Dial beside an open connection: %v", i, err)
			}
			if err := c.Report(ctx, map[string]uint64{"round": uint64(i)}); err != nil {
				t.Fatalf("round %d: Report: %v", i, err)
			}
			err = old.Report(ctx, map[string]uint64{"round": 1 << 40})
			var pe *agent.ProtocolError
			if !errors.As(err, &pe) && !isClosedErr(err) {
				t.Fatalf("round %d: superseded connection's Report = %v, want superseded or closed", i, err)
			}
			if pe != nil && (pe.Code != proto.CodeSuperseded || !pe.Fatal) {
				t.Fatalf("round %d: superseded connection's Report = %v", i, err)
			}
			old.Close()
			old = c
		}
		if s := th.Snapshot()["cell-a"]; !s.Connected || s.Counters["round"] != rounds-1 {
			t.Errorf("Snapshot()[cell-a] = %+v, want the last session's round %d", s, rounds-1)
		}
		old.Close()
	})
}

// isClosedErr reports whether err is an I/O error of a connection the host
// closed (the superseded error may be lost when the agent writes first).
func isClosedErr(err error) bool {
	var pe *agent.ProtocolError
	return err != nil && !errors.As(err, &pe)
}

// TestPerCellLimit: one cell holds at most MaxConnsPerCell connections,
// handshakes included; other cells are not affected, and the cell gets in
// again once one of its connections is gone.
func TestPerCellLimit(t *testing.T) {
	th := startHub(t, byPID{own: "cell-a", others: "cell-b"}, hub.Options{MaxConnsPerCell: 2})
	silent1 := dialRaw(t, th.path) // in its handshake
	silent2 := dialRaw(t, th.path)
	_ = silent2
	third := dialRaw(t, th.path)
	if e := third.expectError(proto.CodeBusy, true); !strings.Contains(e.Message, "cell cell-a") {
		t.Errorf("busy message %q does not name the cell", e.Message)
	}
	third.expectClosed()

	// A real agent in another process, of another cell, joins.
	p := startPeer(t, "agent", th.path)
	if l := p.line(t); l != "cell-b" {
		t.Errorf("agent of another cell: %q, want cell-b", l)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("agent of another cell: %v", err)
	}

	silent1.conn.Close()
	for {
		e := th.waitEvent(t, hub.EventRefused)
		if e.Cell == "cell-a" && strings.Contains(e.Detail, "closed before hello") {
			break
		}
	}
	fourth := dialRaw(t, th.path)
	fourth.hello()
	fourth.send(`{"v":1,"type":"report","seq":1,"counters":{"n":1}}`)
	fourth.expectAck(1)
}

// TestAttachedNotSuperseded: a cell whose agent is attached through a
// link of its own (a microVM's port) keeps it: a socket connection of the
// cell is refused with already_connected.
func TestAttachedNotSuperseded(t *testing.T) {
	th := startHub(t, &ownPID{name: "vm-a"}, hub.Options{})
	host, guest := net.Pipe()
	defer guest.Close()
	done := make(chan error, 1)
	go func() { done <- th.Attach(context.Background(), host, "vm-a") }()
	g := &raw{t: t, conn: guest, rd: bufio.NewReader(guest)}
	g.hello()

	sock := dialRaw(t, th.path)
	sock.send(`{"v":1,"type":"hello"}`)
	sock.expectError(proto.CodeAlreadyConnected, true)
	sock.expectClosed()

	g.send(`{"v":1,"type":"report","seq":1,"counters":{"n":4}}`)
	g.expectAck(1)
	guest.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Attach = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Attach did not return")
	}
}

// BenchmarkRefuseStranger: what a connection from outside every cell
// costs the host, from connect to the not_a_cell it reads, while the
// process's first connection waits for its cell (so each is refused at
// once).
func BenchmarkRefuseStranger(b *testing.B) {
	var asked atomic.Int64
	th := startHub(b, resolverFunc(func(int) (string, bool) { asked.Add(1); return "", false }), hub.Options{ResolveWait: time.Minute})
	waiting, err := net.Dial("unix", th.path)
	if err != nil {
		b.Fatal(err)
	}
	defer waiting.Close()
	for deadline := time.Now().Add(5 * time.Second); asked.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // admitted in turn: once asked about, it waits
			b.Fatal("the first connection was not admitted within 5s")
		}
	}
	buf := make([]byte, 512)
	b.ResetTimer()
	for b.Loop() {
		c, err := net.Dial("unix", th.path)
		if err != nil {
			b.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil || !strings.Contains(string(buf[:n]), `"not_a_cell"`) {
			b.Fatalf("read %q, %v; want not_a_cell", buf[:n], err)
		}
		c.Close()
	}
}
