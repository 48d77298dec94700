package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/identity"
)

// hostUsers makes real users and groups for a test with useradd and
// groupadd, and removes them when it ends.
type hostUsers struct {
	t      *testing.T
	suffix string
}

func newHostUsers(t *testing.T) *hostUsers {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it adds users")
	}
	for _, tool := range []string{"useradd", "groupadd", "userdel", "groupdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian's passwd package)", tool)
		}
	}
	return &hostUsers{t: t, suffix: strconv.Itoa(os.Getpid() % 1000000)}
}

func (h *hostUsers) run(name string, args ...string) {
	h.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		h.t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// group adds a group named base plus the test's suffix.
func (h *hostUsers) group(base string) string {
	name := base + h.suffix
	h.run("groupadd", name)
	h.t.Cleanup(func() { exec.Command("groupdel", name).Run() })
	return name
}

// user adds a user named base plus the suffix, in groups, without a home.
func (h *hostUsers) user(base string, groups ...string) identity.Identity {
	h.t.Helper()
	name := base + h.suffix
	args := []string{"--no-create-home", "--shell", "/usr/sbin/nologin"}
	if len(groups) > 0 {
		args = append(args, "-G", strings.Join(groups, ","))
	}
	h.run("useradd", append(args, name)...)
	h.t.Cleanup(func() { exec.Command("userdel", name).Run() })
	id, err := identity.Lookup(name)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// publicCopy copies the test binary where every user may run it, and
// returns the copy and its directory (0755).
func publicCopy(t *testing.T) (bin, dir string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "mxusers-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin = filepath.Join(dir, "maxwell")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin, dir
}

// asUser runs the maxwell binary bin as id (nil: as root) in dir and
// returns its combined output.
func asUser(t *testing.T, id *identity.Identity, bin, dir string, args ...string) (string, error) {
	t.Helper()
	return asUserEnv(t, id, nil, bin, dir, args...)
}

// asUserEnv is asUser with env added to the environment.
func asUserEnv(t *testing.T, id *identity.Identity, env []string, bin, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{envAsMain + "=1", "PATH=/usr/bin:/bin"}, env...)
	cmd.Dir = dir
	if id != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: id.Credential()}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// procIDs reads the real UID and the groups of pid from /proc.
func procIDs(t *testing.T, pid int) (uid int, groups []int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch k {
		case "Uid":
			uid, _ = strconv.Atoi(f[0])
		case "Groups":
			for _, g := range f {
				n, _ := strconv.Atoi(g)
				groups = append(groups, n)
			}
		}
	}
	return uid, groups
}

// TestLeastPrivilege runs a real daemon with a policy, and real users
// against it: a group member's cells run as that member, never as root; a
// user in no rule gets nothing; a process inside a cell cannot fund its
// own wallet and sees only its own row; no daemon environment reaches a
// cell; a non-root cell's agent reaches the agent socket; root's cells
// run as the policy's default user unless root names one.
func TestLeastPrivilege(t *testing.T) {
	h := newHostUsers(t)
	grp := h.group("mxag")
	alice := h.user("mxal", grp)
	bob := h.user("mxbo")
	bin, dir := publicCopy(t)
	out := filepath.Join(dir, "alice-out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(out, alice.UID, alice.GID); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf(`default_user: nobody
rules:
  - group: %s
    max_wallet_credits: 1000000000000
    max_cells: 3
`, grp)), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "control.sock")
	daemon := exec.Command(bin, "daemon", "--socket", sock, "--ledger", filepath.Join(dir, "ledger.db"),
		"--cgroup-parent", "mxlp-"+h.suffix, "--policy", policy)
	daemon.Env = append(os.Environ(), envAsMain+"=1", "MXSECRET=hush")
	var dlog bytes.Buffer
	daemon.Stdout, daemon.Stderr = &dlog, &dlog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- daemon.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			daemon.Process.Kill()
			<-done
			t.Errorf("the daemon did not stop in 20 s")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", dlog.String())
		}
	}()
	root, err := api.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx := context.Background()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if _, err := root.Ping(ctx); err == nil {
			break
		} else if time.Since(start) > 20*time.Second {
			t.Fatalf("the daemon did not answer in 20 s: %v\n%s", err, dlog.String())
		}
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("control socket: %v, %v; want 0666 (the policy decides)", fi.Mode(), err)
	}

	maxwell := func(id *identity.Identity, args ...string) (string, error) {
		return asUser(t, id, bin, dir, append(args, "--socket", sock)...)
	}
	// Flags after the command are the command's: put --socket first.
	spawn := func(id *identity.Identity, args ...string) (string, error) {
		return asUser(t, id, bin, dir, append([]string{"spawn", "--socket", sock}, args...)...)
	}

	// A cell of alice's tries to fund itself and reads the state from
	// inside, writing what it saw where alice may write.
	script := fmt.Sprintf(`exec >%[1]s/seen 2>&1
echo "uid=$(id -u) groups=$(id -G)"
env | sort
%[2]s fund lp-alice 1000 --socket %[3]s; echo "fund rc=$?"
%[2]s ps --all --json --socket %[3]s > %[1]s/ps.json; echo "ps rc=$?"
echo done
exec sleep 300`, out, bin, sock)
	if o, err := spawn(&alice, "--name", "lp-alice", "--wallet", "100000000000", "--max-bid", "100000000",
		"--env", envAsMain+"=1", "--", "/bin/sh", "-c", script); err != nil {
		t.Fatalf("alice's spawn: %v: %s", err, o)
	}
	seen := waitFile(t, filepath.Join(out, "seen"), "done", 30*time.Second)
	t.Logf("inside alice's cell:\n%s", seen)
	if !strings.Contains(seen, fmt.Sprintf("uid=%d groups=", alice.UID)) {
		t.Errorf("alice's cell does not run as alice (uid %d)", alice.UID)
	}
	gid, _ := identity.LookupGroup(grp)
	for _, line := range strings.Split(seen, "\n") {
		if g, ok := strings.CutPrefix(line, fmt.Sprintf("uid=%d groups=", alice.UID)); ok {
			if gs := strings.Fields(g); !slices.Contains(gs, strconv.Itoa(gid)) || slices.Contains(gs, "0") {
				t.Errorf("alice's cell has groups %v, want hers (%d among them), not root's", gs, gid)
			}
		}
	}
	for _, want := range []string{"USER=" + alice.Name, "HOME=" + alice.Home, "PATH=/usr/local/sbin:", "MAXWELL_AGENT_SOCKET="} {
		if !strings.Contains(seen, want) {
			t.Errorf("the cell's environment lacks %s", want)
		}
	}
	if strings.Contains(seen, "MXSECRET") {
		t.Errorf("the daemon's environment leaked into the cell")
	}
	if !strings.Contains(seen, "fund rc=1") || !strings.Contains(seen, "may only read its own wallet") {
		t.Errorf("a cell funded itself, or was refused unclearly")
	}
	var inside api.State
	if b, err := os.ReadFile(filepath.Join(out, "ps.json")); err != nil || json.Unmarshal(b, &inside) != nil {
		t.Errorf("ps from inside the cell: %v: %s", err, b)
	} else if len(inside.Cells) != 1 || inside.Cells[0].Name != "lp-alice" {
		t.Errorf("the cell saw %d rows, want its own only: %+v", len(inside.Cells), inside.Cells)
	}
	st, err := root.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mine api.Cell
	for _, c := range st.Cells {
		if c.Name == "lp-alice" {
			mine = c
		}
	}
	if mine.OwnerUID != alice.UID || mine.User != alice.Name || mine.Endowment != 100000000000 {
		t.Errorf("alice's cell: owner %d, user %q, endowment %d; want owner %d, user %s, unfunded", mine.OwnerUID, mine.User, mine.Endowment, alice.UID, alice.Name)
	}
	if uid, _ := procIDs(t, mine.PID); uid != alice.UID {
		t.Errorf("/proc says alice's cell runs as uid %d", uid)
	}

	// Alice may not become root, nor exceed her rule.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--wallet", "1", "--user", "root", "--", "/bin/true"}, "only root may run cells as root"},
		{[]string{"--wallet", "1", "--user", "0", "--", "/bin/true"}, "only root may run cells as root"},
		{[]string{"--wallet", "1", "--user", "nobody", "--", "/bin/true"}, "run_as does not name it"},
		{[]string{"--wallet", "1000000000001", "--", "/bin/true"}, "max_wallet_credits"},
		{[]string{"--wallet", "1", "--tap", "5", "--", "/bin/true"}, "allows no tap"},
	} {
		if o, err := spawn(&alice, tt.args...); err == nil || !strings.Contains(o, tt.want) {
			t.Errorf("alice: spawn %v: %v: %q, want refused: %s", tt.args, err, o, tt.want)
		}
	}
	if o, err := maxwell(&alice, "fund", "lp-alice", "5"); err == nil || !strings.Contains(o, "does not allow funding") {
		t.Errorf("alice funds her cell without fund: true: %v: %q", err, o)
	}

	// Bob is in no rule: he connects (the socket is 0666) and gets nothing.
	if o, err := maxwell(&bob, "ps"); err == nil || !strings.Contains(o, "may not use this daemon") {
		t.Errorf("bob: ps: %v: %q", err, o)
	}
	if o, err := spawn(&bob, "--wallet", "1", "--", "/bin/true"); err == nil || !strings.Contains(o, "may not use this daemon") {
		t.Errorf("bob: spawn: %v: %q", err, o)
	}

	// Root's cells run as the policy's default user, or as named.
	nobody, _ := identity.Lookup("nobody")
	for _, tt := range []struct {
		name, user string
		uid        int
	}{{"roots-default", "", nobody.UID}, {"roots-root", "0", 0}} {
		req := api.SpawnRequest{Name: tt.name, Argv: []string{"/bin/sleep", "300"}, Wallet: 1_000_000_000, MaxBid: 1, Units: 1, User: tt.user, Dir: "/"}
		info, err := root.Spawn(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if uid, _ := procIDs(t, info.PID); uid != tt.uid {
			t.Errorf("root's cell %s runs as uid %d, want %d", tt.name, uid, tt.uid)
		}
	}
	if o, err := maxwell(&alice, "kill", "roots-root"); err == nil || !strings.Contains(o, "not theirs") {
		t.Errorf("alice kills root's cell: %v: %q", err, o)
	}

	// Alice's agent reaches the agent socket from a cell of hers.
	if o, err := spawn(&alice, "--name", "lp-sci", "--wallet", "100000000000", "--env", envAsMain+"=1",
		"--", bin, "agent", "scientist", "--threads", "1"); err != nil {
		t.Fatalf("alice's scientist: %v: %s", err, o)
	}
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		st, err := root.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := cellNamed(st, "lp-sci"); ok && c.Useful != nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("alice's scientist never reported over the agent socket")
		}
	}
	if o, err := maxwell(&alice, "kill", "lp-sci"); err != nil {
		t.Errorf("alice kills her own cell: %v: %q", err, o)
	}
}

func cellNamed(st api.State, name string) (api.Cell, bool) {
	for _, c := range st.Cells {
		if c.Name == name {
			return c, true
		}
	}
	return api.Cell{}, false
}

// waitFile waits until path holds marker and returns its contents.
func waitFile(t *testing.T, path, marker string, d time.Duration) string {
	t.Helper()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), marker) {
			return string(b)
		}
		if time.Since(start) > d {
			t.Fatalf("%s never said %q in %v; it holds:\n%s", path, marker, d, b)
		}
	}
}
