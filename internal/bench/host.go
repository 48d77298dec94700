package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/cpuset"
)

// HostPauseOptions configure PauseHost.
type HostPauseOptions struct {
	CgroupRoot, ProcRoot string
	Trials               int
	// CPU pins the busy cells (-1: no pinning).
	CPU int
	// ControllerCPUs is "auto" (every allowed CPU but the cells'), "none"
	// or a CPU list, for the measuring thread.
	ControllerCPUs string
	// OCI measures a runc container too (needs runc and busybox-static).
	OCI bool
	Log *slog.Logger
}

// PauseHost measures pause and resume under every freezer this host
// offers, with busy cells under a cgroup parent of their own, and with
// opts.OCI a runc container as well.
func PauseHost(ctx context.Context, opts HostPauseOptions) (PauseResult, []int, error) {
	co := cell.DefaultOptions()
	co.CgroupRoot, co.ProcRoot, co.Logger = opts.CgroupRoot, opts.ProcRoot, opts.Log
	co.Parent = "maxwell-bench-" + strconv.Itoa(os.Getpid())
	m, err := cell.NewManager(co)
	if err != nil {
		return PauseResult{}, nil, err
	}
	defer m.Close()
	po := PauseOptions{Trials: opts.Trials, Gap: time.Millisecond}
	if opts.CPU >= 0 {
		po.CPUs = []int{opts.CPU}
	}
	if po.ControllerCPUs, err = ControllerCPUs(opts.ControllerCPUs, po.CPUs); err != nil {
		return PauseResult{}, nil, err
	}
	res, err := MeasurePause(ctx, m, po)
	if err != nil || !opts.OCI {
		return res, po.ControllerCPUs, err
	}
	// The same measurement on a runc container: a busybox busy loop in a
	// root file system built for the occasion.
	dir, err := os.MkdirTemp("", "maxwell-bench-oci-")
	if err != nil {
		return res, po.ControllerCPUs, err
	}
	defer os.RemoveAll(dir)
	root := dir + "/rootfs"
	if err := (oci.RootFS{Busybox: oci.DefaultBusybox}).Build(ctx, root); err != nil {
		return res, po.ControllerCPUs, fmt.Errorf("OCI root file system: %w", err)
	}
	oo := oci.DefaultOptions()
	oo.RootFS, oo.CgroupRoot, oo.ProcRoot, oo.Logger = root, opts.CgroupRoot, opts.ProcRoot, opts.Log
	oo.StateDir, oo.Parent = dir+"/oci", co.Parent+"-oci"
	om, err := oci.NewManager(ctx, oo)
	if err != nil {
		return res, po.ControllerCPUs, err
	}
	defer om.Close()
	opo := po
	opo.Freezers = []cell.FreezerKind{om.Freezer()}
	ores, err := MeasurePause(ctx, om, opo)
	if err != nil {
		return res, po.ControllerCPUs, err
	}
	for i := range ores.Freezers {
		ores.Freezers[i].Backend = "oci"
	}
	res.Freezers = append(res.Freezers, ores.Freezers...)
	return res, po.ControllerCPUs, nil
}

// ControllerCPUs resolves a --controller-cpus flag: "none" pins nothing,
// "auto" takes every allowed CPU the cells are not pinned to (nothing if
// that leaves none), and anything else is a CPU list.
func ControllerCPUs(flag string, cellCPUs []int) ([]int, error) {
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

// WriteText prints the result as a table, times in microseconds.
func (r PauseResult) WriteText(w io.Writer, controllerCPUs []int) error {
	fmt.Fprintln(w, r.Layout)
	fmt.Fprintf(w, "%d trials per freezer, times in microseconds; measuring thread on CPUs %v\n\n", r.Trials, controllerCPUs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "FREEZER\tBACKEND\tPAUSE P50\tP99\tMAX\tRESUME P50\tP99\tMAX\t")
	for _, f := range r.Freezers {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", f.Freezer, f.Backend,
			f.Pause.P50us, f.Pause.P99us, f.Pause.MaxUs, f.Resume.P50us, f.Resume.P99us, f.Resume.MaxUs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range r.Freezers {
		if f.Error != "" {
			fmt.Fprintf(w, "%s: %s (after %d trials)\n", f.Freezer, f.Error, f.Pause.N)
		}
	}
	return nil
}
