// Package vmtest finds and builds what tests of microVM cells need: QEMU,
// a guest kernel, a static maxwell binary and the guest image, built once
// per test binary and cached across runs (vmimage.Build is
// deterministic). Each helper skips the test with the precise reason
// when the host lacks something.
package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cell/oci"
	"github.com/maxwellhq/maxwell/internal/vmimage"
)

// Environment variables that point the tests at prebuilt parts.
const (
	// EnvKernel names the guest kernel (a vmlinuz whose modules lie at
	// vmimage.ModulesDir of it). .ci/run sets it to the kernel it
	// extracts from Debian's linux-image-cloud-amd64.
	EnvKernel = "MAXWELL_VM_KERNEL"
	// EnvMaxwell names a prebuilt static maxwell binary to put in the
	// guest instead of building ./cmd/maxwell.
	EnvMaxwell = "MAXWELL_VM_TEST_MAXWELL"
)

// QEMUBinary is the QEMU the tests run.
const QEMUBinary = "qemu-system-x86_64"

// NeedRoot skips t unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("microVM cells need root: the VMM runs in a cell's cgroups")
	}
}

// QEMU returns the path of qemu-system-x86_64, or skips t.
func QEMU(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath(QEMUBinary)
	if err != nil {
		t.Skipf("no %s in PATH (Debian: apt-get install qemu-system-x86)", QEMUBinary)
	}
	return p
}

// Kernel returns the guest kernel: $MAXWELL_VM_KERNEL, else the newest
// /boot/vmlinuz-*; it skips t when there is none.
func Kernel(t testing.TB) string {
	t.Helper()
	if k := os.Getenv(EnvKernel); k != "" {
		if _, err := os.Stat(k); err != nil {
			t.Fatalf("$%s: %v", EnvKernel, err)
		}
		return k
	}
	k, err := vmimage.DefaultKernel("/boot")
	if err != nil {
		t.Skipf("no guest kernel: $%s is unset and %v", EnvKernel, err)
	}
	return k
}

var (
	buildOnce sync.Once
	built     vmimage.Image
	builtMx   string // the host path of the guest's maxwell binary
	buildErr  error
	buildSkip string
)

// Maxwell returns the host path of the static maxwell binary the guest
// image holds (building the image if need be).
func Maxwell(t testing.TB) string {
	t.Helper()
	Image(t)
	return builtMx
}

// Image returns the guest image with busybox and a static maxwell binary,
// built once per test binary into the user's cache directory. It skips t
// where QEMU, a kernel or busybox-static is missing.
func Image(t testing.TB) vmimage.Image {
	t.Helper()
	QEMU(t)
	kernel := Kernel(t)
	buildOnce.Do(func() {
		if _, err := os.Stat(oci.DefaultBusybox); err != nil {
			buildSkip = fmt.Sprintf("no %s (Debian: apt-get install busybox-static)", oci.DefaultBusybox)
			return
		}
		dir, err := cacheDir()
		if err != nil {
			buildErr = err
			return
		}
		// Test binaries of several packages build at once under go test
		// ./...: one at a time in the shared cache.
		lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			buildErr = err
			return
		}
		defer lock.Close()
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			buildErr = fmt.Errorf("locking %s: %w", lock.Name(), err)
			return
		}
		mx := os.Getenv(EnvMaxwell)
		if mx == "" {
			if mx, err = buildMaxwell(filepath.Join(dir, "maxwell")); err != nil {
				buildErr = err
				return
			}
		}
		builtMx = mx
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		built, buildErr = vmimage.Build(ctx, vmimage.Options{Kernel: kernel, Maxwell: mx, Out: filepath.Join(dir, "image")})
	})
	if buildSkip != "" {
		t.Skip(buildSkip)
	}
	if buildErr != nil {
		t.Fatalf("building the guest image: %v", buildErr)
	}
	return built
}

// cacheDir is where the tests keep the image and binary between runs.
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	d := filepath.Join(base, "maxwell-test", "vm")
	return d, os.MkdirAll(d, 0o755)
}

// buildMaxwell builds ./cmd/maxwell of this module, static and stripped
// (the guest has no libc), at out.
func buildMaxwell(out string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "github.com/maxwellhq/maxwell/cmd/maxwell")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/maxwell for the guest: %w\n%s", err, b)
	}
	return out, nil
}
