// Package vmimage builds the guest image of a microVM cell: a kernel and
// an initramfs holding busybox (Debian's busybox-static), the maxwell
// binary, the virtio modules of that kernel, and a small init.
//
// The init (init.sh, embedded) mounts proc, sys and dev, loads the
// modules dependencies first (virtio_ring, virtio, virtio_mmio,
// virtio_console, virtio_balloon for the default set), names the
// virtio-serial ports under /dev/virtio-ports, runs the cell's command
// and powers the VM off when the command ends. The host hands the command
// over on the kernel command line (CommandLine) and reads init's progress
// from the console (the Marker lines).
//
// The archive is cpio "newc", gzip-compressed, the format every kernel
// unpacks. Build is deterministic: the same kernel, modules, busybox and
// maxwell binary give the same bytes, and Build does nothing when the
// image in the output directory was built from the same inputs (see
// Image.Digest), so tests and `maxwell vm image` can call it freely.
package vmimage

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/maxwellhq/maxwell/internal/cell/oci"
)

//go:embed init.sh
var initScript []byte

// formatVersion changes whenever the layout Build writes changes, so
// cached images built by an older Maxwell are rebuilt.
const formatVersion = "maxwell-vmimage-1"

// Errors of this package.
var (
	// ErrModule means a kernel module is missing or unreadable.
	ErrModule = errors.New("kernel module")
	// ErrNoKernel means no guest kernel was given or found.
	ErrNoKernel = errors.New("no guest kernel")
	// ErrCommandLine means a cell's command cannot be passed on the
	// kernel command line (too long, or an unusable word).
	ErrCommandLine = errors.New("guest command line")
	// ErrNoImage means a directory holds no image Build wrote.
	ErrNoImage = errors.New("no guest image")
)

// DefaultModules are the modules a Maxwell guest loads: the virtio-mmio
// transport of QEMU's microvm and Firecracker, virtio-serial (the agent's
// port), the balloon (free page reporting, for Landauer's tax) and
// virtio-blk (a root file system image of the user's). Their
// dependencies (virtio, virtio_ring) are found from the modules' own
// .modinfo.
var DefaultModules = []string{"virtio_mmio", "virtio_console", "virtio_balloon", "virtio_blk"}

// VsockModules add AF_VSOCK over virtio, for agents that dial the host by
// vsock (Firecracker, QEMU's vhost-vsock-device).
var VsockModules = []string{"vmw_vsock_virtio_transport"}

// GuestMaxwell is where the maxwell binary lies in the guest.
const GuestMaxwell = "/bin/maxwell"

// Options say what goes into an image.
type Options struct {
	// Kernel is the guest kernel (a bzImage such as Debian's
	// /boot/vmlinuz-<version>). "" means the newest /boot/vmlinuz-*
	// (DefaultKernel).
	Kernel string
	// ModulesDir holds the kernel's modules; "" means ModulesDir(Kernel):
	// <root>/lib/modules/<version> (or <root>/usr/lib/modules/...) for a
	// kernel at <root>/boot/vmlinuz-<version>.
	ModulesDir string
	// Modules are the modules to load at boot, besides their
	// dependencies; nil means DefaultModules.
	Modules []string
	// Busybox is a statically linked busybox; "" means
	// oci.DefaultBusybox (Debian's busybox-static).
	Busybox string
	// Maxwell is the maxwell binary to install as GuestMaxwell; "" leaves
	// it out. A dynamically linked one brings its libraries along.
	Maxwell string
	// Out is the directory the image is written to (created if needed).
	Out string
}

// Image is a built guest image.
type Image struct {
	// Kernel and Initrd are the files to boot (in Out).
	Kernel string `json:"kernel"`
	Initrd string `json:"initrd"`
	// KernelVersion is the version in the kernel's file name, or "".
	KernelVersion string `json:"kernel_version,omitempty"`
	// Modules are the modules init loads, in order (file names relative
	// to the guest's /lib/modules).
	Modules []string `json:"modules"`
	// Builtin are the wanted modules the kernel has compiled in.
	Builtin []string `json:"builtin,omitempty"`
	// Maxwell is the guest path of the maxwell binary, or "".
	Maxwell string `json:"maxwell,omitempty"`
	// Digest identifies the inputs (sha256 of kernel, modules, busybox,
	// maxwell binary, init, format): the same digest, the same image.
	Digest string `json:"digest"`
	// Cached is true when Build found the image already built.
	Cached bool `json:"-"`
}

// File names in Out.
const (
	kernelFile   = "vmlinuz"
	initrdFile   = "initramfs.cpio.gz"
	manifestFile = "image.json"
)

// DefaultKernel returns the newest vmlinuz-* in bootDir (usually /boot),
// by version order of the file names.
func DefaultKernel(bootDir string) (string, error) {
	m, err := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	if err != nil {
		return "", err
	}
	if len(m) == 0 {
		return "", fmt.Errorf("%w: no vmlinuz-* in %s (install linux-image-cloud-amd64, or pass a kernel)", ErrNoKernel, bootDir)
	}
	slices.SortFunc(m, func(a, b string) int { return compareVersions(kernelVersion(a), kernelVersion(b)) })
	return m[len(m)-1], nil
}

// kernelVersion returns the version in a kernel file name
// (vmlinuz-6.1.0-57-cloud-amd64 → 6.1.0-57-cloud-amd64), or "".
func kernelVersion(kernel string) string {
	base := filepath.Base(kernel)
	for _, p := range []string{"vmlinuz-", "vmlinux-", "bzImage-"} {
		if v, ok := strings.CutPrefix(base, p); ok {
			return v
		}
	}
	return ""
}

// compareVersions orders dotted and dashed versions numerically where
// both parts are numbers.
func compareVersions(a, b string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' })
	}
	pa, pb := split(a), split(b)
	for i := range min(len(pa), len(pb)) {
		x, y := pa[i], pb[i]
		if x == y {
			continue
		}
		if isNum(x) && isNum(y) {
			if len(x) != len(y) {
				return len(x) - len(y)
			}
		}
		return strings.Compare(x, y)
	}
	return len(pa) - len(pb)
}

func isNum(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// ModulesDir returns where the modules of the kernel file kernel are: for
// <root>/boot/vmlinuz-<version>, <root>/lib/modules/<version>, or
// <root>/usr/lib/modules/<version> where only that exists (merged /usr).
func ModulesDir(kernel string) string {
	v := kernelVersion(kernel)
	root := filepath.Dir(filepath.Dir(kernel))
	if v == "" {
		return filepath.Join(root, "lib", "modules")
	}
	d := filepath.Join(root, "lib", "modules", v)
	if _, err := os.Stat(d); err != nil {
		if u := filepath.Join(root, "usr", "lib", "modules", v); dirExists(u) {
			return u
		}
	}
	return d
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Build makes the image described by opts in opts.Out and returns it. If
// Out already holds an image of the same inputs, Build returns it with
// Cached set and writes nothing. ctx bounds running busybox to list its
// applets.
func Build(ctx context.Context, opts Options) (Image, error) {
	if opts.Out == "" {
		return Image{}, errors.New("vm image: no output directory")
	}
	out, err := filepath.Abs(opts.Out)
	if err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	if opts.Kernel == "" {
		if opts.Kernel, err = DefaultKernel("/boot"); err != nil {
			return Image{}, fmt.Errorf("vm image: %w", err)
		}
	}
	if opts.ModulesDir == "" {
		opts.ModulesDir = ModulesDir(opts.Kernel)
	}
	if opts.Modules == nil {
		opts.Modules = DefaultModules
	}
	if opts.Busybox == "" {
		opts.Busybox = oci.DefaultBusybox
	}
	for _, f := range []string{opts.Kernel, opts.Busybox, opts.Maxwell} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err != nil {
			return Image{}, fmt.Errorf("vm image: %w", err)
		} else if !fi.Mode().IsRegular() {
			return Image{}, fmt.Errorf("vm image: %s is not a regular file", f)
		}
	}
	mods, builtin, err := resolveModules(opts.ModulesDir, opts.Modules)
	if err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	img := Image{
		Kernel:        filepath.Join(out, kernelFile),
		Initrd:        filepath.Join(out, initrdFile),
		KernelVersion: kernelVersion(opts.Kernel),
		Builtin:       builtin,
	}
	if opts.Maxwell != "" {
		img.Maxwell = GuestMaxwell
	}
	for _, m := range mods {
		img.Modules = append(img.Modules, m.name+".ko")
	}
	if img.Digest, err = digest(opts, mods); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	if old, err := readManifest(out); err == nil && old.Digest == img.Digest &&
		fileExists(img.Kernel) && fileExists(img.Initrd) {
		old.Kernel, old.Initrd, old.Cached = img.Kernel, img.Initrd, true
		return old, nil
	}

	if err := os.MkdirAll(out, 0o755); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	stage, err := os.MkdirTemp(out, ".stage-")
	if err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	defer os.RemoveAll(stage)
	root := filepath.Join(stage, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	rfs := oci.RootFS{Busybox: opts.Busybox}
	if opts.Maxwell != "" {
		rfs.Binaries = map[string]string{GuestMaxwell: opts.Maxwell}
	}
	if err := rfs.Build(ctx, root); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, "init"), initScript, 0o755); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	modDir := filepath.Join(root, "lib", "modules")
	if err := os.MkdirAll(modDir, 0o755); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	for _, m := range mods {
		if err := os.WriteFile(filepath.Join(modDir, m.name+".ko"), m.data, 0o644); err != nil {
			return Image{}, fmt.Errorf("vm image: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc", "maxwell"), 0o755); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	list := strings.Join(img.Modules, "\n")
	if list != "" {
		list += "\n"
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "maxwell", "modules"), []byte(list), 0o644); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}

	tmpInitrd := filepath.Join(stage, initrdFile)
	if err := writeInitramfs(tmpInitrd, root); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	tmpKernel := filepath.Join(stage, kernelFile)
	if err := copyFile(opts.Kernel, tmpKernel); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	// The manifest goes last: an interrupted Build leaves no manifest
	// naming files that do not match it.
	os.Remove(filepath.Join(out, manifestFile))
	if err := os.Rename(tmpKernel, img.Kernel); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	if err := os.Rename(tmpInitrd, img.Initrd); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return Image{}, err
	}
	if err := os.WriteFile(filepath.Join(out, manifestFile), append(b, '\n'), 0o644); err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	return img, nil
}

// writeInitramfs writes the tree at root, plus /dev/console (the kernel
// opens it for init's standard streams before anything is mounted), as a
// gzip-compressed newc archive.
func writeInitramfs(dst, root string) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// No name or time in the gzip header: the same tree, the same bytes.
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		return err
	}
	cw := &cpioWriter{w: zw}
	if err := cw.addTree(root); err != nil {
		return err
	}
	if err := cw.add(entry{name: "dev/console", mode: modeCharDev | 0o600, rmajor: 5, rmin: 1}); err != nil {
		return err
	}
	if err := cw.close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// digest hashes everything an image is made of.
func digest(opts Options, mods []*module) (string, error) {
	h := sha256.New()
	put := func(label string, b []byte) {
		fmt.Fprintf(h, "%s %d\n", label, len(b))
		h.Write(b)
	}
	putFile := func(label, path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", label, fi.Size())
		_, err = io.Copy(h, f)
		return err
	}
	put("format", []byte(formatVersion))
	put("init", initScript)
	if err := putFile("kernel", opts.Kernel); err != nil {
		return "", err
	}
	if err := putFile("busybox", opts.Busybox); err != nil {
		return "", err
	}
	if opts.Maxwell != "" {
		if err := putFile("maxwell", opts.Maxwell); err != nil {
			return "", err
		}
	}
	for _, m := range mods {
		put("module "+m.name, m.data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DefaultDir is where `maxwell vm image` writes the guest image, and
// where a daemon looks for it when a spawn names no kernel and
// initramfs.
func DefaultDir() string { return "/var/lib/maxwell/vm-image" }

// Load returns the image Build wrote in dir, with its files' paths in
// dir; ErrNoImage if there is none (or it is incomplete).
func Load(dir string) (Image, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	img, err := readManifest(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Image{}, fmt.Errorf("%w in %s (build one with `maxwell vm image --out %s`)", ErrNoImage, abs, abs)
		}
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	img.Kernel, img.Initrd = filepath.Join(abs, kernelFile), filepath.Join(abs, initrdFile)
	if !fileExists(img.Kernel) || !fileExists(img.Initrd) {
		return Image{}, fmt.Errorf("%w in %s: its manifest names files that are missing (build it again)", ErrNoImage, abs)
	}
	return img, nil
}

func readManifest(dir string) (Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return Image{}, err
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return Image{}, err
	}
	return img, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Markers are the line prefixes init writes on the console.
const (
	// MarkerReady: the command is about to start (or, for a probe, the
	// guest has booted).
	MarkerReady = "maxwell-init: ready"
	// MarkerExit is followed by " N", the command's exit status.
	MarkerExit = "maxwell-init: exit"
	// MarkerError is followed by what went wrong before the command ran.
	MarkerError = "maxwell-init: error"
)

// MaxCommandLine is the longest kernel command line x86 takes
// (COMMAND_LINE_SIZE), terminating NUL included.
const MaxCommandLine = 2048

// Command is what a guest runs, as init receives it.
type Command struct {
	// Path is the program, a path in the guest or a name in the guest's
	// PATH.
	Path string
	// Args are its arguments, argv[0] not included.
	Args []string
	// Env is its whole environment.
	Env []string
	// Dir is its working directory; "" means /.
	Dir string
	// WaitFor names a device init waits for (at most 5 s) before it runs
	// the command, such as the agent's /dev/virtio-ports/NAME.
	WaitFor string
	// RootDevice, if set, is a block device with a root file system
	// (such as /dev/vda): init mounts it read-only and runs the command
	// chrooted in it, at its root (Dir must be "" or "/").
	RootDevice string
}

// CommandLine returns the kernel command line words that make init run
// cmd: maxwell.run=<base64 of a sh script that sets the environment, the
// working directory and execs the command>, and maxwell.wait=. It fails
// with ErrCommandLine if base plus the words would exceed MaxCommandLine.
func CommandLine(base string, cmd Command) (string, error) {
	if cmd.Path == "" {
		return "", fmt.Errorf("%w: no command", ErrCommandLine)
	}
	var sb bytes.Buffer
	dir := cmd.Dir
	if dir == "" {
		dir = "/"
	}
	if cmd.RootDevice != "" && dir != "/" {
		return "", fmt.Errorf("%w: a command in a root file system image runs at its root (working directory %q)", ErrCommandLine, cmd.Dir)
	}
	fmt.Fprintf(&sb, "cd %s || exit 127\nexec env -i", shellQuote(dir))
	for _, e := range cmd.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return "", fmt.Errorf("%w: environment entry %q is not KEY=VALUE", ErrCommandLine, e)
		}
		sb.WriteString(" " + shellQuote(e))
	}
	if cmd.RootDevice != "" {
		sb.WriteString(" /bin/chroot /newroot")
	}
	sb.WriteString(" " + shellQuote(cmd.Path))
	for _, a := range cmd.Args {
		sb.WriteString(" " + shellQuote(a))
	}
	sb.WriteString("\n")
	words := []string{"maxwell.run=" + base64.StdEncoding.EncodeToString(sb.Bytes())}
	for _, d := range []struct{ key, dev string }{{"maxwell.wait=", cmd.WaitFor}, {"maxwell.root=", cmd.RootDevice}} {
		if d.dev == "" {
			continue
		}
		if strings.ContainsAny(d.dev, " \t\n\"'") {
			return "", fmt.Errorf("%w: device %q", ErrCommandLine, d.dev)
		}
		words = append(words, d.key+d.dev)
	}
	line := strings.TrimSpace(base + " " + strings.Join(words, " "))
	if len(line)+1 > MaxCommandLine {
		return "", fmt.Errorf("%w: %d bytes, the kernel takes at most %d (shorten the command or its environment)", ErrCommandLine, len(line)+1, MaxCommandLine)
	}
	return line, nil
}

// ProbeCommandLine returns the kernel command line of an accelerator
// probe: init says MarkerReady and powers off.
func ProbeCommandLine(base string) string {
	return strings.TrimSpace(base + " maxwell.probe=1")
}

// shellQuote quotes s for sh: in single quotes, each ' written as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
