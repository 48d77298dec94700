package economy_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell/vm"
	"github.com/maxwellhq/maxwell/internal/cell/vm/vmtest"
	"github.com/maxwellhq/maxwell/internal/cgroupfs"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/sensors"
)

// vmEconomy runs an economy of the test's own, on one CPU. At cleanup it stops the economy and checks
// that no microVM state or cgroup is left.
func vmEconomy(t *testing.T) *economy.Economy {
	t.Helper()
	vmtest.NeedRoot(t)
	cfg := config.Default()
	cfg.Engine.SetpointCelsius, cfg.Engine.CriticalCelsius = 90, 99 // out of the thermal price's way
	// Socket paths are limited to 108 bytes: a short state directory.
	dir, err := os.MkdirTemp("", "econvm")
	if err != nil {
		t.Fatal(err)
	}
	parent := "maxwell-test-econvm-" + strconv.Itoa(os.Getpid())
	econ, err := economy.Open(context.Background(), economy.Options{
		Config: cfg, Roots: sensors.HostRoots(), CgroupRoot: "/sys/fs/cgroup", CellParent: parent,
		AgentSocket: filepath.Join(dir, "agent.sock"), LedgerPath: filepath.Join(dir, "ledger.db"),
		LogDir: filepath.Join(dir, "logs"), CPUs: []int{0},
	})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- econ.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("economy: %v", err)
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, "vm")); len(ents) > 0 {
			t.Errorf("microVM state left after the economy stopped: %v", ents)
		}
		// The economy keeps a dead cell's cgroups until it stops.
		left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", parent, "*"))
		more, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", parent, "*"))
		var dirs []string
		for _, d := range append(left, more...) {
			if dirExists(d) {
				dirs = append(dirs, d)
			}
		}
		if len(dirs) > 0 {
			t.Errorf("cgroups left after the economy stopped: %v", dirs)
		}
		os.RemoveAll(dir)
	})
	return econ
}

// cellRow returns the named cell's row of the economy's state.
func cellRow(t *testing.T, econ *economy.Economy, name string) api.Cell {
	t.Helper()
	st, err := econ.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Cells {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no cell %s in the state", name)
	return api.Cell{}
}

// processCPU returns the CPU time of process pid (all its threads) from
// /proc/PID/stat.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces: fields count from its ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// TestVMCellUnderTheEconomy spawns the Scientist in a microVM through the
// economy's own Spawn: its reports reach the economy's hub over the VM's
// virtio-serial port, under the cell's name; an operator's pause stops
// the VMM's CPU time and the reports, resume starts both again; the kill
// switch ends the VM and its QEMU; once the economy stops, no cgroup or
// socket is left.
func TestVMCellUnderTheEconomy(t *testing.T) {
	img := vmtest.Image(t)
	econ := vmEconomy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := econ.Spawn(ctx, api.SpawnRequest{
		Name: "sci", Argv: []string{img.Maxwell, "agent", "scientist", "--report-interval", "200ms", "--threads", "1"},
		Wallet: 1 << 40, MaxBid: 1 << 20, Units: 1,
		VM: &api.VMRequest{Kernel: img.Kernel, Initrd: img.Initrd, MemoryMiB: 320},
	})
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	if !strings.HasPrefix(info.Backend, vm.BackendQEMU+"/") {
		t.Errorf("backend %q, want %s/kvm or /tcg", info.Backend, vm.BackendQEMU)
	}
	primes := func() uint64 { return cellRow(t, econ, "sci").Counters["primes"] }
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return primes() > 1000, nil }); err != nil {
		t.Fatalf("no reports from the Scientist in the VM: %v; row %+v", err, cellRow(t, econ, "sci"))
	}
	if u := cellRow(t, econ, "sci").Useful; u == nil || u.Counter != "primes" {
		t.Errorf("useful work declared over the serial port: %+v, want primes", u)
	}

	if err := econ.Pause(ctx, "sci"); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // a report in flight lands
	const window = 1500 * time.Millisecond
	cpu0, p0 := processCPU(t, info.PID), primes()
	time.Sleep(window)
	paused, p1 := processCPU(t, info.PID)-cpu0, primes()
	if paused > window/10 {
		t.Errorf("paused VM's QEMU used %v of CPU in %v", paused, window)
	}
	if p1 != p0 {
		t.Errorf("primes went from %d to %d while paused", p0, p1)
	}
	if err := econ.Resume(ctx, "sci"); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the next tick's auction thaws it
	cpu1 := processCPU(t, info.PID)
	time.Sleep(window)
	running := processCPU(t, info.PID) - cpu1
	// A loaded host (CI runs other packages' tests beside this one) gives
	// QEMU less than a whole CPU: well above the paused figure is enough.
	if running < window/5 {
		t.Errorf("resumed VM's QEMU used only %v of CPU in %v", running, window)
	}
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return primes() > p1, nil }); err != nil {
		t.Errorf("no new report after Resume: %v", err)
	}
	t.Logf("QEMU's CPU time in %v: %v paused, %v resumed", window, paused, running)

	if err := econ.Kill(ctx, "sci"); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if row := cellRow(t, econ, "sci"); row.State != life.Dead {
		t.Errorf("after Kill: %s", row.State)
	}
	checkGone(t, ctx, info.PID)
}

// TestVMCellFaults: what the economy does with microVM spawns that cannot
// work, or guests that misbehave: a missing kernel or an absent VMM is
// the spawn's error and nothing is admitted; a guest that sends garbage
// on its agent port dies with the hub's reason as its cause.
func TestVMCellFaults(t *testing.T) {
	img := vmtest.Image(t)
	econ := vmEconomy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	missing := filepath.Join(t.TempDir(), "vmlinuz")
	_, err := econ.Spawn(ctx, api.SpawnRequest{Name: "nokernel", Argv: []string{"/bin/true"}, Wallet: 1000,
		VM: &api.VMRequest{Kernel: missing, Initrd: img.Initrd}})
	if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), missing) {
		t.Errorf("spawn with a missing kernel: %v, want a bad request naming it", err)
	}
	if _, lerr := exec.LookPath("firecracker"); lerr != nil {
		_, err = econ.Spawn(ctx, api.SpawnRequest{Name: "nofc", Argv: []string{"/bin/sh"}, Wallet: 1000,
			VM: &api.VMRequest{VMM: vm.VMMFirecracker, Kernel: img.Kernel, RootFS: img.Initrd}})
		if !errors.Is(err, api.ErrUnsupported) || !strings.Contains(err.Error(), "no firecracker in PATH") {
			t.Errorf("spawn --vmm firecracker without its binary: %v, want unsupported, naming it", err)
		}
	}
	st, err := econ.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Cells) != 0 {
		t.Errorf("failed spawns left cells: %+v", st.Cells)
	}

	info, err := econ.Spawn(ctx, api.SpawnRequest{Name: "garbage", Wallet: 1 << 40,
		Argv: []string{"/bin/sh", "-c", "while :; do echo 'not json'; done > " + vm.GuestAgentDevice},
		VM:   &api.VMRequest{Kernel: img.Kernel, Initrd: img.Initrd}})
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return cellRow(t, econ, "garbage").State == life.Dead, nil }); err != nil {
		t.Fatalf("a guest sending garbage still lives: %v", err)
	}
	st, _ = econ.State(ctx)
	var cause string
	for _, ev := range st.Events {
		if ev.Cell == "garbage" && strings.Contains(ev.Detail, "agent cut off") {
			cause = ev.Detail
		}
	}
	if cause == "" || !strings.Contains(cause, "final balance") {
		t.Errorf("no event gives the hub's reason for the garbage guest's death and its settled wallet: %+v", st.Events)
	} else {
		t.Logf("cause: %s", cause)
	}
	checkGone(t, ctx, info.PID)
}

// checkGone waits until QEMU pid has exited.
func checkGone(t *testing.T, ctx context.Context, pid int) {
	t.Helper()
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return syscall.Kill(pid, 0) == syscall.ESRCH, nil }); err != nil {
		t.Errorf("QEMU pid %d still alive after its cell died: %v", pid, err)
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// TestFirecrackerCellUnderTheEconomy runs the Scientist in a Firecracker
// microVM spawned through Spawn where this host can: a firecracker binary
// in PATH, a working /dev/kvm, and a guest kernel (vmlinux) and ext4 root
// file system holding /bin/maxwell named by MAXWELL_FC_KERNEL and
// MAXWELL_FC_ROOTFS. Its reports reach the hub over vsock, through the
// hub's socket linked at the VM's port.
func TestFirecrackerCellUnderTheEconomy(t *testing.T) {
	if err := vm.CheckFirecracker("", "/dev"); err != nil {
		t.Skipf("Firecracker cannot run here: %v", err)
	}
	kernel, rootfs := os.Getenv("MAXWELL_FC_KERNEL"), os.Getenv("MAXWELL_FC_ROOTFS")
	if kernel == "" || rootfs == "" {
		t.Skip("MAXWELL_FC_KERNEL and MAXWELL_FC_ROOTFS name no guest kernel (vmlinux) and root file system")
	}
	econ := vmEconomy(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := econ.Spawn(ctx, api.SpawnRequest{
		Name: "fcsci", Argv: []string{"/bin/maxwell", "agent", "scientist", "--report-interval", "200ms", "--threads", "1"},
		Wallet: 1 << 40, MaxBid: 1 << 20, Units: 1,
		VM: &api.VMRequest{VMM: vm.VMMFirecracker, Kernel: kernel, RootFS: rootfs},
	})
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return cellRow(t, econ, "fcsci").Counters["primes"] > 0, nil }); err != nil {
		t.Fatalf("no reports from the Scientist in Firecracker: %v", err)
	}
	if err := econ.Kill(ctx, "fcsci"); err != nil {
		t.Fatal(err)
	}
	checkGone(t, ctx, info.PID)
}
