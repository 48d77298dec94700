package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/internal/identity"
)

// DefaultSocket returns the control socket's default path.
func DefaultSocket() string { return "/run/maxwell/control.sock" }

// Socket modes: root only, root and a group, or anyone.
const (
	ModeOwner  fs.FileMode = 0o600
	ModeGroup  fs.FileMode = 0o660
	ModeAnyone fs.FileMode = 0o666
)

// Access says who may connect to the control socket. The zero value is
// root only (ModeOwner); Group adds a group (ModeGroup); Anyone lets every
// local user connect (ModeAnyone), for a daemon whose policy, not the
// socket file, decides what each caller may do. With both, the socket
// belongs to Group and anyone may connect.
type Access struct {
	Group  string
	Anyone bool
}

// Lockfile is the daemon's single-instance lock: an flock(2) on a file,
// held until Release or the process's end.
type Lockfile struct {
	f *os.File
}

// Lock takes the single-instance lock for the daemon serving the socket at
// path: an exclusive flock on path+".lock", which records the holder's PID.
// If another process holds it, the error wraps ErrRunning and names that
// process. The kernel releases the lock when the process ends, however it
// ends, so a crashed daemon leaves no stale lock.
func Lock(path string) (*Lockfile, error) {
	name := path + ".lock"
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("api: lock: %w", err)
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("api: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := "another process"
			if b, rerr := os.ReadFile(name); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					who = "process " + strconv.Itoa(pid)
				}
			}
			return nil, fmt.Errorf("%w: %s holds %s", ErrRunning, who, name)
		}
		return nil, fmt.Errorf("api: lock %s: %w", name, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lockfile{f: f}, nil
}

// Path returns the lock file's path.
func (l *Lockfile) Path() string { return l.f.Name() }

// Release drops the lock. The file stays: removing it would let a second
// daemon lock a new file while a third still waits on the old one.
func (l *Lockfile) Release() error {
	l.f.Truncate(0)
	return l.f.Close() // closing the last descriptor drops the flock
}

// Listen creates the control socket at path and listens on it, with the
// owner, group (a name or a numeric GID) and mode that a says. The parent
// directory is created if missing.
//
// A socket file nobody answers on (left by a dead daemon) is replaced; a
// live one gives an error wrapping ErrRunning, and a file that is not a
// socket is left alone and refused. The socket is bound under a temporary
// name, given its owner and mode, and only then linked to path, so no one
// can connect through a socket with looser permissions. Closing the
// listener removes the socket file if it is still this one.
func Listen(path string, a Access) (net.Listener, error) {
	mode, gid := ModeOwner, -1
	if a.Group != "" {
		g, err := identity.LookupGroup(a.Group)
		if err != nil {
			return nil, fmt.Errorf("api: socket group: %w", err)
		}
		mode, gid = ModeGroup, g
	}
	if a.Anyone {
		mode = ModeAnyone
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api: listen: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("api: listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	defer os.Remove(tmp)
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		return nil, fmt.Errorf("api: listen %s: %w", path, err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, os.Getuid(), gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%w: %s appeared while starting", ErrRunning, path)
		}
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &listener{UnixListener: ln, path: path, fi: fi}, nil
}

// listener removes its socket file on Close, unless another daemon has
// replaced it since.
type listener struct {
	*net.UnixListener
	path string
	fi   fs.FileInfo
	once sync.Once
}

func (l *listener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.fi) {
			os.Remove(l.path)
		}
	})
	return err
}

// Addr names the socket by its public path, not the temporary one.
func (l *listener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// removeStale removes the socket file at path if nobody accepts
// connections on it.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("api: %s exists and is not a socket; not touching it", path)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: a daemon answers on %s", ErrRunning, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("api: probe %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("api: remove stale socket %s: %w", path, err)
	}
	return nil
}
