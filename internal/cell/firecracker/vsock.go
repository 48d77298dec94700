package firecracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Errors of the vsock tunnel.
var (
	// ErrHandshake means Firecracker's vsock socket answered the CONNECT
	// request with something other than "OK <port>\n": the guest has no
	// listener on the port, or the peer is not a Firecracker vsock
	// device.
	ErrHandshake = errors.New("vsock handshake failed")
	// ErrInUse means a listener socket path is held by a live listener or
	// by a file that is not a socket.
	ErrInUse = errors.New("vsock socket path in use")
)

// DefaultHandshakeTimeout bounds the CONNECT handshake when the context
// has no earlier deadline.
const DefaultHandshakeTimeout = 5 * time.Second

// maxAckLine bounds the handshake answer: "OK " and a 32-bit port number
// and "\n" fit in 14 bytes; a peer that sends more is not Firecracker.
const maxAckLine = 32

// DialVsock opens a host-initiated connection to port in the guest of the
// Firecracker microVM whose vsock device has Unix socket udsPath: it
// connects to udsPath, sends "CONNECT <port>\n", and waits for
// "OK <host_port>\n", reading byte by byte so that not a single byte of
// the guest's stream is consumed. The handshake is bounded by ctx and by
// DefaultHandshakeTimeout; a peer that answers garbage, too much, or
// nothing gives ErrHandshake or a timeout, never a hang.
func DialVsock(ctx context.Context, udsPath string, port uint32) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultHandshakeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", udsPath)
	if err != nil {
		return nil, fmt.Errorf("vsock %s port %d: %w", udsPath, port, err)
	}
	fail := func(err error) (net.Conn, error) {
		conn.Close()
		return nil, fmt.Errorf("vsock %s port %d: %w", udsPath, port, err)
	}
	dl, _ := ctx.Deadline()
	if err := conn.SetDeadline(dl); err != nil {
		return fail(err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write([]byte("CONNECT " + strconv.FormatUint(uint64(port), 10) + "\n")); err != nil {
		return fail(handshakeErr(ctx, err))
	}
	var line []byte
	var b [1]byte
	for {
		n, err := conn.Read(b[:])
		if err != nil {
			if len(line) == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
				// Firecracker closes the connection when no guest
				// listener accepts the port.
				return fail(fmt.Errorf("%w: closed without an answer (is the guest listening on port %d?)", ErrHandshake, port))
			}
			return fail(handshakeErr(ctx, err))
		}
		if n == 0 {
			continue
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
		if len(line) > maxAckLine {
			return fail(fmt.Errorf("%w: answer longer than %d bytes: %q…", ErrHandshake, maxAckLine, line))
		}
	}
	rest, ok := strings.CutPrefix(string(line), "OK ")
	if !ok {
		return fail(fmt.Errorf("%w: answer %q", ErrHandshake, line))
	}
	if _, err := strconv.ParseUint(rest, 10, 32); err != nil {
		return fail(fmt.Errorf("%w: answer %q", ErrHandshake, line))
	}
	stop()
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return fail(err)
	}
	return conn, nil
}

// handshakeErr prefers ctx's error to the deadline error it caused.
func handshakeErr(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Only ctx sets the deadline; its own timer may not have fired
		// yet.
		cerr := ctx.Err()
		if cerr == nil {
			cerr = context.DeadlineExceeded
		}
		return fmt.Errorf("%w: %w", ErrHandshake, cerr)
	}
	return fmt.Errorf("%w: %w", ErrHandshake, err)
}

// ListenerPath returns the Unix socket path on which Firecracker delivers
// the guest's connections to host port port: "<udsPath>_<port>".
func ListenerPath(udsPath string, port uint32) string {
	return udsPath + "_" + strconv.FormatUint(uint64(port), 10)
}

// ListenVsock listens for guest-initiated connections to host port port
// of the microVM whose vsock device has Unix socket udsPath: Firecracker
// connects to ListenerPath(udsPath, port) for each, from its own process,
// so SO_PEERCRED on an accepted connection names the VM's Firecracker
// process, never anything the guest says. The listener is a plain Unix
// listener (hub.New serves it); the guest's bytes start at once, there
// is no handshake on this side.
//
// A socket file left by a dead listener is replaced; a live one, or a
// file that is not a socket, gives ErrInUse. Closing the listener
// removes the file.
func ListenVsock(udsPath string, port uint32) (*net.UnixListener, error) {
	path := ListenerPath(udsPath, port)
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("vsock listener: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("vsock listener: %w", err)
	}
	return ln, nil
}

// removeStale removes the socket file at path if nobody accepts
// connections on it.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vsock listener: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s is not a socket", ErrInUse, path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: something listens on %s", ErrInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("vsock listener: probing %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vsock listener: removing stale socket: %w", err)
	}
	return nil
}

// LinkVsock makes Firecracker deliver the guest's connections to host
// port port straight to an existing Unix listener, such as the hub's
// socket: it hard-links socketPath at ListenerPath(udsPath, port) (both
// must be on one file system). One hub then serves every VM and every
// process cell: a connection through the link comes from the VM's
// Firecracker process, whose SO_PEERCRED PID the hub's resolver finds in
// the VM's cell. A stale link or socket there is replaced.
func LinkVsock(socketPath, udsPath string, port uint32) error {
	path := ListenerPath(udsPath, port)
	if err := removeStale(path); err != nil {
		return err
	}
	if err := os.Link(socketPath, path); err != nil {
		return fmt.Errorf("vsock listener: linking %s: %w", socketPath, err)
	}
	return nil
}
