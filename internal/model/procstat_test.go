package model

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/procfs"
)

// TestCPUStatsMatchProcfs: the cpu lines read here are what procfs reads
// of the same file, on every fixture and on this host's /proc/stat.
func TestCPUStatsMatchProcfs(t *testing.T) {
	roots := []string{"testdata/proc"}
	if _, err := os.Stat("/proc/stat"); err == nil {
		roots = append(roots, "/proc")
	}
	if len(roots) == 0 {
		t.Fatal("no stat file to compare")
	}
	for _, root := range roots {
		b, err := os.ReadFile(filepath.Join(root, "stat"))
		if err != nil {
			continue
		}
		fs, err := procfs.NewFS(root)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fs.Stat()
		if err != nil {
			t.Fatalf("%s: procfs: %v", root, err)
		}
		got, err := parseCPUStats(b)
		if err != nil {
			t.Fatalf("%s: %v", root, err)
		}
		// /proc moves between the two reads: compare a fixture exactly,
		// the live file by its shape.
		if root == "/proc" {
			if len(got.cpu) != len(want.CPU) || got.total.User == 0 {
				t.Errorf("/proc/stat: %d CPUs (procfs %d), user %v", len(got.cpu), len(want.CPU), got.total.User)
			}
			continue
		}
		if got.total != want.CPUTotal || len(got.cpu) != len(want.CPU) {
			t.Errorf("%s: total %+v, want %+v; %d CPUs, want %d", root, got.total, want.CPUTotal, len(got.cpu), len(want.CPU))
		}
		for id, c := range want.CPU {
			if got.cpu[id] != c {
				t.Errorf("%s: cpu%d %+v, want %+v", root, id, got.cpu[id], c)
			}
		}
	}
	for _, bad := range []string{"", "intr 1 2\n", "cpu 1 2\n", "cpu  1 2 3 x 5\n", "cpu 1 2 3 4 5\ncpuX 1 2 3 4\n"} {
		if _, err := parseCPUStats([]byte(bad)); err == nil {
			t.Errorf("parseCPUStats(%q) accepted it", bad)
		}
	}
}
