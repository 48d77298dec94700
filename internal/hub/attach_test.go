package hub_test

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/agent/proto"
	"github.com/maxwellhq/maxwell/internal/hub"
)

// attached is a hub serving one end of a pipe through Attach, as the host
// end of a microVM's serial port; the test drives the other end.
type attached struct {
	*hub.Hub
	r      *raw
	events chan hub.Event
	done   chan error
	cancel context.CancelFunc
}

func attach(t *testing.T, opts hub.Options) *attached {
	t.Helper()
	host, guest := net.Pipe()
	a := &attached{events: make(chan hub.Event, 100), done: make(chan error, 1)}
	opts.Now = func() time.Time { return epoch }
	opts.OnEvent = func(e hub.Event) { a.events <- e }
	// No listener: a hub that serves only attached links.
	ln, err := net.Listen("unix", sockDir(t)+"/unused.sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	a.Hub = hub.New(ln, noCell{}, opts)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() { a.done <- a.Attach(ctx, host, "vm-a") }()
	t.Cleanup(func() {
		cancel()
		guest.Close()
		select {
		case <-a.done:
		case <-time.After(5 * time.Second):
			t.Error("Attach did not return within 5s of cancel")
		}
	})
	a.r = &raw{t: t, conn: guest, rd: bufio.NewReader(guest)}
	return a
}

// result waits for Attach to return.
func (a *attached) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Attach did not return within 5s")
		return nil
	}
}

func TestAttachSession(t *testing.T) {
	a := attach(t, hub.Options{})
	r := a.r
	r.send("") // a serial agent's resync newline
	r.send(`{"v":1,"type":"hello","kind":"scientist","name":"claims-to-be-vm-b"}`)
	w, ok := r.next().(*proto.Welcome)
	if !ok || w.Cell != "vm-a" {
		t.Fatalf("welcome = %#v, want cell vm-a (the link's, not the message's)", w)
	}
	r.send(`{"v":1,"type":"report","seq":1,"counters":{"primes":7}}`)
	r.expectAck(1)
	r.send("")
	r.send(`{"v":1,"type":"report","seq":2,"counters":{"primes":9}}`)
	r.expectAck(2)
	if got, _, ok := a.Counters("vm-a"); !ok || !maps.Equal(got, map[string]uint64{"primes": 9}) {
		t.Errorf("Counters = %v, %v", got, ok)
	}

	// The agent restarts in the guest: no EOF on a serial link, just a
	// new hello, and its counters start over.
	r.send(`{"v":1,"type":"hello","kind":"scientist"}`)
	if _, ok := r.next().(*proto.Welcome); !ok {
		t.Fatal("no welcome for the restarted agent")
	}
	r.send(`{"v":1,"type":"report","seq":1,"counters":{"primes":1}}`)
	r.expectAck(1)
	if got, _, _ := a.Counters("vm-a"); got["primes"] != 1 {
		t.Errorf("Counters after restart = %v, want primes 1", got)
	}

	r.conn.Close() // the VM ended
	if err := a.result(t); err != nil {
		t.Errorf("Attach = %v, want nil when the link closes", err)
	}
	var kinds []hub.EventKind
	for len(a.events) > 0 {
		kinds = append(kinds, (<-a.events).Kind)
	}
	want := []hub.EventKind{hub.EventConnected, hub.EventDisconnected, hub.EventConnected, hub.EventDisconnected}
	if !equalKinds(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
}

func equalKinds(a, b []hub.EventKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestAttachFaults: each way a guest can misbehave ends the session with
// the agent's fault, which the VM manager turns into the cell's end.
func TestAttachFaults(t *testing.T) {
	tests := []struct {
		name string
		opts hub.Options
		// drive plays the guest; it returns once the host must have
		// given up.
		drive func(r *raw)
		code  proto.Code // want a *proto.Error with this code
		stall bool       // want ErrStalled
	}{
		{
			name:  "never speaks",
			opts:  hub.Options{HandshakeTimeout: 100 * time.Millisecond},
			drive: func(r *raw) { r.expectError(proto.CodeTimeout, true) },
			code:  proto.CodeTimeout,
		},
		{
			name: "blank lines are not a hello",
			opts: hub.Options{HandshakeTimeout: 200 * time.Millisecond},
			drive: func(r *raw) {
				for range 20 {
					r.send("")
				}
				r.expectError(proto.CodeTimeout, true)
			},
			code: proto.CodeTimeout,
		},
		{
			name: "garbage",
			opts: hub.Options{MaxErrors: 4},
			drive: func(r *raw) {
				r.hello()
				for i := range 4 {
					r.send("\x00\xffnot json")
					r.expectError(map[bool]proto.Code{false: proto.CodeMalformed, true: proto.CodeTooManyErrors}[i == 3], i == 3)
				}
			},
			code: proto.CodeTooManyErrors,
		},
		{
			name: "flood without newline",
			drive: func(r *raw) {
				r.hello()
				chunk := strings.Repeat("x", 8192)
				go func() {
					for range proto.MaxLine/len(chunk) + 2 {
						if _, err := r.conn.Write([]byte(chunk)); err != nil {
							return
						}
					}
				}()
				r.expectError(proto.CodeOversized, true)
			},
			code: proto.CodeOversized,
		},
		{
			name: "silent after hello",
			opts: hub.Options{IdleTimeout: 100 * time.Millisecond},
			drive: func(r *raw) {
				r.hello()
				r.expectError(proto.CodeTimeout, true)
			},
			code: proto.CodeTimeout,
		},
		{
			name: "stops reading",
			opts: hub.Options{WriteTimeout: 100 * time.Millisecond},
			drive: func(r *raw) {
				r.send(`{"v":1,"type":"hello"}`)
				// Never reads the welcome: net.Pipe has no buffer.
			},
			stall: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := attach(t, tc.opts)
			tc.drive(a.r)
			err := a.result(t)
			var pe *proto.Error
			switch {
			case tc.stall:
				if !errors.Is(err, hub.ErrStalled) {
					t.Errorf("Attach = %v, want ErrStalled", err)
				}
			case !errors.As(err, &pe) || pe.Code != tc.code:
				t.Errorf("Attach = %v, want a *proto.Error %s", err, tc.code)
			}
		})
	}
}

func TestAttachAfterShutdown(t *testing.T) {
	th := startHub(t, noCell{}, hub.Options{})
	th.stop(t)
	host, guest := net.Pipe()
	defer guest.Close()
	if err := th.Attach(context.Background(), host, "vm-a"); !errors.Is(err, hub.ErrHubClosed) {
		t.Errorf("Attach after shutdown = %v, want ErrHubClosed", err)
	}
}
