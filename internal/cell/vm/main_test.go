package vm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/vm"
)

// Roles the test binary plays when a test re-executes it.
const (
	roleEnv   = "MAXWELL_VM_TEST_ROLE"
	parentEnv = "MAXWELL_VM_TEST_PARENT"
	stateEnv  = "MAXWELL_VM_TEST_STATE"
	kernelEnv = "MAXWELL_VM_TEST_KERNEL_FILE"
	initrdEnv = "MAXWELL_VM_TEST_INITRD_FILE"

	roleFakeHost = "fakehost" // start a VM, report it, idle until killed
)

func TestMain(m *testing.M) {
	cell.RunShimIfRequested()
	if os.Getenv(roleEnv) == roleFakeHost {
		os.Exit(fakeHost())
	}
	os.Exit(m.Run())
}

// fakeHostReport is what the fake host prints once its VM has booted.
type fakeHostReport struct {
	QEMU  int      `json:"qemu"`
	Dirs  []string `json:"dirs"`
	Error string   `json:"error,omitempty"`
}

// fakeHost plays a Maxwell host that gets SIGKILLed: it starts a microVM
// cell running a busy loop, waits until it has booted, prints a
// fakeHostReport line, and idles until killed.
func fakeHost() int {
	report := func(r fakeHostReport) {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
	co := cell.DefaultOptions()
	co.Parent = os.Getenv(parentEnv)
	cm, err := cell.NewManager(co)
	if err != nil {
		report(fakeHostReport{Error: err.Error()})
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vmm, err := vm.NewManager(ctx, cm, vm.Options{
		Kernel: os.Getenv(kernelEnv), Initrd: os.Getenv(initrdEnv),
		Accel: vm.AccelTCG, StateDir: os.Getenv(stateEnv),
	})
	if err != nil {
		report(fakeHostReport{Error: err.Error()})
		return 1
	}
	c, err := vmm.Start(ctx, cell.Spec{Name: "victim", Path: "/bin/sh", Args: []string{"-c", "while :; do :; done"}})
	if err != nil {
		report(fakeHostReport{Error: err.Error()})
		return 1
	}
	if err := c.(*vm.Machine).WaitBooted(ctx); err != nil {
		report(fakeHostReport{Error: err.Error()})
		return 1
	}
	report(fakeHostReport{QEMU: c.PID(), Dirs: cgroupDirs(co.CgroupRoot, co.Parent, "victim")})
	select {}
}

// cgroupDirs lists the directories a cell named name has under parent in
// every hierarchy mounted below root.
func cgroupDirs(root, parent, name string) []string {
	var out []string
	for _, d := range []string{filepath.Join(root, parent, name)} {
		if _, err := os.Stat(d); err == nil {
			out = append(out, d)
		}
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		d := filepath.Join(root, e.Name(), parent, name)
		if _, err := os.Stat(d); err == nil {
			out = append(out, d)
		}
	}
	return out
}

var parentSeq atomic.Int64

// testParent returns a cgroup parent of this test's own.
func testParent() string {
	return fmt.Sprintf("mxvmtest-%d-%d", os.Getpid(), parentSeq.Add(1))
}
