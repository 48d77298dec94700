package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/maxwellhq/maxwell/internal/bench"
	"github.com/maxwellhq/maxwell/internal/cell/vm"
	"github.com/maxwellhq/maxwell/internal/meter"
	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// newBenchCmd builds `maxwell bench`, which measures Maxwell's own
// machinery on this host.
func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Maxwell's own machinery on this host",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBenchPauseCmd(a), newBenchLandauerCmd(a), newBenchDaemonCmd(a))
	return cmd
}

func newBenchPauseCmd(a *app) *cobra.Command {
	var (
		o       bench.HostPauseOptions
		asJSON  bool
		timeout time.Duration
		vmf     benchVMFlags
	)
	cmd := &cobra.Command{
		Use:   "pause",
		Short: "Measure how long pausing and resuming a busy cell takes under each freezer",
		Long: `Start one busy cell per freezer this host offers (the cgroup v1 freezer,
cgroup v2 cgroup.freeze, SIGSTOP/SIGCONT to a process group) and time
--trials pauses and resumes of each: from the request until the kernel
reports every task stopped, or running again. Prints p50, p99 and max in
microseconds. Needs root for the cgroup freezers.

With --vm it measures a microVM cell instead: one busy guest (--vmm qemu:
the guest image of --vm-image, under KVM where a probe guest boots, else
TCG, which the output says; --vmm firecracker: --kernel, a vmlinux, and
--rootfs), and --trials QMP stop → query-status "paused" and cont →
"running" (Firecracker: PATCH /vm, then GET /, and its own vmm_pause_vm and
vmm_resume_vm metrics), plus the guest's boot time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := a.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o.CgroupRoot, o.ProcRoot, o.Log = a.cgroupRoot, a.procRoot, log
			ctx, stop := signalContext(cmd)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if vmf.on {
				vo, err := vmf.options(a, o)
				if err != nil {
					return err
				}
				res, err := bench.PauseVMHost(ctx, vo)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), res)
				}
				return res.WriteText(cmd.OutOrStdout())
			}
			res, ctl, err := bench.PauseHost(ctx, o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return res.WriteText(cmd.OutOrStdout(), ctl)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Trials, "trials", 200, "pause/resume pairs per freezer")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.IntVar(&o.CPU, "cpu", 0, "CPU to pin the busy cells to (-1: no pinning)")
	f.StringVar(&o.ControllerCPUs, "controller-cpus", "auto", `CPUs for the measuring thread: a list, "auto" (every allowed CPU but the cells', if any) or "none"`)
	f.BoolVar(&o.OCI, "oci", false, "also measure a runc container (runc's own pause; needs runc and busybox-static)")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long, with a unit, e.g. 90s")
	vmf.register(f)
	return cmd
}

// benchVMFlags are bench pause's flags for a microVM cell.
type benchVMFlags struct {
	on                    bool
	vmm, accel            string
	image, kernel, rootfs string
}

func (v *benchVMFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&v.on, "vm", false, "measure a microVM cell's pause and resume instead")
	f.StringVar(&v.vmm, "vmm", string(vm.VMMQEMU), "with --vm: qemu or firecracker")
	f.StringVar(&v.accel, "accel", string(vm.AccelAuto), "with --vm and qemu: auto (KVM where a probe guest boots, else TCG), kvm or tcg")
	f.StringVar(&v.image, "vm-image", vmimage.DefaultDir(), "with --vm and qemu: the guest image `DIR` (maxwell vm image)")
	f.StringVar(&v.kernel, "kernel", "", "with --vm and firecracker: the guest kernel (vmlinux)")
	f.StringVar(&v.rootfs, "rootfs", "", "with --vm and firecracker: the guest's root file system image")
}

// options turns the flags into PauseVMHost's options.
func (v *benchVMFlags) options(a *app, o bench.HostPauseOptions) (bench.VMHostOptions, error) {
	vo := vm.DefaultOptions()
	vo.VMM, vo.Accel, vo.DevRoot, vo.ProcRoot = vm.VMM(v.vmm), vm.Accel(v.accel), a.devRoot, a.procRoot
	if vo.VMM == vm.VMMFirecracker {
		vo.Firecracker.Kernel, vo.Firecracker.RootFS = v.kernel, v.rootfs
	} else {
		img, err := vmimage.Load(v.image)
		if err != nil {
			return bench.VMHostOptions{}, fmt.Errorf("--vm-image: %w", err)
		}
		vo.Kernel, vo.Initrd = img.Kernel, img.Initrd
	}
	return bench.VMHostOptions{CgroupRoot: o.CgroupRoot, ProcRoot: o.ProcRoot, VM: vo, Trials: o.Trials, CPU: o.CPU, Log: o.Log}, nil
}

// newBenchDaemonCmd builds `maxwell bench daemon`.
func newBenchDaemonCmd(a *app) *cobra.Command {
	var (
		o        bench.DaemonOptions
		asJSON   bool
		realtime int
		cpus     string
		profile  string
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Measure what the economy costs the host while it governs --cells cells",
		Long: `Run the daemon's economy in this process, as ` + "`maxwell daemon`" + ` does (real
cgroups, the SQLite ledger, the Landauer meter, the agent hub; private
sockets, ledger and cgroup parent), admit --cells budgeted cells, each a
sleeping program (or, with --busy, one that spins), let it settle for
--warmup, then measure for --duration: the process's CPU time per tick and
per cell (getrusage), and the tick's latency, its phases and its jitter
(p50, p99, max). --realtime P runs the tick under SCHED_FIFO at priority
P (default: the configuration's engine.realtime_priority). --cpuprofile writes a pprof profile of the window. Needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			cpuList, err := runCPUs(cpus)
			if err != nil {
				return err
			}
			log, err := a.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("realtime") {
				cfg.Engine.RealtimePriority = realtime
			}
			o.Economy.Config, o.Economy.Roots, o.Economy.CgroupRoot, o.Economy.CPUs, o.Economy.Log = cfg, a.roots(), a.cgroupRoot, cpuList, log
			if profile != "" {
				f, err := os.Create(profile)
				if err != nil {
					return err
				}
				defer f.Close()
				o.CPUProfile = f
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			res, err := bench.MeasureDaemon(ctx, o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return res.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Cells, "cells", 100, "cells to govern")
	f.BoolVar(&o.Busy, "busy", false, "cells spin instead of sleeping: every CPU sold saturated")
	f.DurationVar(&o.Warmup, "warmup", 3*time.Second, "run this long before measuring")
	f.DurationVar(&o.Duration, "duration", 30*time.Second, "measure for this long")
	f.IntVar(&realtime, "realtime", 0, "run the tick under SCHED_FIFO at this priority (1-99; 0: no; default: engine.realtime_priority)")
	f.StringVar(&cpus, "cpus", "", "CPUs to sell (default: every CPU Maxwell may use)")
	f.StringVar(&profile, "cpuprofile", "", "write a pprof CPU profile of the window here")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// timingFlag is --timing: a meter.Timing by name.
type timingFlag struct{ t *meter.Timing }

func (f timingFlag) String() string {
	if f.t == nil {
		return meter.TimingThreadCPU.String()
	}
	return f.t.String()
}

func (f timingFlag) Set(s string) error {
	for _, t := range []meter.Timing{meter.TimingThreadCPU, meter.TimingWall} {
		if s == t.String() {
			*f.t = t
			return nil
		}
	}
	return fmt.Errorf("want thread_cpu or wall")
}

func (timingFlag) Type() string { return "timing" }

// newBenchLandauerCmd builds `maxwell bench landauer`, which measures what
// the Landauer meter costs, or meters one cgroup for a while.
func newBenchLandauerCmd(a *app) *cobra.Command {
	var (
		asJSON bool
		bo     meter.BenchOptions
		wo     meter.WatchOptions
		attach []string
	)
	cmd := &cobra.Command{
		Use:   "landauer",
		Short: "Measure the cost of the Landauer meter, or meter one cgroup with --watch",
		Long: `Measure what the Landauer meter (the eBPF program that counts the memory
cells free) costs: for each attachment (fentry, per-syscall tracepoints,
tp_btf/sys_enter), time tight loops of --calls syscalls in 2×--runs+1
runs that alternate without and with the meter attached (ABAB…A): a
metered call (madvise of one page with MADV_DONTNEED, from a watched
cgroup), an unrelated syscall (getppid), and the Miner's churn step (map
4 MiB, write every page, free it). Each run with the meter is paired with
the mean of its neighbours without; it prints the median and interquartile
range of the paired differences, and "too noisy to measure" instead of a
figure whose spread exceeds it. Loops are timed by the thread's CPU time
(--timing thread_cpu, which keeps other jobs' preemptions out) or by the
wall clock (--timing wall). Needs root; the process moves into a cgroup2
directory of its own while it runs.

With --watch DIR it instead meters the cgroup2 directory DIR for
--duration and prints what its tasks freed, per syscall, as the meter saw
it: for cross-checks against bpftrace or strace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := a.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			var order []meter.Attach
			for _, s := range attach {
				order = append(order, meter.Attach(s))
			}
			out := cmd.OutOrStdout()
			if wo.Dir != "" {
				wo.SysRoot, wo.CgroupRoot, wo.Order, wo.Log = a.sysRoot, a.cgroupRoot, order, log
				rep, err := meter.WatchCgroup(ctx, wo)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(out, rep)
				}
				return rep.WriteText(out)
			}
			bo.Attachments, bo.CgroupRoot, bo.ProcRoot, bo.SysRoot, bo.Now = order, a.cgroupRoot, a.procRoot, a.sysRoot, time.Now
			res, err := meter.MeasureOverhead(ctx, bo)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(out, res)
			}
			return res.WriteText(out)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.IntVar(&bo.Runs, "runs", 15, "runs with the meter, each between two without it")
	f.Var(timingFlag{&bo.Timing}, "timing", "what times the loops: thread_cpu or wall")
	f.IntVar(&bo.Calls, "calls", 100000, "syscalls per timed loop")
	f.IntVar(&bo.ChurnSteps, "churn-steps", 20, "Miner churn steps (4 MiB each) per timed run")
	f.StringSliceVar(&attach, "attach", nil, "attachments to use, in order: fentry, tracepoint, tp_btf (default all, best first)")
	f.StringVar(&wo.Dir, "watch", "", "meter this cgroup2 directory instead of measuring overhead")
	f.DurationVar(&wo.Duration, "duration", 10*time.Second, "how long --watch meters, with a unit, e.g. 30s")
	return cmd
}
