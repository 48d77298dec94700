package vm_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell/vm/vmtest"
	"github.com/maxwellhq/maxwell/internal/cgroupfs"
)

// TestGuardKillsVMMAfterHostSIGKILL runs the test binary as a fake host
// that boots a busy microVM, SIGKILLs the host, and checks that the cell
// guard kills QEMU and removes its cgroups, and that no socket is left
// (the host removed them once connected).
func TestGuardKillsVMMAfterHostSIGKILL(t *testing.T) {
	vmtest.NeedRoot(t)
	img := vmtest.Image(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	state, err := os.MkdirTemp("", "vm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(state)
	parent := testParent()
	defer func() {
		for _, d := range cgroupDirs("/sys/fs/cgroup", parent, "") {
			os.Remove(d)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	host := exec.Command(exe)
	host.Env = append(os.Environ(), roleEnv+"="+roleFakeHost, parentEnv+"="+parent, stateEnv+"="+state,
		kernelEnv+"="+img.Kernel, initrdEnv+"="+img.Initrd)
	var stderr bytes.Buffer
	host.Stderr = &stderr
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		lines <- l
	}()
	var r fakeHostReport
	select {
	case l := <-lines:
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Error != "" {
			host.Process.Kill()
			host.Wait()
			t.Fatalf("fake host said %q (%v); stderr:\n%s", l, err, stderr.String())
		}
	case <-ctx.Done():
		host.Process.Kill()
		host.Wait()
		t.Fatalf("fake host never reported; stderr:\n%s", stderr.String())
	}
	if r.QEMU <= 0 || len(r.Dirs) == 0 {
		t.Fatalf("fake host report %+v: no QEMU pid or cgroup", r)
	}
	if err := syscall.Kill(r.QEMU, 0); err != nil {
		t.Fatalf("QEMU %d not running before the host died: %v", r.QEMU, err)
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("state directory holds %v while the VM runs; want nothing (sockets removed once connected)", ents)
	}

	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	host.Wait()
	err = cgroupfs.Poll(ctx, func() (bool, error) {
		if syscall.Kill(r.QEMU, 0) == nil {
			return false, nil
		}
		for _, d := range r.Dirs {
			if cgroupfs.Exists(d) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("after the host's SIGKILL: QEMU %d alive: %v, cgroups %v: %v; host stderr:\n%s",
			r.QEMU, syscall.Kill(r.QEMU, 0) == nil, cgroupDirs("/sys/fs/cgroup", parent, "victim"), err, stderr.String())
	}
}
