package vmimage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/maxwellhq/maxwell/internal/cell/oci"
)

// testKernel returns a Debian kernel with its modules, or skips.
func testKernel(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("MAXWELL_VM_KERNEL"); k != "" {
		return k
	}
	k, err := DefaultKernel("/boot")
	if err != nil {
		t.Skipf("no guest kernel: $MAXWELL_VM_KERNEL is unset and %v", err)
	}
	return k
}

func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(oci.DefaultBusybox); err != nil {
		t.Skipf("no %s (Debian: apt-get install busybox-static)", oci.DefaultBusybox)
	}
}

// listArchive lists an initramfs with busybox's own cpio, a reader that
// is not ours.
func listArchive(t *testing.T, initrd string) []string {
	t.Helper()
	f, err := os.Open(initrd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(oci.DefaultBusybox, "cpio", "-t")
	cmd.Stdin = zr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("busybox cpio -t: %v", err)
	}
	return strings.Fields(string(out))
}

func TestBuildRealKernel(t *testing.T) {
	needBusybox(t)
	kernel := testKernel(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img, err := Build(ctx, Options{Kernel: kernel, Out: out})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	want := []string{"virtio_ring.ko", "virtio.ko", "virtio_mmio.ko", "virtio_console.ko", "virtio_balloon.ko", "virtio_blk.ko"}
	if !slices.Equal(img.Modules, want) {
		t.Errorf("Modules = %v, want %v (dependencies first)", img.Modules, want)
	}
	names := listArchive(t, img.Initrd)
	for _, n := range []string{"init", "bin/busybox", "bin/sh", "dev/console", "etc/maxwell/modules", "lib/modules/virtio_console.ko"} {
		if !slices.Contains(names, n) {
			t.Errorf("archive lacks %s", n)
		}
	}
	if img.Cached {
		t.Error("first Build says Cached")
	}
	first, _ := os.ReadFile(img.Initrd)

	again, err := Build(ctx, Options{Kernel: kernel, Out: out})
	if err != nil || !again.Cached || again.Digest != img.Digest {
		t.Errorf("second Build = %+v, %v; want the cached image", again, err)
	}
	// Load finds what Build wrote; an empty directory holds no image, and
	// one whose files are gone neither.
	loaded, err := Load(out)
	if err != nil || loaded.Digest != img.Digest || loaded.Kernel != img.Kernel || loaded.Initrd != img.Initrd {
		t.Errorf("Load = %+v, %v; want %+v", loaded, err, img)
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrNoImage) || !strings.Contains(err.Error(), "maxwell vm image --out") {
		t.Errorf("Load of an empty directory: %v, want ErrNoImage saying how to build one", err)
	}
	broken := t.TempDir()
	if b, err := os.ReadFile(filepath.Join(out, manifestFile)); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(filepath.Join(broken, manifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(broken); !errors.Is(err, ErrNoImage) {
		t.Errorf("Load of a manifest without its files: %v, want ErrNoImage", err)
	}
	// Built afresh elsewhere: the same bytes.
	other, err := Build(ctx, Options{Kernel: kernel, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(other.Initrd); !bytes.Equal(b, first) {
		t.Error("the same inputs gave a different initramfs")
	}
}

// fakeModules writes a modules directory whose modules are copies of the
// kernel's real virtio modules, compressed as named, plus a
// modules.builtin.
func fakeModules(t *testing.T, kernel string, compress map[string]string, builtin ...string) string {
	t.Helper()
	src := ModulesDir(kernel)
	idx, err := moduleIndex(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "lib", "modules", "9.9")
	if err := os.MkdirAll(filepath.Join(dir, "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"virtio_ring", "virtio", "virtio_mmio", "virtio_console"} {
		if slices.Contains(builtin, name) {
			continue
		}
		b, err := readModule(idx[name])
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		suffix := ".ko"
		switch compress[name] {
		case "xz":
			w, err := xz.NewWriter(&buf)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(b)
			w.Close()
			suffix = ".ko.xz"
		case "zst":
			w, err := zstd.NewWriter(&buf)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(b)
			w.Close()
			suffix = ".ko.zst"
		default:
			buf.Write(b)
		}
		if err := os.WriteFile(filepath.Join(dir, "kernel", strings.ReplaceAll(name, "_", "-")+suffix), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var bl string
	for _, b := range builtin {
		bl += "kernel/drivers/virtio/" + b + ".ko\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(bl), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestResolveModules(t *testing.T) {
	kernel := testKernel(t)
	tests := []struct {
		name     string
		compress map[string]string
		builtin  []string
		wanted   []string
		mods     []string
		bi       []string
		err      error
	}{
		{name: "plain", wanted: []string{"virtio_mmio", "virtio_console"},
			mods: []string{"virtio_ring", "virtio", "virtio_mmio", "virtio_console"}},
		{name: "xz and zstd, as Debian 13 and Ubuntu ship them",
			compress: map[string]string{"virtio_ring": "xz", "virtio": "zst", "virtio_console": "xz"},
			wanted:   []string{"virtio_console", "virtio-mmio"},
			mods:     []string{"virtio_ring", "virtio", "virtio_console", "virtio_mmio"}},
		{name: "built in", builtin: []string{"virtio_ring", "virtio"}, wanted: []string{"virtio_mmio"},
			mods: []string{"virtio_mmio"}, bi: []string{"virtio", "virtio_ring"}},
		{name: "missing", wanted: []string{"virtio_balloon"}, err: ErrModule},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := fakeModules(t, kernel, tc.compress, tc.builtin...)
			mods, bi, err := resolveModules(dir, tc.wanted)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range mods {
				names = append(names, m.name)
				if !bytes.HasPrefix(m.data, []byte("\x7fELF")) {
					t.Errorf("%s: not decompressed to ELF", m.name)
				}
			}
			if !slices.Equal(names, tc.mods) || !slices.Equal(bi, tc.bi) {
				t.Errorf("modules %v builtin %v; want %v and %v", names, bi, tc.mods, tc.bi)
			}
		})
	}
	t.Run("no modules directory: all built in", func(t *testing.T) {
		mods, bi, err := resolveModules(filepath.Join(t.TempDir(), "none"), DefaultModules)
		if err != nil || len(mods) != 0 || !slices.Equal(bi, DefaultModules) {
			t.Errorf("= %v, %v, %v", mods, bi, err)
		}
	})
}

// TestCommandLine runs the script CommandLine encodes with the host's sh,
// with env standing in for the guest's: arguments, environment and
// directory arrive intact, whatever they hold.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	cmd := Command{
		Path: "/bin/sh",
		Args: []string{"-c", `printf '%s|' "$0" "$1" "$X" "$(pwd)"`, "it's $HOME", "a b"},
		Env:  []string{"X=x y 'z'", "PATH=/usr/bin:/bin"},
		Dir:  dir,
	}
	line, err := CommandLine("console=ttyS0", cmd)
	if err != nil {
		t.Fatal(err)
	}
	var script []byte
	for _, w := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(w, "maxwell.run="); ok {
			if script, err = base64.StdEncoding.DecodeString(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	out, err := exec.Command("/bin/sh", "-c", string(script)).Output()
	if err != nil {
		t.Fatalf("script %q: %v", script, err)
	}
	want := "it's $HOME|a b|x y 'z'|" + dir + "|"
	if string(out) != want {
		t.Errorf("ran %q, want %q", out, want)
	}

	if _, err := CommandLine("", Command{Path: "/bin/true", Args: []string{strings.Repeat("x", MaxCommandLine)}}); !errors.Is(err, ErrCommandLine) {
		t.Errorf("over-long command: %v, want ErrCommandLine", err)
	}
	if _, err := CommandLine("", Command{Path: "/bin/true", RootDevice: "/dev/vda", Dir: "/tmp"}); !errors.Is(err, ErrCommandLine) {
		t.Errorf("working directory in a root image: %v, want ErrCommandLine", err)
	}
	if l, err := CommandLine("", Command{Path: "/bin/true", RootDevice: "/dev/vda"}); err != nil || !strings.Contains(l, "maxwell.root=/dev/vda") {
		t.Errorf("root image: %q, %v", l, err)
	}
	if _, err := CommandLine("", Command{Path: "/bin/true", Env: []string{"NOEQUALS"}}); !errors.Is(err, ErrCommandLine) {
		t.Errorf("bad environment entry: %v, want ErrCommandLine", err)
	}
}

func TestDefaultKernelAndModulesDir(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"6.1.0-9-cloud-amd64", "6.1.0-57-cloud-amd64", "5.10.0-30-amd64"} {
		os.MkdirAll(filepath.Join(root, "boot"), 0o755)
		os.WriteFile(filepath.Join(root, "boot", "vmlinuz-"+v), nil, 0o644)
	}
	os.MkdirAll(filepath.Join(root, "usr", "lib", "modules", "6.1.0-57-cloud-amd64"), 0o755)
	k, err := DefaultKernel(filepath.Join(root, "boot"))
	if err != nil || filepath.Base(k) != "vmlinuz-6.1.0-57-cloud-amd64" {
		t.Fatalf("DefaultKernel = %q, %v; want the newest, 6.1.0-57", k, err)
	}
	if got, want := ModulesDir(k), filepath.Join(root, "usr", "lib", "modules", "6.1.0-57-cloud-amd64"); got != want {
		t.Errorf("ModulesDir = %q, want %q (merged /usr)", got, want)
	}
	if _, err := DefaultKernel(t.TempDir()); !errors.Is(err, ErrNoKernel) {
		t.Errorf("empty boot directory: %v, want ErrNoKernel", err)
	}
}
