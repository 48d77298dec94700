package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	in := Read()
	if in.GoVersion != runtime.Version() || in.Version == "" || !strings.Contains(in.String(), runtime.Version()) {
		t.Errorf("Read() = %+v, %q", in, in.String())
	}
	s := Info{Version: "v1.2.3", Revision: "0123456789abcdef", Modified: true, Time: "2026-12-01T00:00:00Z", GoVersion: "go1.26", Platform: "linux/amd64"}.String()
	if s != "v1.2.3 (0123456789ab, modified, 2026-12-01T00:00:00Z), go1.26, linux/amd64" {
		t.Errorf("String() = %q", s)
	}
}
