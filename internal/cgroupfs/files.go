package cgroupfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// fileBuf bounds what Files reads of a file in one pread: every file it
// is used for (one value, cpu.stat, cgroup.events, freezer.state) is far
// smaller; a larger one is read afresh.
const fileBuf = 4096

// Files reads control files through descriptors it keeps open, so that a
// file read every tick costs one pread(2) at offset 0 — no open, no close,
// and no registration with the runtime's poller, which os.Open does for
// every file — and a file that does not exist costs nothing after the
// first try. A kernfs file regenerates its content for every read from
// offset 0. A nil *Files reads every file afresh, as the package's
// functions do. Files is safe for concurrent use; Close it when the
// cgroup goes, or its descriptors keep the files' memory.
type Files struct {
	mu     sync.Mutex
	fds    map[string]int // path → descriptor; -1: does not exist
	buf    []byte
	closed bool
}

// NewFiles returns an empty Files.
func NewFiles() *Files {
	return &Files{fds: map[string]int{}}
}

// with calls f with the file's content, read with one pread, under the
// lock; the content is valid only during the call.
func (f *Files) with(path string, use func([]byte) error) error {
	if f == nil {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return use(b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("cgroupfs: %s: files closed", path)
	}
	fd, ok := f.fds[path]
	if !ok {
		var err error
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		switch {
		case errors.Is(err, unix.ENOENT):
			f.fds[path] = -1
			return &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
			// Out of descriptors: read it afresh, keep nothing.
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				return rerr
			}
			return use(b)
		case err != nil:
			return &fs.PathError{Op: "open", Path: path, Err: err}
		}
		f.fds[path] = fd
	}
	if fd < 0 {
		return &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
	if f.buf == nil {
		f.buf = make([]byte, fileBuf)
	}
	n, err := unix.Pread(fd, f.buf, 0)
	if err != nil {
		return &fs.PathError{Op: "pread", Path: path, Err: err}
	}
	if n == len(f.buf) {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return use(b)
	}
	return use(f.buf[:n])
}

// String reads a one-value file, trimmed of white space.
func (f *Files) String(path string) (string, error) {
	var s string
	err := f.with(path, func(b []byte) error {
		s = string(bytes.TrimSpace(b))
		return nil
	})
	return s, err
}

// Uint reads a file holding one unsigned integer.
func (f *Files) Uint(path string) (uint64, error) {
	var v uint64
	err := f.with(path, func(b []byte) error {
		b = bytes.TrimSpace(b)
		var err error
		if v, err = parseUint(b); err != nil {
			return fmt.Errorf("%s: %w: %q", path, ErrGarbage, b)
		}
		return nil
	})
	return v, err
}

// Keyed reads one key of a flat-keyed file ("key value" per line).
func (f *Files) Keyed(path, key string) (uint64, error) {
	var v uint64
	err := f.with(path, func(b []byte) error {
		for len(b) > 0 {
			line := b
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				line, b = b[:i], b[i+1:]
			} else {
				b = nil
			}
			k, val, ok := bytes.Cut(line, []byte{' '})
			if !ok || string(k) != key {
				continue
			}
			var err error
			if v, err = parseUint(bytes.TrimSpace(val)); err != nil {
				return fmt.Errorf("%s: %w: key %s = %q", path, ErrGarbage, key, val)
			}
			return nil
		}
		return fmt.Errorf("%s: %w: no key %q", path, ErrGarbage, key)
	})
	return v, err
}

// parseUint parses decimal digits without allocating.
func parseUint(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 {
		return 0, strconv.ErrSyntax
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, strconv.ErrRange
		}
		v = v*10 + d
	}
	return v, nil
}

// Close closes every descriptor; later reads fail. It is idempotent.
func (f *Files) Close() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for p, fd := range f.fds {
		if fd >= 0 {
			if err := unix.Close(fd); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", p, err))
			}
		}
	}
	f.fds, f.closed = nil, true
	return errors.Join(errs...)
}
