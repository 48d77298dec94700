package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/cell/vm"
)

// TestValidateVMRequest: what a daemon refuses of a microVM spawn, each
// with the words that say why; what it takes.
func TestValidateVMRequest(t *testing.T) {
	base := func(v VMRequest) SpawnRequest {
		return SpawnRequest{Argv: []string{"/bin/maxwell", "agent", "scientist"}, Wallet: 1000, VM: &v}
	}
	tests := []struct {
		name string
		req  SpawnRequest
		msg  string // "" means valid
	}{
		{"defaults", base(VMRequest{}), ""},
		{"qemu with everything", base(VMRequest{VMM: vm.VMMQEMU, Kernel: "/k", Initrd: "/i", RootFS: "/r", MemoryMiB: 512, VCPUs: 2}), ""},
		{"firecracker", base(VMRequest{VMM: vm.VMMFirecracker, Kernel: "/vmlinux", RootFS: "/root.ext4"}), ""},
		{"unknown vmm", base(VMRequest{VMM: "bochs"}), `vm.vmm "bochs": want qemu or firecracker`},
		{"relative kernel", base(VMRequest{Kernel: "vmlinuz"}), `vm.kernel "vmlinuz": want an absolute path`},
		{"NUL in rootfs", base(VMRequest{RootFS: "/r\x00"}), "vm.rootfs must not hold a NUL byte"},
		{"too little memory", base(VMRequest{MemoryMiB: 8}), "vm.memory_mib 8: want 32..1048576"},
		{"negative vcpus", base(VMRequest{VCPUs: -1}), "vm.vcpus -1: want 1..255"},
		{"too many vcpus", base(VMRequest{VCPUs: 256}), "vm.vcpus 256"},
		{"firecracker initrd", base(VMRequest{VMM: vm.VMMFirecracker, Kernel: "/k", RootFS: "/r", Initrd: "/i"}), "no initramfs"},
		{"firecracker without rootfs", base(VMRequest{VMM: vm.VMMFirecracker, Kernel: "/k"}), "Firecracker needs a kernel (vmlinux) and a root file system image"},
		{"vm and oci", func() SpawnRequest { r := base(VMRequest{}); r.OCIRootfs = "/srv/root"; return r }(), "not both"},
		{"relative guest dir", func() SpawnRequest { r := base(VMRequest{}); r.Dir = "work"; return r }(), `dir "work": a microVM's working directory is an absolute path in the guest`},
		{"absolute guest dir", func() SpawnRequest { r := base(VMRequest{}); r.Dir = "/tmp"; return r }(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Validate() = %v, want a bad request saying %q", err, tt.msg)
			}
		})
	}
}
