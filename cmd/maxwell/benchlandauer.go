package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/maxwellhq/maxwell/internal/meter"
)

// watchReport is what `maxwell bench landauer --watch DIR --json` prints.
type watchReport struct {
	Cgroup   string       `json:"cgroup"`
	CgroupID uint64       `json:"cgroup_id"`
	Seconds  float64      `json:"seconds"`
	Source   meter.Source `json:"source"`
	Counts   meter.Counts `json:"counts"`
	Freed    uint64       `json:"freed_bytes"`
}

// newBenchLandauerCmd builds `maxwell bench landauer`, which measures what
// the Landauer meter costs, or meters one cgroup for a while.
func newBenchLandauerCmd(a *app) *cobra.Command {
	var (
		asJSON   bool
		runs     int
		calls    int
		steps    int
		watch    string
		duration time.Duration
		attach   []string
	)
	cmd := &cobra.Command{
		Use:   "landauer",
		Short: "Measure the cost of the Landauer meter, or meter one cgroup with --watch",
		Long: `Measure what the Landauer meter (the eBPF program that counts the memory
cells free) costs: for each attachment (fentry, per-syscall tracepoints,
tp_btf/sys_enter), --runs times, time tight loops of --calls syscalls
without and then with the meter attached: a metered call (madvise of one
page with MADV_DONTNEED, from a watched cgroup), an unrelated syscall
(getppid), and the Miner's churn step (map 4 MiB, write every page, free
it). Prints the median and spread of the paired differences. Needs root;
the process moves into a cgroup2 directory of its own while it runs.

With --watch DIR it instead meters the cgroup2 directory DIR for
--duration and prints what its tasks freed, per syscall, as the meter saw
it: for cross-checks against bpftrace or strace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := a.logger(cmd.ErrOrStderr()); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			var order []meter.Attach
			for _, s := range attach {
				order = append(order, meter.Attach(s))
			}
			out := cmd.OutOrStdout()
			if watch != "" {
				return watchCgroup(ctx, cmd, a, watch, duration, order, asJSON)
			}
			res, err := meter.MeasureOverhead(ctx, meter.BenchOptions{
				Attachments: order, Runs: runs, Calls: calls, ChurnSteps: steps,
				CgroupRoot: a.cgroupRoot, ProcRoot: a.procRoot, SysRoot: a.sysRoot,
				Now: time.Now,
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(out, res)
			}
			fmt.Fprintf(out, "%d paired runs of %d calls and %d churn steps; extra cost with the meter attached, median [p25, p75] (min, max)\n\n",
				res.Runs, res.Calls, res.ChurnSteps)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ATTACH\tMETERED CALL ns\tUNRELATED SYSCALL ns\tCHURN STEP %\tBASE ns (madvise/getppid)\tCOUNTED")
			sp := func(s meter.Spread, f string) string {
				return fmt.Sprintf(f+" ["+f+", "+f+"] ("+f+", "+f+")", s.Median, s.P25, s.P75, s.Min, s.Max)
			}
			for _, r := range res.Attach {
				if r.Err != "" {
					fmt.Fprintf(tw, "%s\tunavailable: %s\n", r.Attach, r.Err)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f/%.0f\t%d/%d\n", r.Attach,
					sp(r.MeteredNs, "%.0f"), sp(r.UnrelatedNs, "%.0f"), sp(r.ChurnPct, "%.2f"),
					r.BaseMeteredNs, r.BaseUnrelatedNs, r.Counted, r.Expected)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.IntVar(&runs, "runs", 15, "paired runs (without, then with the meter)")
	f.IntVar(&calls, "calls", 100000, "syscalls per timed loop")
	f.IntVar(&steps, "churn-steps", 20, "Miner churn steps (4 MiB each) per timed run")
	f.StringSliceVar(&attach, "attach", nil, "attachments to use, in order: fentry, tracepoint, tp_btf (default all, best first)")
	f.StringVar(&watch, "watch", "", "meter this cgroup2 directory instead of measuring overhead")
	f.DurationVar(&duration, "duration", 10*time.Second, "how long --watch meters")
	return cmd
}

// watchCgroup meters the cgroup2 directory dir for d and prints its counts.
func watchCgroup(ctx context.Context, cmd *cobra.Command, a *app, dir string, d time.Duration, order []meter.Attach, asJSON bool) error {
	log, err := a.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return fmt.Errorf("--watch: %w", err)
	}
	if _, err := os.Stat(dir + "/cgroup.procs"); err != nil {
		return fmt.Errorf("--watch %s: not a cgroup directory: %w", dir, err)
	}
	m := meter.Open(meter.Options{
		EBPF:       meter.EBPFOptions{SysRoot: a.sysRoot, Order: order, Logger: log},
		Accounting: meter.AccountingOptions{CgroupRoot: a.cgroupRoot},
		Logger:     log,
	})
	defer m.Close()
	if err := m.Watch(st.Ino); err != nil {
		return err
	}
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	counts, err := m.Read()
	if err != nil {
		return err
	}
	c := counts[st.Ino]
	rep := watchReport{Cgroup: dir, CgroupID: st.Ino, Seconds: time.Since(start).Seconds(), Source: m.Source(), Counts: c, Freed: c.FreedBytes()}
	out := cmd.OutOrStdout()
	if asJSON {
		return printJSON(out, rep)
	}
	fmt.Fprintf(out, "cgroup %s (id %d), %.1f s\nsource: %s\n\n", dir, st.Ino, rep.Seconds, rep.Source)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tCALLS\tBYTES")
	for k := range meter.NumKinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", k, c.Calls[k], c.Bytes[k])
	}
	if c.Unattributed != 0 {
		fmt.Fprintf(tw, "unattributed (estimated)\t-\t%d\n", c.Unattributed)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\n", c.TotalCalls(), c.FreedBytes())
	return tw.Flush()
}
