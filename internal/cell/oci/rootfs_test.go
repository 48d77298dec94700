package oci

import (
	"context"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRootFSBuild(t *testing.T) {
	if testRootFS == "" {
		t.Skip(skipReason)
	}
	// The shared test root file system: busybox applets and the test
	// binary with everything its ELF headers ask for.
	for _, p := range []string{"bin/busybox", "bin/helper", "etc/passwd", "proc", "tmp"} {
		if _, err := os.Stat(filepath.Join(testRootFS, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(testRootFS, "bin", "sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v; want busybox", l, err)
	}
	f, err := elf.Open(filepath.Join(testRootFS, "bin", "helper"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range libs {
		found := false
		for _, d := range libDirs(f.Machine) {
			if _, err := os.Stat(filepath.Join(testRootFS, d, lib)); err == nil {
				found = true
			}
		}
		if !found {
			t.Errorf("library %s of the helper not in the root file system", lib)
		}
	}
}

func TestRootFSBuildErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	notELF := filepath.Join(dir, "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    RootFS
		dir  string
		want error
	}{
		{"relative dir", RootFS{}, "rootfs", nil},
		{"not ELF", RootFS{Binaries: map[string]string{"/bin/x": notELF}}, filepath.Join(dir, "a"), ErrNotELF},
		{"missing binary", RootFS{Binaries: map[string]string{"/bin/x": filepath.Join(dir, "nope")}}, filepath.Join(dir, "b"), ErrNotELF},
		{"relative destination", RootFS{Binaries: map[string]string{"bin/x": "/bin/true"}}, filepath.Join(dir, "c"), nil},
		{"non-empty dir", RootFS{}, dir, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Build(ctx, tt.dir)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Build = %v; want %v", err, tt.want)
			}
		})
	}
}

func TestRuntimeMessage(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{`{"level":"error","msg":"runc run failed: exec: \"/x\": no such file","time":"t"}` + "\n" + `{"level":"debug","msg":"noise"}`,
			`: runc run failed: exec: "/x": no such file`},
		{`time="t" level=error msg="container \"a\" does not exist"`, `: container "a" does not exist`},
		{"plain failure\n", ": plain failure"},
	}
	for _, tt := range tests {
		if got := runtimeMessage([]byte(tt.in)); got != tt.want {
			t.Errorf("runtimeMessage(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
