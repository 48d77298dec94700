package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// SocketMode is the permission of the socket file Listen creates: owner and
// group may connect. Put agents' users in the socket's group, or run them as
// the host's user; SO_PEERCRED still decides which cell a peer is.
const SocketMode fs.FileMode = 0o660

// ErrInUse is returned by Listen when a live host already listens on the
// path, or the path is taken by something that is not a socket.
var ErrInUse = errors.New("hub: socket path in use")

// Listen creates a Unix stream socket file at path with mode
// opts.SocketMode (default SocketMode) and
// returns a Hub serving it. A socket file left by a dead host (nobody
// accepts connections on it) is replaced; a live one, or a file that is not
// a socket, gives ErrInUse. Serve removes the file when it returns.
//
// The socket is bound under a temporary name (path + ".tmp"), given its mode,
// and only then linked to path, so no agent can connect through a socket
// file with looser permissions.
func Listen(path string, r Resolver, opts Options) (*Hub, error) {
	tmp := path + ".tmp"
	if err := removeStale(path); err != nil {
		return nil, err
	}
	if err := removeStale(tmp); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("hub: listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Hub, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("hub: listen %s: %w", path, err)
	}
	mode := opts.SocketMode
	if mode == 0 {
		mode = SocketMode
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			err = ErrInUse
		}
		return fail(err)
	}
	os.Remove(tmp)
	h := New(ln, r, opts)
	h.path = path
	return h, nil
}

// removeStale removes the socket file at path if no one accepts
// connections on it.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s is not a socket", ErrInUse, path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: a host is listening on %s", ErrInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("hub: probe %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hub: remove stale socket: %w", err)
	}
	return nil
}

// removeSocket removes the socket file at path, if it is one.
func removeSocket(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == fs.ModeSocket {
		os.Remove(path)
	}
}
