package qmp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell/vm/qmp"
)

// fakeQEMU plays QEMU's side of a QMP connection with handle, which gets
// each command and its id and writes what it likes. The real QEMU is
// driven by package vm's tests.
func fakeQEMU(t *testing.T, greeting string, handle func(w *bufio.Writer, cmd, id string)) net.Conn {
	t.Helper()
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		w := bufio.NewWriter(server)
		if greeting != "" {
			w.WriteString(greeting + "\r\n")
			w.Flush()
		}
		sc := bufio.NewScanner(server)
		for sc.Scan() {
			var req struct {
				Execute string `json:"execute"`
				ID      string `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &req) != nil {
				return
			}
			if req.Execute == "qmp_capabilities" {
				w.WriteString(`{"return": {}, "id": "` + req.ID + `"}` + "\r\n")
			} else {
				handle(w, req.Execute, req.ID)
			}
			w.Flush()
		}
	}()
	t.Cleanup(func() { client.Close() })
	return client
}

const greeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}`

func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func TestExecute(t *testing.T) {
	running := true
	conn := fakeQEMU(t, greeting, func(w *bufio.Writer, cmd, id string) {
		switch cmd {
		case "stop":
			// An event before the answer, as QEMU sends STOP.
			w.WriteString(`{"timestamp": {"seconds": 1, "microseconds": 5}, "event": "STOP"}` + "\r\n")
			running = false
			w.WriteString(`{"return": {}, "id": "` + id + `"}` + "\r\n")
		case "query-status":
			st := "paused"
			if running {
				st = "running"
			}
			b, _ := json.Marshal(map[string]any{"return": map[string]any{"running": running, "status": st}, "id": id})
			w.Write(append(b, '\r', '\n'))
		default:
			w.WriteString(`{"error": {"class": "CommandNotFound", "desc": "The command ` + cmd + ` has not been found"}, "id": "` + id + `"}` + "\r\n")
		}
	})
	c, err := qmp.NewClient(ctx(t, 5*time.Second), conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.Contains(c.Version(), `"major": 7`) {
		t.Errorf("Version() = %s", c.Version())
	}
	st, err := c.QueryStatus(ctx(t, 5*time.Second))
	if err != nil || !st.Running || st.Status != "running" {
		t.Fatalf("QueryStatus = %+v, %v", st, err)
	}
	if err := c.Execute(ctx(t, 5*time.Second), "stop", nil, nil); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case ev := <-c.Events():
		if ev.Name != "STOP" || !ev.At.Equal(time.Unix(1, 5000)) {
			t.Errorf("event = %+v, want STOP at 1.000005", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no STOP event")
	}
	if st, _ := c.QueryStatus(ctx(t, 5*time.Second)); st.Running || st.Status != "paused" {
		t.Errorf("after stop: %+v", st)
	}
	err = c.Execute(ctx(t, 5*time.Second), "frobnicate", map[string]int{"x": 1}, nil)
	var qe *qmp.Error
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Errorf("unknown command: %v, want a CommandNotFound *qmp.Error", err)
	}
}

func TestDeadlines(t *testing.T) {
	tests := []struct {
		name     string
		greeting string
		handle   func(w *bufio.Writer, cmd, id string)
		dial     bool // the failure is NewClient's
		want     error
	}{
		{name: "no greeting", dial: true, want: context.DeadlineExceeded},
		{name: "not QMP", greeting: `{"hello": "world"}`, dial: true, want: qmp.ErrGreeting},
		{name: "never answers", greeting: greeting, handle: func(*bufio.Writer, string, string) {}, want: context.DeadlineExceeded},
		{name: "garbage", greeting: greeting, handle: func(w *bufio.Writer, _, _ string) { w.WriteString("}}}\r\n") }, want: qmp.ErrClosed},
		{name: "oversized", greeting: greeting, handle: func(w *bufio.Writer, _, _ string) {
			w.WriteString(`{"return": "` + strings.Repeat("x", qmp.MaxLine) + `"}` + "\r\n")
		}, want: qmp.ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := fakeQEMU(t, tc.greeting, tc.handle)
			start := time.Now()
			c, err := qmp.NewClient(ctx(t, 300*time.Millisecond), conn)
			if tc.dial {
				if !errors.Is(err, tc.want) {
					t.Errorf("NewClient = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Execute(ctx(t, 300*time.Millisecond), "query-status", nil, nil)
			if !errors.Is(err, tc.want) {
				t.Errorf("Execute = %v, want %v", err, tc.want)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v: a deadline was not honoured", time.Since(start))
			}
		})
	}
}

// TestEventsNeverBlock: a client nobody reads events from keeps
// answering commands; the oldest events are dropped.
func TestEventsNeverBlock(t *testing.T) {
	conn := fakeQEMU(t, greeting, func(w *bufio.Writer, cmd, id string) {
		for range 1000 {
			w.WriteString(`{"event": "RTC_CHANGE", "data": {"offset": 1}}` + "\r\n")
		}
		w.WriteString(`{"return": {}, "id": "` + id + `"}` + "\r\n")
	})
	c, err := qmp.NewClient(ctx(t, 5*time.Second), conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Execute(ctx(t, 5*time.Second), "cont", nil, nil); err != nil {
		t.Fatalf("Execute behind 1000 unread events: %v", err)
	}
	if d := c.Dropped(); d == 0 {
		t.Error("Dropped() = 0 after 1000 unread events")
	}
}
