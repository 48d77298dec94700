package vmimage

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// File modes of the cpio "newc" format (those of stat(2)).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// cpioWriter writes a cpio archive in the "newc" format the kernel
// unpacks as an initramfs (Documentation/driver-api/early-userspace/
// buffer-format.rst). Every entry has uid and gid 0 and mtime 0, and
// inodes are numbered in write order, so the same entries in the same
// order give the same bytes.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	n   int64 // bytes written, for padding
	err error
}

// entry is one archive member.
type entry struct {
	name         string // path inside the archive, no leading slash
	mode         uint32 // type and permission bits
	data         []byte // file content or symlink target
	rmajor, rmin uint32 // device numbers of a device node
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// add writes one entry.
func (c *cpioWriter) add(e entry) error {
	if strings.HasPrefix(e.name, "/") || e.name == "" {
		return fmt.Errorf("cpio: bad name %q", e.name)
	}
	c.ino++
	nlink := uint32(1)
	if e.mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.rmajor, e.rmin, len(e.name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(e.name), 0))
	c.pad()
	c.write(e.data)
	c.pad()
	return c.err
}

// close writes the trailer.
func (c *cpioWriter) close() error {
	return c.add(entry{name: "TRAILER!!!"})
}

// addTree writes every file, directory and symlink under root, sorted by
// path, with root's own content at the archive's top. Regular files keep
// their permission bits; directories are 0755 unless they have the sticky
// bit (tmp).
func (c *cpioWriter) addTree(root string) error {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	slices.Sort(paths)
	for _, p := range paths {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := path.Clean(filepath.ToSlash(rel))
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("cpio: %w", err)
		}
		perm := uint32(fi.Mode().Perm())
		if fi.Mode()&fs.ModeSticky != 0 {
			perm |= 0o1000
		}
		var e entry
		switch {
		case fi.IsDir():
			e = entry{name: name, mode: modeDir | perm}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("cpio: %w", err)
			}
			e = entry{name: name, mode: modeSymlink | 0o777, data: []byte(target)}
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("cpio: %w", err)
			}
			e = entry{name: name, mode: modeRegular | perm, data: b}
		default:
			return fmt.Errorf("cpio: %s: unsupported file type %v", p, fi.Mode().Type())
		}
		if err := c.add(e); err != nil {
			return err
		}
	}
	return nil
}
