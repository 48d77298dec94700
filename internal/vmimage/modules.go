package vmimage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxModuleSize bounds one decompressed kernel module: the largest in a
// distribution kernel are a few MiB (amdgpu is the outlier at ~30 MiB).
const maxModuleSize = 64 << 20

// moduleSuffixes are the file names a module may have, as kmod knows
// them: plain, and compressed with xz (Debian 13 and later), zstd
// (Ubuntu, Fedora) or gzip.
var moduleSuffixes = []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

// module is one kernel module found in a modules directory.
type module struct {
	name    string   // canonical name: '-' written as '_'
	path    string   // file on the host
	depends []string // canonical names from .modinfo
	data    []byte   // decompressed ELF object
}

// canonical returns a module name as the kernel spells it: dashes become
// underscores (virtio-rng.ko is module virtio_rng).
func canonical(name string) string { return strings.ReplaceAll(name, "-", "_") }

// moduleIndex maps the canonical names of the modules under dir (a
// /lib/modules/<version> directory) to their files.
func moduleIndex(dir string) (map[string]string, error) {
	idx := make(map[string]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		base := d.Name()
		for _, s := range moduleSuffixes {
			if n, ok := strings.CutSuffix(base, s); ok {
				if _, dup := idx[canonical(n)]; !dup {
					idx[canonical(n)] = p
				}
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel modules in %s: %w", dir, err)
	}
	return idx, nil
}

// builtins returns the canonical names listed in dir/modules.builtin
// (modules compiled into the kernel), or nil if there is no such file.
func builtins(dir string) (map[string]bool, error) {
	f, err := os.Open(filepath.Join(dir, "modules.builtin"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make(map[string]bool)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		base := filepath.Base(strings.TrimSpace(sc.Text()))
		if n, ok := strings.CutSuffix(base, ".ko"); ok {
			out[canonical(n)] = true
		}
	}
	return out, sc.Err()
}

// readModule reads and decompresses the module file at path.
func readModule(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".xz"):
		xr, err := xz.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: xz: %w", path, err)
		}
		r = xr
	case strings.HasSuffix(path, ".zst"):
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%s: zstd: %w", path, err)
		}
		defer zr.Close()
		r = zr
	case strings.HasSuffix(path, ".gz"):
		gr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", path, err)
		}
		r = gr
	}
	b, err := io.ReadAll(io.LimitReader(r, maxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxModuleSize {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes decompressed", path, ErrModule, maxModuleSize)
	}
	return b, nil
}

// modinfoDepends returns the "depends=" entry of an ELF module's
// .modinfo section, split into canonical names.
func modinfoDepends(obj []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(obj))
	if err != nil {
		return nil, fmt.Errorf("%w: not an ELF object: %v", ErrModule, err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%w: no .modinfo section", ErrModule)
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("%w: .modinfo: %v", ErrModule, err)
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte("depends="))
		if !ok {
			continue
		}
		var deps []string
		for _, d := range strings.Split(string(v), ",") {
			if d = strings.TrimSpace(d); d != "" {
				deps = append(deps, canonical(d))
			}
		}
		return deps, nil
	}
	return nil, nil
}

// resolveModules loads the wanted modules and everything they depend on
// from dir, and returns them in an order in which each comes after its
// dependencies, the wanted ones in the order given (so virtio_ring,
// virtio, virtio_mmio, virtio_console, ...). Modules compiled into the
// kernel (modules.builtin) are left out and returned as builtin. A wanted
// module that is neither a file nor built in is an error, unless dir does
// not exist at all: then the kernel is taken to have everything built in,
// and every wanted module is returned as builtin.
func resolveModules(dir string, wanted []string) (mods []*module, builtin []string, err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, append([]string(nil), wanted...), nil
	}
	idx, err := moduleIndex(dir)
	if err != nil {
		return nil, nil, err
	}
	bi, err := builtins(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("kernel modules in %s: %w", dir, err)
	}
	state := make(map[string]int) // 1 visiting, 2 done
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("%w: dependency cycle %s", ErrModule, strings.Join(append(chain, name), " -> "))
		}
		state[name] = 1
		p, ok := idx[name]
		if !ok {
			if bi[name] {
				builtin = append(builtin, name)
				state[name] = 2
				return nil
			}
			return fmt.Errorf("%w: %s not found under %s (needed by %s) and not in modules.builtin", ErrModule, name, dir, strings.Join(append(chain, name), " -> "))
		}
		obj, err := readModule(p)
		if err != nil {
			return err
		}
		deps, err := modinfoDepends(obj)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, d := range deps {
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		m := &module{name: name, path: p, depends: deps, data: obj}
		mods = append(mods, m)
		state[name] = 2
		return nil
	}
	for _, w := range wanted {
		if err := visit(canonical(w), nil); err != nil {
			return nil, nil, err
		}
	}
	return mods, builtin, nil
}
