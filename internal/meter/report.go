package meter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"
)

// WatchReport is what one cgroup freed while it was watched.
type WatchReport struct {
	Cgroup   string  `json:"cgroup"`
	CgroupID uint64  `json:"cgroup_id"`
	Seconds  float64 `json:"seconds"`
	Source   Source  `json:"source"`
	Counts   Counts  `json:"counts"`
	Freed    uint64  `json:"freed_bytes"`
}

// WatchOptions configure WatchCgroup.
type WatchOptions struct {
	// Dir is the cgroup2 directory to meter.
	Dir        string
	SysRoot    string
	CgroupRoot string
	Order      []Attach
	Duration   time.Duration
	Now        func() time.Time
	Log        *slog.Logger
}

// WatchCgroup meters the cgroup2 directory o.Dir for o.Duration (or until
// ctx ends) and reports what its tasks freed, per kind of call, as the
// meter saw it: for cross-checks against bpftrace or strace.
func WatchCgroup(ctx context.Context, o WatchOptions) (WatchReport, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	var st syscall.Stat_t
	if err := syscall.Stat(o.Dir, &st); err != nil {
		return WatchReport{}, fmt.Errorf("meter: watch: %w", err)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "cgroup.procs")); err != nil {
		return WatchReport{}, fmt.Errorf("meter: watch %s: not a cgroup directory: %w", o.Dir, err)
	}
	m := Open(Options{
		EBPF:       EBPFOptions{SysRoot: o.SysRoot, Order: o.Order, Logger: o.Log},
		Accounting: AccountingOptions{CgroupRoot: o.CgroupRoot},
		Logger:     o.Log,
	})
	defer m.Close()
	if err := m.Watch(st.Ino); err != nil {
		return WatchReport{}, err
	}
	start := o.Now()
	t := time.NewTimer(o.Duration)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	counts, err := m.Read()
	if err != nil {
		return WatchReport{}, err
	}
	c := counts[st.Ino]
	return WatchReport{Cgroup: o.Dir, CgroupID: st.Ino, Seconds: o.Now().Sub(start).Seconds(), Source: m.Source(), Counts: c, Freed: c.FreedBytes()}, nil
}

// WriteText prints the report as a table.
func (r WatchReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "cgroup %s (id %d), %.1f s\nsource: %s\n\n", r.Cgroup, r.CgroupID, r.Seconds, r.Source)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tCALLS\tBYTES")
	c := r.Counts
	for k := range NumKinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", k, c.Calls[k], c.Bytes[k])
	}
	if c.Unattributed != 0 {
		fmt.Fprintf(tw, "unattributed (estimated)\t-\t%d\n", c.Unattributed)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\n", c.TotalCalls(), c.FreedBytes())
	return tw.Flush()
}

// WriteText prints the overhead measurement as a table. A figure is the
// median of its paired differences [p25, p75] (min, max), or, when the
// noise rule (Noisy) judges it, "too noisy to measure" with its quartiles;
// the header states the rule.
func (r BenchResult) WriteText(w io.Writer) error {
	timing := "the CPU time of the benchmark's thread (preemptions excluded)"
	if r.Timing == TimingWall {
		timing = "the wall clock"
	}
	fmt.Fprintf(w, "%d runs with the meter attached, each between two without it (ABAB…A), of %d calls and %d churn steps, timed by %s.\n"+
		"Extra cost with the meter: the median of the paired differences (each run with it less the mean of its neighbours) [p25, p75] (min, max).\n"+
		"Noise rule: a figure whose interquartile range (p75 − p25) exceeds its absolute median is too noisy to measure; its quartiles are shown instead.\n\n",
		r.Runs, r.Calls, r.ChurnSteps, timing)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTACH\tMETERED CALL ns\tUNRELATED SYSCALL ns\tCHURN STEP %\tBASE ns (madvise/getppid)\tCOUNTED")
	for _, a := range r.Attach {
		if a.Err != "" {
			fmt.Fprintf(tw, "%s\tunavailable: %s\n", a.Attach, a.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f/%.0f\t%d/%d\n", a.Attach,
			a.MeteredNs.text("%.0f"), a.UnrelatedNs.text("%.0f"), a.ChurnPct.text("%.2f"),
			a.BaseMeteredNs, a.BaseUnrelatedNs, a.Counted, a.Expected)
	}
	return tw.Flush()
}

// text renders a figure with its spread, each number in format f, or
// the noise rule's verdict.
func (s Spread) text(f string) string {
	if s.TooNoisy {
		return fmt.Sprintf("too noisy to measure [p25 "+f+", p75 "+f+"]", s.P25, s.P75)
	}
	return fmt.Sprintf(f+" ["+f+", "+f+"] ("+f+", "+f+")", s.Median, s.P25, s.P75, s.Min, s.Max)
}
