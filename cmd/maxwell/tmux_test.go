package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tmux drives one tmux session on a private server socket.
type tmux struct {
	t       *testing.T
	sock    string
	session string
}

func newTmux(t *testing.T, width, height int) *tmux {
	t.Helper()
	x := &tmux{t: t, sock: filepath.Join(t.TempDir(), "tmux.sock"), session: "demo"}
	// No user configuration; a plain shell; the size asked for.
	x.run("-f", "/dev/null", "new-session", "-d", "-s", x.session, "-x", strconv.Itoa(width), "-y", strconv.Itoa(height), "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=xterm-256color PS1='$ ' sh")
	t.Cleanup(func() { exec.Command("tmux", "-S", x.sock, "kill-server").Run() })
	return x
}

func (x *tmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", x.sock}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// keys types keys into the pane (tmux key names, e.g. "Enter", "q").
func (x *tmux) keys(keys ...string) {
	x.run(append([]string{"send-keys", "-t", x.session}, keys...)...)
}

// capture returns the pane's lines as they are shown.
func (x *tmux) capture() []string {
	return strings.Split(strings.TrimRight(x.run("capture-pane", "-p", "-t", x.session), "\n"), "\n")
}

// history returns the pane's lines and the scrollback above them.
func (x *tmux) history() []string {
	return strings.Split(strings.TrimRight(x.run("capture-pane", "-p", "-S", "-500", "-t", x.session), "\n"), "\n")
}

// waitFor captures the pane until ok holds, or fails after d.
func (x *tmux) waitFor(what string, d time.Duration, ok func(lines []string) bool) []string {
	x.t.Helper()
	deadline := time.Now().Add(d)
	for {
		lines := x.capture()
		if ok(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("timed out waiting for %s; the pane shows:\n%s", what, strings.Join(lines, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// TestDemoInTmux runs `maxwell demo` in a real terminal, as a person meets
// it, at 80×24 and 120×40: the dashboard must own the screen (every panel
// drawn once, nothing else written over it), ? shows the help, q ends the
// demo with status 0, the terminal comes back and the prompt works.
func TestDemoInTmux(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (Debian package tmux; .ci/run installs it)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "cool.yaml") // see testDemo
	if err := os.WriteFile(cfg, []byte("engine:\n  setpoint_celsius: 80\n  critical_celsius: 95\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			w, h := size[0], size[1]
			x := newTmux(t, w, h)
			out := filepath.Join(t.TempDir(), "demo")
			x.keys(fmt.Sprintf("%s=1 %s --config %s demo --duration 120s --out %s; echo EXIT=$?", envAsMain, exe, cfg, out), "Enter")
			x.waitFor("the dashboard's first snapshot", 60*time.Second, func(l []string) bool {
				return contains(l, "WALLETS") && contains(l, "scientist") && contains(l, "miner")
			})
			for i := range 5 {
				lines := x.capture()
				if len(lines) != h {
					t.Errorf("capture %d: %d lines on a %d-line terminal", i, len(lines), h)
				}
				if !strings.HasPrefix(lines[0], "maxwell  tick") {
					t.Errorf("capture %d: the first line is %q, not the header", i, lines[0])
				}
				if last := lines[len(lines)-1]; !strings.HasPrefix(last, "? help") || !strings.Contains(last, "log "+out) {
					t.Errorf("capture %d: the status line is %q", i, last)
				}
				for _, panel := range []string{"THERMAL", "PRICE", "WALLETS", "AUCTION", "EVENTS"} {
					n := 0
					for _, l := range lines {
						if strings.Contains(l, panel) && !strings.Contains(l, "agent") {
							n++
						}
					}
					if n != 1 {
						t.Errorf("capture %d: panel %s drawn %d times:\n%s", i, panel, n, strings.Join(lines, "\n"))
					}
				}
				for _, l := range lines {
					if strings.Contains(l, "level=") || strings.Contains(l, "msg=") || strings.HasPrefix(l, "maxwell:") {
						t.Errorf("capture %d: a stray line over the dashboard: %q", i, l)
					}
				}
				time.Sleep(700 * time.Millisecond)
			}
			x.keys("?")
			x.waitFor("the help", 10*time.Second, func(l []string) bool { return contains(l, "KEYS") && contains(l, "show or hide this help") })
			x.keys("?")
			x.waitFor("the tables again", 10*time.Second, func(l []string) bool { return contains(l, "WALLETS") })
			x.keys("q")
			exited := func(l []string) bool {
				for _, s := range l {
					if strings.HasPrefix(s, "EXIT=") {
						return true
					}
				}
				return false
			}
			lines := x.waitFor("the demo's exit", 60*time.Second, exited)
			if !slices.Contains(lines, "EXIT=0") {
				t.Errorf("the demo did not exit with status 0:\n%s", strings.Join(lines, "\n"))
			}
			// The terminal is back: the summary is printed as tables with
			// named counters, the dashboard is gone, the prompt works.
			lines = x.history()
			for _, want := range []string{"counters, as each agent last reported them:", "log: " + out + "/maxwell.log"} {
				if !contains(lines, want) {
					t.Errorf("no %q after the demo:\n%s", want, strings.Join(lines, "\n"))
				}
			}
			if contains(lines, "THERMAL") || contains(lines, "map[") {
				t.Errorf("the dashboard or Go syntax is left on the terminal:\n%s", strings.Join(lines, "\n"))
			}
			x.keys("echo ready-$((40+2))", "Enter")
			x.waitFor("a working prompt", 10*time.Second, func(l []string) bool { return contains(l, "ready-42") })
			if _, err := os.Stat(filepath.Join(out, "summary.json")); err != nil {
				t.Errorf("no run directory: %v", err)
			}
		})
	}
}
