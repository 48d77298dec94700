package vm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell/vm"
	"github.com/maxwellhq/maxwell/internal/cell/vm/vmtest"
)

// TestProbeAccel boots the probe guest under KVM on this host. Where KVM
// works the answer is KVM; where it does not (no /dev/kvm, or a nested
// host whose KVM refuses the host CPU model or lets the guest spin) it is
// TCG, with a reason naming the failure, and every VM says so.
func TestProbeAccel(t *testing.T) {
	vmtest.NeedRoot(t)
	img := vmtest.Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	got := vm.ProbeAccel(ctx, vm.ProbeOptions{QEMU: vmtest.QEMU(t), Kernel: img.Kernel, Initrd: img.Initrd,
		KernelArgs: vm.DefaultKernelArgs, DevRoot: "/dev", Timeout: 15 * time.Second})
	t.Logf("probe: %s (%s) in %v", got.Accel, got.Reason, time.Since(start).Round(time.Millisecond))
	switch got.Accel {
	case vm.AccelKVM:
		if err := vm.CheckKVM("/dev"); err != nil {
			t.Errorf("probe says KVM, but CheckKVM: %v", err)
		}
	case vm.AccelTCG:
		if !got.Emulated() || !strings.HasPrefix(got.Reason, "TCG (emulation): ") || len(got.Reason) < 30 {
			t.Errorf("TCG without a reason: %+v", got)
		}
	default:
		t.Errorf("probe answered %q", got.Accel)
	}

	// With no /dev/kvm the probe does not even start QEMU.
	none := vm.ProbeAccel(ctx, vm.ProbeOptions{QEMU: "/nonexistent", DevRoot: t.TempDir()})
	if none.Accel != vm.AccelTCG || !strings.Contains(none.Reason, "kvm") {
		t.Errorf("without /dev/kvm: %+v", none)
	}
}

// TestDoctor: on a fixture /dev with nothing in it, every device is
// missing with its path in the reason; binaries not in PATH say so.
func TestDoctor(t *testing.T) {
	dev := t.TempDir()
	r := vm.Doctor(context.Background(), vm.DoctorOptions{
		QEMU: "no-such-qemu-binary", Firecracker: "no-such-firecracker-binary", DevRoot: dev,
	})
	for _, c := range r.Capabilities() {
		if c.Available {
			t.Errorf("%s available on an empty host: %+v", c.Name, c)
		}
		if c.Detail == "" {
			t.Errorf("%s missing without a reason", c.Name)
		}
	}
	if !strings.Contains(r.KVM.Detail, filepath.Join(dev, "kvm")) || !strings.Contains(r.VhostVsock.Detail, filepath.Join(dev, "vhost-vsock")) {
		t.Errorf("device reasons do not name the devices: %q, %q", r.KVM.Detail, r.VhostVsock.Detail)
	}
	if !strings.Contains(r.Firecracker.Detail, "no no-such-firecracker-binary in PATH") {
		t.Errorf("firecracker: %q", r.Firecracker.Detail)
	}
	if r.Accel.Accel != vm.AccelTCG {
		t.Errorf("Accel = %+v with no QEMU and no KVM", r.Accel)
	}
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Capabilities() {
		if !strings.Contains(text.String(), c.Name+"  ") || !strings.Contains(text.String(), c.Detail) {
			t.Errorf("text lacks %s and its reason %q:\n%s", c.Name, c.Detail, text.String())
		}
	}
	if !strings.Contains(text.String(), "QEMU microVM guests: tcg (no QEMU: ") {
		t.Errorf("text does not say what guests would run under:\n%s", text.String())
	}

	// Firecracker's own check names what is missing: the binary first,
	// then KVM.
	if err := vm.CheckFirecracker("no-such-firecracker-binary", dev); !errors.Is(err, vm.ErrNoVMM) || !strings.Contains(err.Error(), "no no-such-firecracker-binary in PATH") {
		t.Errorf("CheckFirecracker without the binary: %v", err)
	}
	if err := vm.CheckFirecracker("/bin/true", dev); !errors.Is(err, vm.ErrNoKVM) || !strings.Contains(err.Error(), filepath.Join(dev, "kvm")) {
		t.Errorf("CheckFirecracker without /dev/kvm: %v", err)
	}

	// This host, as it is.
	if _, err := os.Stat("/dev"); err == nil {
		host := vm.Doctor(context.Background(), vm.DoctorOptions{})
		for _, c := range host.Capabilities() {
			t.Logf("%-12s available=%-5v %s %s", c.Name, c.Available, c.Path, c.Detail)
		}
		t.Logf("accel: %s: %s", host.Accel.Accel, host.Accel.Reason)
		if host.QEMU.Available && !strings.Contains(host.QEMU.Detail, "QEMU emulator version") {
			t.Errorf("QEMU found but its version line is %q", host.QEMU.Detail)
		}
	}
}
