package vm

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHostTSCkHz(t *testing.T) {
	tests := []struct {
		name    string
		cpuinfo string
		want    int
		ok      bool
	}{
		{"epyc", "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu MHz\t\t: 2596.120\nflags\t\t: fpu tsc constant_tsc\n\nprocessor\t: 1\ncpu MHz\t\t: 1200.000\n", 2596120, true},
		{"integer", "cpu MHz : 3000\n", 3000000, true},
		{"none", "processor\t: 0\nBogoMIPS\t: 50.00\n", 0, false},
		{"garbage", "cpu MHz\t\t: fast\n", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.WriteFile(filepath.Join(root, "cpuinfo"), []byte(tc.cpuinfo), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := hostTSCkHz(root)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("hostTSCkHz = %d, %v; want %d (ok %v)", got, err, tc.want, tc.ok)
			}
		})
	}
}
