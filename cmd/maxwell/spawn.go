package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell/vm"
	"github.com/maxwellhq/maxwell/internal/cpuset"
)

const spawnLong = `Spawn starts a program in a new cell under the running daemon's economy.

The cell gets a wallet of --wallet credits (1 credit = 1 µJ of host energy)
and, with --tap, an income of RATE credits per second while its balance is
below --tap-cap (default: the wallet). It buys CPU time in the auction each
tick and dies when it cannot pay.

A program that speaks the agent protocol bids for itself. Any other program
is a budgeted agent: with --max-bid P the daemon bids P credits per slot for
--units slots on its behalf every tick, so the wallet is an operator's hard
spend cap, and the cell is killed when it runs out.

The program runs as you (root may name another user with --user, or the
daemon's policy may name one), in the current directory, with a minimal
environment (PATH, HOME, USER, LOGNAME) plus any --env and
MAXWELL_AGENT_SOCKET; a command without a slash is looked up in the daemon's
PATH.
With --vm the program runs in a microVM instead: QEMU's microvm machine
(--vmm qemu, the default; under KVM where a probe guest boots, else under
TCG emulation, which the cell's backend names: qemu-microvm/kvm or
qemu-microvm/tcg), or Firecracker (--vmm firecracker, where its binary and
/dev/kvm exist). The VMM runs as the cell's user, in the cell's cgroups. The
command, --env and --dir are then the guest's: the command is a path in the
guest (the default guest image, ` + "`maxwell vm image`" + `, holds busybox and
/bin/maxwell), its environment PATH and HOME plus --env, and an agent talks to
the host over its virtio-serial port (MAXWELL_AGENT_SERIAL is set). QEMU boots
--kernel and --initrd (default: the daemon's guest image), with --rootfs a
root file system image the command runs chrooted in; Firecracker boots
--kernel (a vmlinux) with --rootfs as its root device. A guest without a
--max-bid must speak the agent protocol: one whose agent writes nothing in its
first 5 s of running is ended. Spawn returns once the guest has booted (its
boot is not charged).

Flags end at the first argument that is not one, or at --:

  maxwell spawn --wallet 50000000 --max-bid 2000 --name crunch -- ./crunch -n 8
  maxwell spawn --vm --wallet 50000000 -- /bin/maxwell agent scientist --bidding`

// newSpawnCmd builds `maxwell spawn`.
func newSpawnCmd(a *app) *cobra.Command {
	var (
		req    api.SpawnRequest
		cpus   string
		asJSON bool
		sock   *string
		inVM   bool
		vmReq  api.VMRequest
		vmm    string
	)
	cmd := &cobra.Command{
		Use:   "spawn --wallet N [flags] -- CMD [ARGS…]",
		Short: "Start a program in a new cell under the daemon's economy",
		Long:  spawnLong,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("wallet") {
				if slices.Contains(args, "--wallet") || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--wallet=") }) {
					return errors.New("--wallet came after the command, so it is the command's: spawn's flags go before it (maxwell spawn --wallet N [flags] -- CMD [ARGS…])")
				}
				return errors.New("--wallet is required: the cell's endowment in credits (maxwell spawn --wallet N [flags] -- CMD [ARGS…])")
			}
			req.Argv = args
			if cpus != "" {
				list, err := cpuset.Parse(cpus)
				if err != nil {
					return fmt.Errorf("--cpus: %w", err)
				}
				req.CPUs = list
			}
			if inVM {
				if err := vmRequest(&vmReq, vmm); err != nil {
					return err
				}
				req.VM = &vmReq
			} else if err := vmFlagsUnused(cmd); err != nil {
				return err
			}
			if req.Dir == "" && !inVM {
				wd, err := os.Getwd()
				if err != nil {
					return fmt.Errorf("working directory: %w", err)
				}
				req.Dir = wd
			}
			if err := req.Validate(); err != nil {
				return err
			}
			c, err := api.Dial(*sock)
			if err != nil {
				return err
			}
			defer c.Close()
			if inVM {
				c.SpawnTimeout = vmSpawnTimeout
			}
			info, err := c.Spawn(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("spawn: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), info)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "spawned %s (pid %d, %s cell)\n", info.Name, info.PID, info.Backend)
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // flags after the command are the command's
	sock = socketFlag(cmd)
	creditsVar(f, &req.Wallet, "wallet", "endowment in credits (1 credit = 1 µJ)")
	creditsVar(f, &req.TapRate, "tap", "income in credits per second while the balance is below --tap-cap")
	creditsVar(f, &req.TapCap, "tap-cap", "balance in credits at which the tap stops (default: the wallet)")
	creditsVar(f, &req.MaxBid, "max-bid", "standing bid in credits per slot, for programs that do not bid themselves")
	f.IntVar(&req.Units, "units", 0, "slots the standing bid asks for (default 1)")
	f.StringVar(&req.Name, "name", "", "cell name (default: the daemon picks one)")
	f.StringVar(&cpus, "cpus", "", "pin the cell to these CPUs, e.g. 0-3,6")
	f.StringVar(&req.OCIRootfs, "oci", "", "run the program in an OCI container on this root filesystem")
	f.StringArrayVar(&req.Env, "env", nil, "set an environment variable KEY=value (repeatable)")
	f.StringVar(&req.Dir, "dir", "", "working directory (default: the current one)")
	f.StringVar(&req.User, "user", "", "run the program as this user, a name or UID (default: you)")
	f.BoolVar(&inVM, "vm", false, "run the program in a microVM (see above)")
	f.StringVar(&vmm, "vmm", string(vm.VMMQEMU), "with --vm: the VMM, qemu or firecracker")
	f.StringVar(&vmReq.Kernel, "kernel", "", "with --vm: the guest kernel (default: the daemon's guest image)")
	f.StringVar(&vmReq.Initrd, "initrd", "", "with --vm: the guest initramfs, QEMU only (default: the daemon's guest image)")
	f.StringVar(&vmReq.RootFS, "rootfs", "", "with --vm: a root file system image the command runs in")
	f.IntVar(&vmReq.MemoryMiB, "memory", 0, "with --vm: guest memory in MiB (default 256)")
	f.IntVar(&vmReq.VCPUs, "vcpus", 0, "with --vm: guest vCPUs (default 1)")
	f.BoolVar(&asJSON, "json", false, "print the new cell as JSON")
	return cmd
}

// vmSpawnTimeout bounds a spawn --vm: the guest boots before the daemon
// answers (up to its 60 s boot deadline under TCG on a loaded host), and
// the daemon's first VM probes KVM.
const vmSpawnTimeout = 2 * time.Minute

// vmFlags are the flags that mean something only with --vm.
var vmFlags = []string{"vmm", "kernel", "initrd", "rootfs", "memory", "vcpus"}

// vmRequest completes r from the flags: the VMM, and the paths made
// absolute (the daemon does not share the caller's directory).
func vmRequest(r *api.VMRequest, vmm string) error {
	r.VMM = vm.VMM(vmm)
	for _, p := range []*string{&r.Kernel, &r.Initrd, &r.RootFS} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}

// vmFlagsUnused refuses a VM flag given without --vm.
func vmFlagsUnused(cmd *cobra.Command) error {
	for _, n := range vmFlags {
		if cmd.Flags().Changed(n) {
			return fmt.Errorf("--%s needs --vm", n)
		}
	}
	return nil
}
