package oci

import (
	"context"
	"testing"

	"github.com/maxwellhq/maxwell/internal/cell"
)

// BenchmarkPauseResume times one "runc pause" plus "runc resume" of a
// busy container, each until the kernel reports the new state.
func BenchmarkPauseResume(b *testing.B) {
	if testRootFS == "" {
		b.Skip(skipReason)
	}
	opts := DefaultOptions()
	opts.RootFS = testRootFS
	opts.StateDir = b.TempDir()
	opts.Parent = "mxoci-bench"
	ctx := context.Background()
	m, err := NewManager(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	c, err := m.Start(ctx, cell.Spec{Name: "busy", Path: "/bin/sh", Args: []string{"-c", "while :; do :; done"}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for b.Loop() {
		if err := c.Pause(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Resume(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
