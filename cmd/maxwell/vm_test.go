package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/api/apitest"
	"github.com/maxwellhq/maxwell/internal/bench"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/cell/vm"
	"github.com/maxwellhq/maxwell/internal/cell/vm/vmtest"
	"github.com/maxwellhq/maxwell/internal/cgroupfs"
	"github.com/maxwellhq/maxwell/internal/lab"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// TestSpawnVMFlags: spawn --vm sends the guest's command with the VM's
// settings, its paths made absolute and no working directory of the
// caller's; VM flags without --vm are refused.
func TestSpawnVMFlags(t *testing.T) {
	b := &apitest.Backend{}
	sock := apitest.Serve(t, b)
	if _, _, err := runCtl(t, "spawn", "--socket", sock, "--wallet", "500", "--vm", "--kernel", "img/vmlinuz", "--rootfs", "/srv/root.ext4",
		"--memory", "192", "--vcpus", "2", "--name", "guest", "--", "/bin/maxwell", "agent", "scientist"); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := api.SpawnRequest{Name: "guest", Argv: []string{"/bin/maxwell", "agent", "scientist"}, Wallet: 500,
		VM: &api.VMRequest{VMM: vm.VMMQEMU, Kernel: filepath.Join(wd, "img/vmlinuz"), RootFS: "/srv/root.ext4", MemoryMiB: 192, VCPUs: 2}}
	if got := b.Spawned(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("daemon got %+v (vm %+v)\nwant %+v (vm %+v)", got, got[0].VM, want, want.VM)
	}
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--kernel", "/k", "true"}, "--kernel needs --vm"},
		{[]string{"--memory", "512", "true"}, "--memory needs --vm"},
		{[]string{"--vm", "--vmm", "bochs", "true"}, `vm.vmm "bochs": want qemu or firecracker`},
		{[]string{"--vm", "--vmm", "firecracker", "--initrd", "/i", "true"}, "no initramfs"},
		{[]string{"--vm", "--memory", "4", "true"}, "vm.memory_mib 4"},
		{[]string{"--vm", "--oci", "/srv/root", "true"}, "not both"},
	} {
		_, _, err := runCtl(t, append([]string{"spawn", "--socket", sock, "--wallet", "5"}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("spawn %v: %v, want an error saying %q", tt.args, err, tt.msg)
		}
	}
	if n := len(b.Spawned()); n != 1 {
		t.Errorf("refused spawns reached the daemon: %d spawns", n)
	}
}

// TestVMImageCommand builds a guest image with `maxwell vm image` from a
// real kernel, busybox and maxwell binary, reads it back, and builds it
// again: kept, the same digest.
func TestVMImageCommand(t *testing.T) {
	kernel := vmtest.Kernel(t)
	if _, err := os.Stat(oci.DefaultBusybox); err != nil {
		t.Skipf("no %s (Debian: apt-get install busybox-static)", oci.DefaultBusybox)
	}
	mx := vmtest.Maxwell(t)
	out := filepath.Join(t.TempDir(), "image")
	stdout, stderr, err := run(t, "vm", "image", "--kernel", kernel, "--maxwell", mx, "--out", out, "--json")
	if err != nil {
		t.Fatalf("vm image: %v\n%s", err, stderr)
	}
	var img vmimage.Image
	if err := json.Unmarshal([]byte(stdout), &img); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	loaded, err := vmimage.Load(out)
	if err != nil || loaded.Digest != img.Digest || img.Maxwell != vmimage.GuestMaxwell {
		t.Errorf("Load = %+v, %v; the command built %+v", loaded, err, img)
	}
	stdout, _, err = run(t, "vm", "image", "--kernel", kernel, "--maxwell", mx, "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"guest image " + img.Digest[:12] + " (already built from the same inputs; kept)", "virtio_console.ko", "maxwell:   /bin/maxwell (from " + mx + ")"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("vm image printed\n%s\nwithout %q", stdout, want)
		}
	}
	if _, _, err := run(t, "vm", "image", "--kernel", filepath.Join(t.TempDir(), "none"), "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("a missing kernel: %v", err)
	}
}

// TestSpawnVMThroughDaemon runs the Scientist in a microVM spawned by
// `maxwell spawn --vm` through a real daemon: its reports reach the
// daemon's hub over virtio-serial and show in `ps --json` under the
// cell's name, with the VM's backend; `maxwell kill` ends QEMU. A cell
// spawned --user nobody has its QEMU run as nobody.
func TestSpawnVMThroughDaemon(t *testing.T) {
	vmtest.NeedRoot(t)
	img := vmtest.Image(t)
	// The agent socket's directory holds the VMs' state: one that a cell
	// spawned as nobody can reach (t.TempDir's parent is root's, 0700).
	run, err := os.MkdirTemp("", "vmd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(run)
	if err := os.Chmod(run, 0o755); err != nil {
		t.Fatal(err)
	}
	c, _ := startDaemon(t, "--agent-socket", filepath.Join(run, "agent.sock"))
	sock := c.Path()
	stdout, stderr, err := runCtl(t, "spawn", "--socket", sock, "--json", "--wallet", "1000000000000", "--max-bid", "100000000",
		"--vm", "--kernel", img.Kernel, "--initrd", img.Initrd, "--name", "vsci",
		"--", img.Maxwell, "agent", "scientist", "--report-interval", "200ms", "--threads", "1")
	if err != nil {
		t.Fatalf("spawn --vm: %v\n%s", err, stderr)
	}
	var info api.CellInfo
	if err := json.Unmarshal([]byte(stdout), &info); err != nil {
		t.Fatalf("spawn --json: %v\n%s", err, stdout)
	}
	if !strings.HasPrefix(info.Backend, vm.BackendQEMU+"/") {
		t.Errorf("backend %q, want %s/kvm or /tcg", info.Backend, vm.BackendQEMU)
	}
	row := func() api.Cell {
		out, _, err := runCtl(t, "ps", "--socket", sock, "--all", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var st api.State
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		for _, c := range st.Cells {
			if c.Name == "vsci" {
				return c
			}
		}
		t.Fatalf("no vsci in ps:\n%s", out)
		return api.Cell{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return row().Counters["primes"] > 0, nil }); err != nil {
		t.Fatalf("no report from the Scientist in the VM: %v; row %+v", err, row())
	}
	if r := row(); r.Backend != info.Backend || r.PID != info.PID || r.Useful == nil {
		t.Errorf("ps row %+v: want backend %s, QEMU's pid %d and the declared useful work", r, info.Backend, info.PID)
	}
	if out, _, err := runCtl(t, "kill", "--socket", sock, "vsci"); err != nil || out != "killed vsci\n" {
		t.Fatalf("kill: %q, %v", out, err)
	}
	if err := cgroupfs.Poll(ctx, func() (bool, error) { return syscall.Kill(info.PID, 0) == syscall.ESRCH, nil }); err != nil {
		t.Errorf("QEMU (pid %d) alive after the kill", info.PID)
	}
	if r := row(); r.State != life.Dead {
		t.Errorf("after kill: %s", r.State)
	}

	// Root asks for a cell as nobody: QEMU runs as nobody, reading a
	// copy of the image nobody may read (the test cache is root's).
	pub, err := os.MkdirTemp("", "vmpub")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pub)
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range []string{img.Kernel, img.Initrd} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(pub, filepath.Base(f))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, dst)
	}
	stdout, stderr, err = runCtl(t, "spawn", "--socket", sock, "--json", "--wallet", "1000000000000", "--max-bid", "100000000",
		"--user", "nobody", "--vm", "--kernel", files[0], "--initrd", files[1], "--name", "vnobody", "--", "/bin/sleep", "600")
	if err != nil {
		t.Fatalf("spawn --vm --user nobody: %v\n%s", err, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &info); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(info.PID), "status"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "Uid:\t65534\t65534\t65534\t65534") {
		t.Errorf("QEMU of a cell spawned as nobody does not run as nobody:\n%s", status)
	}
	if _, _, err := runCtl(t, "kill", "--socket", sock, "vnobody"); err != nil {
		t.Fatal(err)
	}
}

// TestDemoInVMs: `maxwell demo --cell vm`, short: the Scientist and the
// Miner each in a microVM (under TCG where KVM does not work); the Miner
// dies in its VM, the Scientist lives and works, the books balance, the
// journal replays (testDemo), and both agents did run in VMs.
func TestDemoInVMs(t *testing.T) {
	vmtest.NeedRoot(t)
	img := vmtest.Image(t)
	// 30 s rather than 12: the agents are spawned one after the other,
	// each spawn includes its guest's boot (2.5-8 s under TCG: the Miner
	// boots while the Scientist's VM has both CPUs, longer on a loaded
	// host), all inside the run's window, and the wallets grow with the
	// window.
	dir := testDemo(t, string(lab.VM), "--vm-image", filepath.Dir(img.Kernel), "--headless", "--duration", "30s")
	events, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(events), "backend "+vm.BackendQEMU+"/"); n != 2 {
		t.Errorf("%d spawns in a QEMU microVM in events.jsonl, want 2:\n%s", n, events)
	}
}

// TestBenchPauseVM: `maxwell bench pause --vm` boots a busy guest and
// times QMP pauses and resumes, saying which accelerator and why.
func TestBenchPauseVM(t *testing.T) {
	vmtest.NeedRoot(t)
	img := vmtest.Image(t)
	stdout, stderr, err := run(t, "bench", "pause", "--vm", "--vm-image", filepath.Dir(img.Kernel), "--trials", "5", "--json")
	if err != nil {
		t.Fatalf("bench pause --vm: %v\n%s", err, stderr)
	}
	var res bench.VMPauseResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if res.Error != "" || !strings.HasPrefix(res.Backend, vm.BackendQEMU+"/") || res.BootMs <= 0 || res.Accel == nil || res.Accel.Reason == "" {
		t.Errorf("result %+v", res)
	}
	for _, s := range []bench.Summary{res.Pause, res.Resume} {
		if s.N != 5 || s.P50us <= 0 || s.P50us > s.MaxUs {
			t.Errorf("summary %+v: want 5 ordered samples", s)
		}
	}
	if _, _, err := run(t, "bench", "pause", "--vm", "--vm-image", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no guest image") {
		t.Errorf("bench pause --vm without an image: %v", err)
	}
}

// TestSensorsVM: `maxwell sensors` lists the VMMs and accelerators, and
// with a guest image boots the KVM probe guest and says what it found.
func TestSensorsVM(t *testing.T) {
	img := vmtest.Image(t)
	stdout, _, err := run(t, "sensors", "--json", "--vm-image", filepath.Dir(img.Kernel))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		VM vm.Report `json:"vm"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if !rep.VM.QEMU.Available || !rep.VM.TCG.Available {
		t.Errorf("QEMU is installed but the report says %+v", rep.VM)
	}
	if reason := rep.VM.Accel.Reason; strings.Contains(reason, "no probe guest was booted") || reason == "" {
		t.Errorf("with a guest image, the accelerator's reason %q should come from a probe guest", reason)
	}
	for _, c := range rep.VM.Capabilities() {
		if !c.Available && c.Detail == "" {
			t.Errorf("%s missing without a reason", c.Name)
		}
	}
	stdout, _, err = run(t, "sensors", "--vm-image", filepath.Dir(img.Kernel))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "MICROVM") || !strings.Contains(stdout, "QEMU microVM guests: "+string(rep.VM.Accel.Accel)) {
		t.Errorf("sensors' text lacks the microVM table:\n%s", stdout)
	}
}
