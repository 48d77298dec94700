package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Capability is one thing a host has, or lacks, for microVM cells.
type Capability struct {
	// Name is what it is: "qemu", "kvm", "tcg", "firecracker",
	// "vhost-vsock".
	Name string `json:"name"`
	// Available says whether this host has it.
	Available bool `json:"available"`
	// Path is the binary or device, where there is one.
	Path string `json:"path,omitempty"`
	// Detail is the version found, or why it is missing.
	Detail string `json:"detail"`
}

// Report says which VMMs and accelerators a host has, and why the others
// are missing: what `maxwell doctor` and `maxwell sensors` print.
type Report struct {
	QEMU        Capability `json:"qemu"`
	KVM         Capability `json:"kvm"`
	TCG         Capability `json:"tcg"`
	Firecracker Capability `json:"firecracker"`
	VhostVsock  Capability `json:"vhost_vsock"`
	// Accel is what a Manager would run QEMU guests under, and why; its
	// Reason says whether a probe guest was booted.
	Accel AccelInfo `json:"accel"`
}

// Capabilities returns the report's entries in a fixed order.
func (r Report) Capabilities() []Capability {
	return []Capability{r.QEMU, r.KVM, r.TCG, r.Firecracker, r.VhostVsock}
}

// WriteText prints the report: one line per VMM and accelerator, then
// what QEMU guests would run under and why.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MICROVM\tAVAILABLE\tPATH\tDETAIL")
	for _, c := range r.Capabilities() {
		path := c.Path
		if path == "" {
			path = "-"
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", c.Name, c.Available, path, oneLine(c.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "QEMU microVM guests: %s (%s)\n", r.Accel.Accel, oneLine(r.Accel.Reason))
	return err
}

// oneLine joins the lines of s (a VMM's standard error may have several)
// with " / ", for a table's cell.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " / ")
}

// DoctorOptions configure Doctor; zero values mean the defaults.
type DoctorOptions struct {
	// QEMU and Firecracker are the binaries to look for (names in PATH
	// or paths). Defaults qemu-system-x86_64 and firecracker.
	QEMU, Firecracker string
	// DevRoot is where /dev is. Default "/dev".
	DevRoot string
	// Kernel and Initrd, if both set, let Doctor boot the KVM probe
	// guest (ProbeAccel); otherwise KVM is judged by /dev/kvm alone.
	Kernel, Initrd string
	// ProbeTimeout bounds the probe guest. Default 20 s.
	ProbeTimeout time.Duration
}

// versionTimeout bounds running a binary's --version.
const versionTimeout = 5 * time.Second

// Doctor inspects the host. It never fails: what it cannot find or use is
// reported with the reason.
func Doctor(ctx context.Context, o DoctorOptions) Report {
	def := DefaultOptions()
	if o.QEMU == "" {
		o.QEMU = def.QEMU
	}
	if o.Firecracker == "" {
		o.Firecracker = "firecracker"
	}
	if o.DevRoot == "" {
		o.DevRoot = def.DevRoot
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = def.ProbeTimeout
	}
	var r Report
	r.QEMU = binary(ctx, "qemu", o.QEMU, "Debian: apt-get install qemu-system-x86")
	r.Firecracker = binary(ctx, "firecracker", o.Firecracker, "no Debian package; a release binary from the Firecracker project, which needs KVM")
	r.TCG = Capability{Name: "tcg", Available: r.QEMU.Available, Path: r.QEMU.Path}
	if r.TCG.Available {
		r.TCG.Detail = "QEMU's emulator (-accel tcg -cpu max): works without KVM, many times slower"
	} else {
		r.TCG.Detail = "needs QEMU"
	}
	kvm := filepath.Join(o.DevRoot, "kvm")
	r.KVM = Capability{Name: "kvm", Path: kvm}
	if err := CheckKVM(o.DevRoot); err != nil {
		r.KVM.Detail = err.Error()
	} else {
		r.KVM.Available = true
		r.KVM.Detail = "KVM API 12"
	}
	vs := filepath.Join(o.DevRoot, "vhost-vsock")
	r.VhostVsock = Capability{Name: "vhost-vsock", Path: vs}
	if f, err := os.OpenFile(vs, os.O_RDWR, 0); err != nil {
		r.VhostVsock.Detail = fmt.Sprintf("%v (modprobe vhost_vsock on the host; needed for QEMU's vhost-vsock-device, not for virtio-serial)", err)
	} else {
		f.Close()
		r.VhostVsock.Available = true
		r.VhostVsock.Detail = "opens read-write"
	}

	switch {
	case !r.QEMU.Available:
		r.Accel = AccelInfo{Accel: AccelTCG, Reason: "no QEMU: " + r.QEMU.Detail}
	case !r.KVM.Available:
		r.Accel = AccelInfo{Accel: AccelTCG, Reason: "TCG (emulation): KVM unusable: " + r.KVM.Detail}
	case o.Kernel != "" && o.Initrd != "":
		r.Accel = ProbeAccel(ctx, ProbeOptions{QEMU: r.QEMU.Path, Kernel: o.Kernel, Initrd: o.Initrd,
			KernelArgs: def.KernelArgs, DevRoot: o.DevRoot, Timeout: o.ProbeTimeout})
		if r.Accel.Accel == AccelTCG {
			r.KVM.Available = false
			r.KVM.Detail = strings.TrimPrefix(r.Accel.Reason, "TCG (emulation): ")
		}
	default:
		r.Accel = AccelInfo{Accel: AccelKVM, Reason: "KVM: /dev/kvm works (no guest image given, so no probe guest was booted)"}
	}
	return r
}

// binary looks name up and asks it its version.
func binary(ctx context.Context, what, name, hint string) Capability {
	c := Capability{Name: what}
	p, err := exec.LookPath(name)
	if err != nil {
		c.Detail = fmt.Sprintf("no %s in PATH (%s)", name, hint)
		return c
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	c.Path, c.Available = p, true
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "--version").Output()
	if err != nil {
		c.Detail = fmt.Sprintf("found, but %s --version failed: %v", p, err)
		return c
	}
	c.Detail = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	return c
}
