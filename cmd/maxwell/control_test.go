package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/api/apitest"
	"github.com/maxwellhq/maxwell/internal/life"
)

// runCtl runs a control command line as run does, first registering
// spawn, ps, fund and kill on the root command where root.go does not.
func runCtl(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	a := &app{}
	for _, mk := range []func(*app) *cobra.Command{newSpawnCmd, newPsCmd, newFundCmd, newKillCmd, newLogsCmd} {
		c := mk(a)
		if found, _, ferr := root.Find([]string{c.Name()}); ferr != nil || found == root {
			root.AddCommand(c)
		}
	}
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}

func TestControlCommands(t *testing.T) {
	b := &apitest.Backend{}
	sock := apitest.Serve(t, b)

	out, _, err := runCtl(t, "spawn", "--socket", sock, "--wallet", "50000", "--tap", "100", "--max-bid", "1500", "--units", "2",
		"--name", "crunch", "--cpus", "0-1,3", "--env", "A=1", "--env", "B=x=y", "--", "/bin/sleep", "-x", "60")
	if err != nil {
		t.Fatal(err)
	}
	if want := "spawned crunch (pid 1001, hybrid cell)\n"; out != want {
		t.Errorf("spawn printed %q, want %q", out, want)
	}
	wd, _ := os.Getwd()
	want := api.SpawnRequest{Name: "crunch", Argv: []string{"/bin/sleep", "-x", "60"}, Env: []string{"A=1", "B=x=y"}, Dir: wd,
		Wallet: 50000, TapRate: 100, TapCap: 50000, MaxBid: 1500, Units: 2, CPUs: []int{0, 1, 3}}
	if got := b.Spawned(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("daemon got %+v\nwant %+v", got, want)
	}

	// Flags stop at the command, so the command's own flags need no --.
	out, _, err = runCtl(t, "spawn", "--socket", sock, "--wallet", "7", "--json", "true", "--wallet", "9")
	if err != nil {
		t.Fatal(err)
	}
	var info api.CellInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Name != "cell-2" {
		t.Errorf("spawn --json printed %q (%v)", out, err)
	}
	if got := b.Spawned()[1]; !reflect.DeepEqual(got.Argv, []string{"true", "--wallet", "9"}) || got.Wallet != 7 {
		t.Errorf("second spawn: %+v", got)
	}

	if out, _, err = runCtl(t, "fund", "--socket", sock, "crunch", "2500"); err != nil || out != "funded crunch with 2500 credits\n" {
		t.Errorf("fund: %q, %v", out, err)
	}
	if out, _, err = runCtl(t, "kill", "--socket", sock, "cell-2"); err != nil || out != "killed cell-2\n" {
		t.Errorf("kill: %q, %v", out, err)
	}

	out, _, err = runCtl(t, "ps", "--socket", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("maxwell ps:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("ps printed %d lines, want header, column names and one live cell:\n%s", len(lines), out)
	}
	for _, want := range []string{"tick 9", "~61.5 °C", "setpoint 70.0 °C", "model rc-twin, estimated", "42.2 W (rapl package-0)", "reserve 1500", "clearing 1800", "×1.50"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("ps header %q lacks %q", lines[0], want)
		}
	}
	if f := strings.Fields(lines[1]); f[0] != "NAME" || f[len(f)-1] != "BACKEND" {
		t.Errorf("ps columns: %q", lines[1])
	}
	f := strings.Fields(lines[2])
	if f[0] != "crunch" || f[1] != "paused" || f[2] != "1001" || f[3] != "52500" {
		t.Errorf("ps row %q: want crunch paused 1001 52500…", lines[2])
	}
	if !strings.Contains(lines[2], "2×1500 (policy)") {
		t.Errorf("ps row %q lacks the standing bid", lines[2])
	}

	out, _, err = runCtl(t, "ps", "--socket", sock, "--all", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st api.State
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("ps --json: %v\n%s", err, out)
	}
	cells := st.Cells
	if len(cells) != 2 || cells[0].Balance != 52500 || cells[1].State != life.Dead {
		t.Errorf("ps --all --json: %+v", cells)
	}
	// The header's figures are there too.
	if st.Temperature.Celsius != 61.5 || st.Reserve != 1500 || st.Multiplier != 1.5 {
		t.Errorf("ps --json lacks the header: %+v", st)
	}
	out, _, err = runCtl(t, "ps", "--socket", sock, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Cells) != 1 {
		t.Errorf("ps --json without --all: %+v, %v", st.Cells, err)
	}
}

func TestControlCommandErrors(t *testing.T) {
	sock := apitest.Serve(t, &apitest.Backend{})
	if _, _, err := runCtl(t, "spawn", "--socket", sock, "--wallet", "5", "--name", "dup", "true"); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		name string
		args []string
		is   error
		msg  string
	}{
		{"no daemon", []string{"ps", "--socket", missing}, api.ErrNotRunning, "no maxwell daemon at " + missing + " (is `maxwell daemon` running?)"},
		{"no daemon to kill", []string{"kill", "--socket", missing, "a", "b"}, api.ErrNotRunning, "kill a: "},
		{"no wallet", []string{"spawn", "--socket", sock, "true"}, nil, "--wallet is required"},
		{"wallet after the command", []string{"spawn", "--socket", sock, "grep", "-r", "foo", "--wallet", "5"}, nil, "spawn's flags go before it"},
		{"help on nothing", []string{"help", "nosuch"}, nil, `no help topic "nosuch"`},
		{"a duration without a unit", []string{"demo", "--duration", "10"}, nil, "give a unit"},
		{"no command", []string{"spawn", "--socket", sock, "--wallet", "5"}, nil, "requires at least 1 arg"},
		{"negative wallet", []string{"spawn", "--socket", sock, "--wallet", "-5", "true"}, nil, `invalid argument "-5" for "--wallet" flag: want a whole number of credits`},
		{"bad cpus", []string{"spawn", "--socket", sock, "--wallet", "5", "--cpus", "x", "true"}, nil, "--cpus"},
		{"name taken", []string{"spawn", "--socket", sock, "--wallet", "5", "--name", "dup", "true"}, api.ErrExists, "dup"},
		{"oci not yet", []string{"spawn", "--socket", sock, "--wallet", "5", "--oci", "/srv/rootfs", "true"}, api.ErrUnsupported, "OCI"},
		{"fund nobody", []string{"fund", "--socket", sock, "nobody", "5"}, api.ErrNotFound, "fund nobody: no such cell"},
		{"fund zero", []string{"fund", "--socket", sock, "dup", "0"}, nil, "want a positive whole number"},
		{"fund words", []string{"fund", "--socket", sock, "dup", "lots"}, nil, `credits "lots"`},
		{"fund negative", []string{"fund", "--socket", sock, "dup", "-5"}, nil, "fund: credits -5: want a positive whole number"},
		{"kill no name", []string{"kill", "--socket", sock, ""}, api.ErrBadRequest, `cell name ""`},
		{"kill nobody", []string{"kill", "--socket", sock, "nobody"}, api.ErrNotFound, "kill nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCtl(t, tt.args...)
			if err == nil {
				t.Fatal("succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q lacks %q", err, tt.msg)
			}
		})
	}
	// Killing two missing cells on a missing daemon stops at the first.
	_, _, err := runCtl(t, "kill", "--socket", missing, "a", "b")
	if strings.Contains(err.Error(), "kill b") {
		t.Errorf("kill went on after the daemon was found missing: %v", err)
	}
}
