// Package celllog keeps a cell's standard output and error in files of
// capped size that rotate, as logrotate would: NAME.log is the newest,
// NAME.log.1 the one before, up to NAME.log.KEEP; the oldest is dropped.
// A cell that writes without end therefore costs at most
// (KEEP+1) × MaxBytes of disk. Read and Follow read them back, oldest
// first, for `maxwell logs`.
package celllog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxBytes = 8 << 20
	DefaultKeep     = 3
)

// Options bound a cell's log files.
type Options struct {
	// MaxBytes is the size at which the current file is rotated; 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// Keep is how many rotated files are kept; 0 means DefaultKeep.
	Keep int
}

func (o Options) norm() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	return o
}

// Writer is a cell's log: safe for concurrent writes (its output and its
// error share it).
type Writer struct {
	path string
	opts Options
	mu   sync.Mutex
	f    *os.File
	size int64
	err  error // the first failure to rotate, kept: the cell goes on
}

// Path is the current log file of cell name in dir.
func Path(dir, name string) string { return filepath.Join(dir, name+".log") }

// Open opens (appending to) the log of cell name in dir, mode 0640.
func Open(dir, name string, opts Options) (*Writer, error) {
	w := &Writer{path: Path(dir, name), opts: opts.norm()}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("celllog: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("celllog: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return w, nil
}

// Write appends p, rotating first if p would take the file past MaxBytes
// (a write is never split across files). If rotation fails, it keeps
// writing to the current file and reports the error once, from Close.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, fmt.Errorf("celllog: %s: closed", w.path)
	}
	if w.size > 0 && w.size+int64(len(p)) > w.opts.MaxBytes {
		if err := w.rotate(); err != nil && w.err == nil {
			w.err = err
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

// rotate shifts NAME.log.K-1 → NAME.log.K … NAME.log → NAME.log.1 and
// starts a new NAME.log.
func (w *Writer) rotate() error {
	for i := w.opts.Keep - 1; i >= 1; i-- {
		if err := os.Rename(w.path+"."+strconv.Itoa(i), w.path+"."+strconv.Itoa(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("celllog: rotate: %w", err)
		}
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return fmt.Errorf("celllog: rotate: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("celllog: rotate: %w", err)
	}
	w.f.Close()
	w.f, w.size = f, 0
	return nil
}

// Close closes the log.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := errors.Join(w.err, w.f.Close())
	w.f = nil
	return err
}

// files are the log's files that exist, oldest first.
func files(dir, name string, keep int) []string {
	var out []string
	p := Path(dir, name)
	for i := keep; i >= 1; i-- {
		if _, err := os.Stat(p + "." + strconv.Itoa(i)); err == nil {
			out = append(out, p+"."+strconv.Itoa(i))
		}
	}
	if _, err := os.Stat(p); err == nil {
		out = append(out, p)
	}
	return out
}

// ErrNoLog means a cell has no log (it was never started with one).
var ErrNoLog = errors.New("celllog: no log")

// Read copies the log of cell name, oldest file first, to out.
func Read(dir, name string, opts Options, out io.Writer) error {
	fs := files(dir, name, opts.norm().Keep)
	if len(fs) == 0 {
		return fmt.Errorf("%w for cell %s in %s", ErrNoLog, name, dir)
	}
	for _, p := range fs {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("celllog: %w", err)
		}
		_, err = io.Copy(out, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Follow copies the log to out as Read does, then goes on copying what is
// appended, across rotations, until ctx ends (then it returns nil), polling
// every interval (0 means 200 ms).
func Follow(ctx context.Context, dir, name string, opts Options, interval time.Duration, out io.Writer) error {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	if err := Read(dir, name, opts, out); err != nil {
		return err
	}
	p := Path(dir, name)
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("celllog: %w", err)
	}
	defer func() { f.Close() }()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := io.Copy(out, f); err != nil {
			return err
		}
		if fl, ok := out.(interface{ Flush() }); ok {
			fl.Flush()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// Rotated: finish the old file, then follow the new one.
		if nfi, err := os.Stat(p); err == nil {
			ofi, _ := f.Stat()
			if ofi == nil || !os.SameFile(ofi, nfi) {
				if _, err := io.Copy(out, f); err != nil {
					return err
				}
				nf, err := os.Open(p)
				if err != nil {
					continue
				}
				f.Close()
				f = nf
			}
		}
	}
}
