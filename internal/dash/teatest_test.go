package dash

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
)

// chanSource hands out the snapshots sent on ch; when ch is closed the
// daemon is gone.
type chanSource struct{ ch chan Snapshot }

func (c chanSource) Next(ctx context.Context) (Snapshot, error) {
	select {
	case <-ctx.Done():
		return Snapshot{}, ctx.Err()
	case s, ok := <-c.ch:
		if !ok {
			return Snapshot{}, errors.New("control socket closed")
		}
		return s, nil
	}
}

// runProgram runs the model in a real bubbletea program of the given
// size, feeds it one snapshot, waits until it is drawn and returns the
// test model and the source's channel.
func runProgram(t *testing.T, w, h int, want string) (*teatest.TestModel, chan Snapshot) {
	t.Helper()
	ch := make(chan Snapshot, 1)
	m := New(t.Context(), chanSource{ch}, &fakeActions{}, Options{Renderer: asciiRenderer()})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	ch <- testSnapshot()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(want)) },
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(5*time.Millisecond))
	return tm, ch
}

func finalView(t *testing.T, tm *teatest.TestModel) Model {
	t.Helper()
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
}

// TestProgram80x24 is the dashboard at the smallest common terminal.
func TestProgram80x24(t *testing.T) {
	tm, _ := runProgram(t, 80, 24, "EVENTS")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'q'}})
	m := finalView(t, tm)
	v := m.View()
	checkSize(t, v, 80, 24)
	golden.RequireEqual(t, []byte(v))
}

// TestProgramResize draws at 120×40, then the terminal shrinks to 80×24
// and grows to 100×30.
func TestProgramResize(t *testing.T) {
	tm, _ := runProgram(t, 120, 40, "EVENTS")
	tm.Send(tea.WindowSizeMsg{Width: 80, Height: 24})
	tm.Send(tea.WindowSizeMsg{Width: 100, Height: 30})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'q'}})
	v := finalView(t, tm).View()
	checkSize(t, v, 100, 30)
	golden.RequireEqual(t, []byte(v))
}

// TestProgramTooSmall is a 40×10 terminal.
func TestProgramTooSmall(t *testing.T) {
	tm, _ := runProgram(t, 40, 10, "terminal too small")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'q'}})
	v := finalView(t, tm).View()
	checkSize(t, v, 40, 10)
	golden.RequireEqual(t, []byte(v))
}

// TestProgramDaemonGone: the source fails, the program shows the banner
// and ends by itself.
func TestProgramDaemonGone(t *testing.T) {
	tm, ch := runProgram(t, 80, 24, "EVENTS")
	close(ch)
	m := finalView(t, tm)
	if m.Err() == nil || m.Err().Error() != "control socket closed" {
		t.Fatalf("Err() = %v", m.Err())
	}
	v := m.View()
	checkSize(t, v, 80, 24)
	golden.RequireEqual(t, []byte(v))
}
