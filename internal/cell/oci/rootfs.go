package oci

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNotELF means a file given to BuildRootFS is not an ELF executable.
var ErrNotELF = errors.New("not an ELF executable")

// RootFS describes a minimal root file system for agents.
type RootFS struct {
	// Busybox is the host's busybox binary, ideally Debian's
	// busybox-static (/bin/busybox). Its applets are linked into /bin.
	// "" leaves busybox out.
	Busybox string
	// Binaries maps absolute paths inside the root file system (e.g.
	// /bin/maxwell) to host binaries to copy there. A dynamically linked
	// binary brings its ELF interpreter and shared libraries along, at
	// the paths the host has them.
	Binaries map[string]string
	// LibDirs are searched, in order, for the shared libraries a binary
	// needs. nil means the usual Debian directories for the binary's
	// architecture.
	LibDirs []string
}

// DefaultBusybox is where Debian's busybox-static installs busybox.
const DefaultBusybox = "/bin/busybox"

// Build creates the root file system in dir, which must not exist or be
// empty: /bin with busybox and its applets, the binaries and their
// libraries, empty /dev, /proc, /sys, /tmp and /run as mount points, and
// /etc/passwd and /etc/group naming root and nobody. ctx bounds running
// busybox to list its applets.
func (r RootFS) Build(ctx context.Context, dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("root file system %q: not an absolute path", dir)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("root file system %s: directory not empty", dir)
	}
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "run", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("root file system: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return fmt.Errorf("root file system: %w", err)
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
		"etc/hosts":  "127.0.0.1 localhost\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("root file system: %w", err)
		}
	}
	libs := newLibCopier(dir, r.LibDirs)
	if r.Busybox != "" {
		if err := libs.install(r.Busybox, "/bin/busybox"); err != nil {
			return fmt.Errorf("busybox: %w", err)
		}
		applets, err := busyboxApplets(ctx, r.Busybox)
		if err != nil {
			return err
		}
		for _, a := range applets {
			link := filepath.Join(dir, "bin", a)
			if err := os.Symlink("busybox", link); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("busybox applet %s: %w", a, err)
			}
		}
	}
	for dst, src := range r.Binaries {
		if !filepath.IsAbs(dst) {
			return fmt.Errorf("binary %s: destination %q not absolute", src, dst)
		}
		if err := libs.install(src, dst); err != nil {
			return fmt.Errorf("binary %s: %w", src, err)
		}
	}
	return nil
}

// busyboxApplets lists the applets of a busybox binary, one name each,
// without slashes.
func busyboxApplets(ctx context.Context, busybox string) ([]string, error) {
	out, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") && a != "." && a != ".." {
			applets = append(applets, a)
		}
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("busybox %s lists no applets", busybox)
	}
	return applets, nil
}

// libCopier copies binaries into a root file system together with the
// shared objects they need.
type libCopier struct {
	root string
	dirs []string
	done map[string]bool // paths inside root already installed
}

func newLibCopier(root string, dirs []string) *libCopier {
	return &libCopier{root: root, dirs: dirs, done: make(map[string]bool)}
}

// libDirs returns where to look for machine's shared libraries.
func libDirs(machine elf.Machine) []string {
	triplet := map[elf.Machine]string{
		elf.EM_X86_64:  "x86_64-linux-gnu",
		elf.EM_AARCH64: "aarch64-linux-gnu",
		elf.EM_386:     "i386-linux-gnu",
		elf.EM_ARM:     "arm-linux-gnueabihf",
		elf.EM_RISCV:   "riscv64-linux-gnu",
	}[machine]
	var out []string
	if triplet != "" {
		out = append(out, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	return append(out, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}

// install copies host file src to dst inside the root, then its
// interpreter and DT_NEEDED libraries, recursively.
func (l *libCopier) install(src, dst string) error {
	if l.done[dst] {
		return nil
	}
	f, err := elf.Open(src)
	if err != nil {
		return fmt.Errorf("%s: %w: %v", src, ErrNotELF, err)
	}
	defer f.Close()
	if err := copyFile(src, filepath.Join(l.root, dst)); err != nil {
		return err
	}
	l.done[dst] = true
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("%s: reading interpreter: %w", src, err)
		}
		interp := string(bytes.TrimRight(b, "\x00"))
		if !filepath.IsAbs(interp) {
			return fmt.Errorf("%s: interpreter %q not absolute", src, interp)
		}
		if err := l.install(interp, interp); err != nil {
			return err
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	dirs := l.dirs
	if dirs == nil {
		dirs = libDirs(f.Machine)
	}
	for _, lib := range needed {
		found := ""
		for _, d := range dirs {
			p := filepath.Join(d, lib)
			if _, err := os.Stat(p); err == nil {
				found = p
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s: shared library %s not found in %v", src, lib, dirs)
		}
		if err := l.install(found, found); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src's content (following symlinks) to dst with mode
// 0755, creating dst's directory.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}
