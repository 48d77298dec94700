package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// readChildEnv, when set in the environment, makes the test binary a
// reader: it opens the ledger at the path it holds read-only, verifies it
// and prints "ok", or prints the error and exits 1.
const readChildEnv = "MAXWELL_LEDGER_READ_CHILD"

func readChild(path string) int {
	ctx := context.Background()
	l, err := Open(ctx, path, Options{ReadOnly: true})
	if err == nil {
		var rep Report
		rep, err = l.Verify(ctx)
		if err == nil && !rep.OK {
			err = fmt.Errorf("verify: %v", rep.Problems)
		}
		l.Close()
	}
	if err != nil {
		fmt.Printf("%v (ErrAccess: %t)\n", err, errors.Is(err, ErrAccess))
		return 1
	}
	fmt.Println("ok")
	return 0
}

// TestReadAccess runs a reader as the user nobody against a ledger root
// wrote: it cannot read one only root may (the error names the file, its
// mode and who may); it can read one its group may read while a writer
// holds it open, but not once none does and SQLite would have to create
// the shared-memory index in a directory it may not write (the error says
// so).
func TestReadAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the reader runs as the user nobody, which only root can start")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody to read as: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	ctx := t.Context()
	dir := t.TempDir()
	// nobody must reach the directory and run a copy of this binary.
	for d := dir; strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "ledger.test")
	copyFile(t, exe)
	path := filepath.Join(dir, "ledger.db")
	w, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.OpenWallet(ctx, "open/cell:a", 0, WalletSpec{Name: "a", Endowment: 10}); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), readChildEnv+"="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	group := func(g int) {
		for _, s := range []string{"", "-wal", "-shm", ".lock"} {
			if err := os.Chown(path+s, 0, g); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		setup func()
		want  []string
	}{
		{"only root may read it", func() { group(0) },
			[]string{"ErrAccess: true", "cannot read " + path, "-rw-r----- (0640), owner root", "read it as root or as a member of group"}},
		{"its group may, while a writer has it open", func() { group(gid) }, []string{"ok"}},
		{"its group may, with no writer", func() { w.Close(); group(gid) },
			[]string{"ErrAccess: true", "while no writer has it open", "create ledger.db-shm", "is not writable to you", "read it while the daemon runs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			got := read()
			t.Logf("as nobody: %s", got)
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("the reader said %q, want %q in it", got, want)
				}
			}
		})
	}
}

// copyFile copies this test binary to name, mode 0755.
func copyFile(t *testing.T, name string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
