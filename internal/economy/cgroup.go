package economy

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// cgroupOf returns the cgroup c's first process is in, as /proc/PID/cgroup
// lists it (what cAdvisor's id label and Kepler key containers by), read
// once at spawn; "" for a cell in no cgroup (the signal backend) or whose
// process is already gone.
func (e *Economy) cgroupOf(c cell.Cell) string {
	if c.Freezer() == cell.FreezerSignal || c.PID() <= 0 {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(e.opts.Roots.Proc, strconv.Itoa(c.PID()), "cgroup"))
	if err != nil {
		e.log.Debug("cgroup of a new cell", "cell", c.Name(), "err", err)
		return ""
	}
	return procCgroup(b)
}

// procCgroup picks a process's cgroup from its /proc/PID/cgroup: the
// cgroup2 path ("0::/path") where it is below the root, else the path in
// the v1 hierarchy of the cpu controller, else the first listed. Maxwell
// makes a cell's cgroups at the same path in every hierarchy.
func procCgroup(b []byte) string {
	var v2, cpu, first string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		ctrls, path, ok := strings.Cut(rest, ":")
		if !ok || path == "" {
			continue
		}
		switch {
		case id == "0" && ctrls == "":
			v2 = path
		case slices.Contains(strings.Split(ctrls, ","), "cpu") && cpu == "":
			cpu = path
		}
		if first == "" {
			first = path
		}
	}
	switch {
	case v2 != "" && v2 != "/":
		return v2
	case cpu != "":
		return cpu
	case v2 != "":
		return v2
	}
	return first
}
