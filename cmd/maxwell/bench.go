package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/bench"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cpuset"
)

// newBenchCmd builds `maxwell bench`, which measures Maxwell's own
// machinery on this host.
func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Maxwell's own machinery on this host",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBenchPauseCmd(a), newBenchLandauerCmd(a))
	return cmd
}

func newBenchPauseCmd(a *app) *cobra.Command {
	var (
		trials  int
		asJSON  bool
		cpu     int
		ctlCPUs string
		withOCI bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "pause",
		Short: "Measure how long pausing and resuming a busy cell takes under each freezer",
		Long: `Start one busy cell per freezer this host offers (the cgroup v1 freezer,
cgroup v2 cgroup.freeze, SIGSTOP/SIGCONT to a process group) and time
--trials pauses and resumes of each: from the request until the kernel
reports every task stopped, or running again. Prints p50, p99 and max in
microseconds. Needs root for the cgroup freezers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := a.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			opts := cell.DefaultOptions()
			opts.CgroupRoot = a.cgroupRoot
			opts.ProcRoot = a.procRoot
			opts.Logger = log
			m, err := cell.NewManager(opts)
			if err != nil {
				return err
			}
			defer m.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			po := bench.PauseOptions{Trials: trials, Gap: time.Millisecond}
			if cpu >= 0 {
				po.CPUs = []int{cpu}
			}
			if po.ControllerCPUs, err = controllerCPUs(ctlCPUs, po.CPUs); err != nil {
				return err
			}
			res, err := bench.MeasurePause(ctx, m, po)
			if err != nil {
				return err
			}
			if withOCI {
				// The same measurement on a runc container: a busybox busy
				// loop in a root file system built for the occasion.
				dir, err := os.MkdirTemp("", "maxwell-bench-oci-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				om, err := newOCI(ctx, a, log, "", dir)
				if err != nil {
					return err
				}
				defer om.Close()
				opo := po
				opo.Freezers = []cell.FreezerKind{om.Freezer()}
				ores, err := bench.MeasurePause(ctx, om, opo)
				if err != nil {
					return err
				}
				for i := range ores.Freezers {
					ores.Freezers[i].Backend = "oci"
				}
				res.Freezers = append(res.Freezers, ores.Freezers...)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, res)
			}
			fmt.Fprintln(out, res.Layout)
			fmt.Fprintf(out, "%d trials per freezer, times in microseconds; busy cells on CPUs %v, measuring thread on CPUs %v\n\n", res.Trials, po.CPUs, po.ControllerCPUs)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "FREEZER\tBACKEND\tPAUSE P50\tP99\tMAX\tRESUME P50\tP99\tMAX\t")
			for _, f := range res.Freezers {
				fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", f.Freezer, f.Backend,
					f.Pause.P50us, f.Pause.P99us, f.Pause.MaxUs, f.Resume.P50us, f.Resume.P99us, f.Resume.MaxUs)
			}
			tw.Flush()
			for _, f := range res.Freezers {
				if f.Error != "" {
					fmt.Fprintf(out, "%s: %s (after %d trials)\n", f.Freezer, f.Error, f.Pause.N)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&trials, "trials", 200, "pause/resume pairs per freezer")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.IntVar(&cpu, "cpu", 0, "CPU to pin the busy cells to (-1: no pinning)")
	f.StringVar(&ctlCPUs, "controller-cpus", "auto", `CPUs for the measuring thread: a list, "auto" (every allowed CPU but the cells', if any) or "none"`)
	f.BoolVar(&withOCI, "oci", false, "also measure a runc container (runc's own pause; needs runc and busybox-static)")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	return cmd
}

// controllerCPUs resolves --controller-cpus: "none" pins nothing, "auto"
// takes every allowed CPU the cells are not pinned to (nothing if that
// leaves none), and anything else is a CPU list.
func controllerCPUs(flag string, cellCPUs []int) ([]int, error) {
	switch flag {
	case "none":
		return nil, nil
	case "auto":
		allowed, err := cpuset.Allowed()
		if err != nil {
			return nil, err
		}
		var out []int
		for _, c := range allowed {
			if !slices.Contains(cellCPUs, c) {
				out = append(out, c)
			}
		}
		if len(cellCPUs) == 0 {
			return nil, nil
		}
		return out, nil
	}
	cpus, err := cpuset.Parse(flag)
	if err != nil {
		return nil, fmt.Errorf("--controller-cpus: %w", err)
	}
	return cpus, nil
}
