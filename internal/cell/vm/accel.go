package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// kvmGetAPIVersion is the KVM_GET_API_VERSION ioctl, _IO(0xAE, 0x00);
// every KVM since Linux 2.6.22 answers 12.
const (
	kvmGetAPIVersion = 0xAE00
	kvmAPIVersion    = 12
)

// CheckKVM reports whether <devRoot>/kvm opens read-write and answers
// KVM_GET_API_VERSION with 12, and if not, why.
func CheckKVM(devRoot string) error {
	p := filepath.Join(devRoot, "kvm")
	f, err := os.OpenFile(p, os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion)
	if err != nil {
		return fmt.Errorf("%s: KVM_GET_API_VERSION: %w", p, err)
	}
	if v != kvmAPIVersion {
		return fmt.Errorf("%s: KVM API version %d, want %d", p, v, kvmAPIVersion)
	}
	return nil
}

// ProbeOptions configure ProbeAccel.
type ProbeOptions struct {
	QEMU, Kernel, Initrd string
	KernelArgs           string
	DevRoot              string
	// Timeout bounds the probe guest's boot.
	Timeout time.Duration
}

// ProbeAccel decides between KVM and TCG: KVM if /dev/kvm works and a
// probe guest (the image's init with maxwell.probe=1, which says ready
// and powers off) boots under -accel kvm -cpu host within Timeout; TCG
// otherwise, with the reason. A nested host whose KVM refuses the host
// CPU model (QEMU fails at once) or lets the guest spin (the deadline)
// both end up on TCG.
func ProbeAccel(ctx context.Context, o ProbeOptions) AccelInfo {
	if err := CheckKVM(o.DevRoot); err != nil {
		return AccelInfo{Accel: AccelTCG, Reason: "TCG (emulation): KVM unusable: " + err.Error()}
	}
	if err := probeGuest(ctx, o); err != nil {
		return AccelInfo{Accel: AccelTCG, Reason: "TCG (emulation): a KVM probe guest did not boot: " + err.Error()}
	}
	return AccelInfo{Accel: AccelKVM, Reason: "KVM: /dev/kvm works and a probe guest booted under it"}
}

// probeGuest boots the probe guest under KVM.
func probeGuest(ctx context.Context, o ProbeOptions) error {
	if o.Timeout <= 0 {
		o.Timeout = DefaultOptions().ProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	args := append(machineArgs(AccelKVM, 128, 1),
		"-kernel", o.Kernel, "-initrd", o.Initrd,
		"-append", vmimage.ProbeCommandLine(o.KernelArgs))
	cmd := exec.CommandContext(ctx, o.QEMU, args...)
	con := newConsole(nil)
	errTail := &tail{max: 2048}
	cmd.Stdout, cmd.Stderr = con, errTail
	cmd.WaitDelay = 2 * time.Second
	// Its own process group and a parent-death signal: a probe must not
	// outlive the host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-con.ready:
		_ = cmd.Process.Kill()
		<-waited
		return nil
	case err := <-waited:
		if isClosed(con.ready) {
			return nil
		}
		if err == nil {
			err = errors.New("QEMU exited before the guest booted")
		}
		if s := errTail.String(); s != "" {
			return fmt.Errorf("%w: %s", err, oneLine(s))
		}
		return err
	case <-ctx.Done():
		<-waited
		return fmt.Errorf("no boot within %v: %w", o.Timeout, ctx.Err())
	}
}

// machineArgs are the QEMU arguments every microvm gets: the machine,
// accelerator and CPU model, memory and vCPUs, no default devices, the
// console on stdout, and exit instead of reboot.
func machineArgs(accel Accel, memMiB, vcpus int) []string {
	cpu := "max"
	if accel == AccelKVM {
		cpu = "host"
	}
	return []string{
		"-M", "microvm",
		"-accel", string(accel), "-cpu", cpu,
		"-m", fmt.Sprint(memMiB), "-smp", fmt.Sprint(vcpus),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "stdio",
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
