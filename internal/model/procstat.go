package model

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/prometheus/procfs"
)

// userHZ is the unit of the counters in /proc/stat (USER_HZ, 100 on every
// Linux architecture Maxwell runs on), as procfs takes it too.
const userHZ = 100

// cpuStats are the cpu lines of /proc/stat: the aggregate and each CPU's,
// in seconds.
type cpuStats struct {
	total procfs.CPUStat
	cpu   map[int64]procfs.CPUStat
}

// readCPUStats reads the cpu lines of the stat file at path. It stands in
// for procfs.FS.Stat, which parses every line of the file (interrupts and
// softirqs included) with fmt.Sscanf: 40 µs a call here, the daemon's
// largest fixed cost per tick, for the dozen numbers it needs.
func readCPUStats(path string) (cpuStats, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return cpuStats{}, err
	}
	return parseCPUStats(b)
}

// parseCPUStats parses the cpu lines of a /proc/stat; other lines are
// skipped unread.
func parseCPUStats(b []byte) (cpuStats, error) {
	st := cpuStats{cpu: map[int64]procfs.CPUStat{}}
	seen := false
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if !bytes.HasPrefix(line, []byte("cpu")) {
			continue
		}
		f := bytes.Fields(line)
		if len(f) < 5 {
			return cpuStats{}, fmt.Errorf("model: stat line %q: too few fields", line)
		}
		var v [10]float64
		for i := 1; i < len(f) && i <= len(v); i++ {
			n, err := strconv.ParseUint(string(f[i]), 10, 64)
			if err != nil {
				return cpuStats{}, fmt.Errorf("model: stat line %q: %w", line, err)
			}
			v[i-1] = float64(n) / userHZ
		}
		c := procfs.CPUStat{User: v[0], Nice: v[1], System: v[2], Idle: v[3], Iowait: v[4],
			IRQ: v[5], SoftIRQ: v[6], Steal: v[7], Guest: v[8], GuestNice: v[9]}
		if id := f[0][3:]; len(id) == 0 {
			st.total, seen = c, true
		} else {
			n, err := strconv.ParseInt(string(id), 10, 64)
			if err != nil {
				return cpuStats{}, fmt.Errorf("model: stat line %q: %w", line, err)
			}
			st.cpu[n] = c
		}
	}
	if !seen {
		return cpuStats{}, fmt.Errorf("model: stat file has no aggregate cpu line")
	}
	return st, nil
}
