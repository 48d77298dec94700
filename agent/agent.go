// Package agent makes any Go program a Maxwell agent: it connects to the
// host that runs the program's cell and reports the program's counters.
//
//	c, err := agent.Dial(ctx, agent.FromEnv())
//	if err != nil { ... }
//	defer c.Close()
//	err = c.Report(ctx, map[string]uint64{"primes": n})
//
// The wire protocol is specified in docs/PROTOCOL.md; its messages are in
// package agent/proto. Counters are cumulative: each value must never
// decrease while the connection lasts.
//
// An agent that dials with Config.Bidding also takes part in the host's
// CPU-time auction: it receives a tick per auction on Client.Ticks and
// answers with Client.Bid, or lets RunBidder do both with a strategy.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"

	"github.com/maxwellhq/maxwell/agent/proto"
)

// Environment variables naming the host's endpoint.
const (
	// EnvSocket is the path of the host's Unix stream socket.
	EnvSocket = "MAXWELL_AGENT_SOCKET"
	// EnvSerial is the path of a virtio-serial port, for agents in a
	// QEMU microVM: /dev/virtio-ports/maxwell.agent, whose other end is
	// the host's (see docs/PROTOCOL.md, Transports).
	EnvSerial = "MAXWELL_AGENT_SERIAL"
	// EnvVsock is a vsock endpoint ("CID:PORT"), for agents in virtual
	// machines: inside a Firecracker microVM, "2:PORT" (HostCID) reaches
	// the host's listener for PORT (see docs/DEPLOY.md).
	EnvVsock = "MAXWELL_AGENT_VSOCK"
)

// Transports a Config may name.
const (
	Unix   = "unix"
	Serial = "serial"
	Vsock  = "vsock"
)

// ProtocolError is an error message from the host, or a protocol rule the
// client enforced before sending. Code is machine-readable.
type ProtocolError = proto.Error

// Sentinel errors.
var (
	// ErrNoEndpoint: the Config names no host (the environment had none
	// of EnvSocket, EnvSerial and EnvVsock).
	ErrNoEndpoint = errors.New("agent: no host endpoint configured")
	// ErrUnsupportedTransport: the Config names a transport this version
	// cannot dial.
	ErrUnsupportedTransport = errors.New("agent: unsupported transport")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("agent: client closed")
)

// Config says where the host is and how the agent introduces itself.
type Config struct {
	Transport string // Unix, Serial or Vsock; "" means Unix
	Address   string // socket path for Unix, device path for Serial, "CID:PORT" for Vsock

	// Hello is sent in the handshake. It is informational only: the host
	// identifies the agent by its process. Empty Software and Version are
	// filled in from the program's build information.
	Hello proto.Hello

	// Bidding asks the host for a tick at every auction (see
	// Client.Ticks), to bid in with Client.Bid or RunBidder. It sets
	// Hello.Bidding.
	Bidding bool
}

// FromEnv returns a Config for the endpoint named in the environment:
// EnvSocket if set, else EnvSerial, else EnvVsock. With none, Address is
// empty and Dial returns ErrNoEndpoint.
func FromEnv() Config {
	if p := os.Getenv(EnvSocket); p != "" {
		return Config{Transport: Unix, Address: p}
	}
	if p := os.Getenv(EnvSerial); p != "" {
		return Config{Transport: Serial, Address: p}
	}
	if a := os.Getenv(EnvVsock); a != "" {
		return Config{Transport: Vsock, Address: a}
	}
	return Config{}
}

// Dial connects to the host named by cfg and completes the handshake. It
// returns a *ProtocolError when the host refuses the agent (for example
// proto.CodeNotACell), ErrNoEndpoint when cfg names no host, and
// ErrUnsupportedTransport for a transport this version cannot dial.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Address == "" {
		return nil, ErrNoEndpoint
	}
	conn, err := dialTransport(ctx, cfg.Transport, cfg.Address)
	if err != nil {
		return nil, err
	}
	hello := cfg.Hello
	hello.Bidding = hello.Bidding || cfg.Bidding
	fillBuildInfo(&hello)
	c, err := newClient(ctx, conn, &hello)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// DialUnix is Dial to the Unix socket at path with an empty hello.
func DialUnix(ctx context.Context, path string) (*Client, error) {
	return Dial(ctx, Config{Transport: Unix, Address: path})
}

// dialTransport opens the byte stream to the host. New transports slot in
// here.
func dialTransport(ctx context.Context, transport, addr string) (net.Conn, error) {
	switch transport {
	case "", Unix:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", addr)
		if err != nil {
			return nil, fmt.Errorf("agent: dial: %w", err)
		}
		return conn, nil
	case Serial:
		return dialSerial(ctx, addr)
	case Vsock:
		return dialVsock(ctx, addr)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedTransport, transport)
	}
}

func fillBuildInfo(h *proto.Hello) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if h.Software == "" {
		h.Software = bi.Path
	}
	if h.Version == "" {
		h.Version = bi.Main.Version
	}
}
