package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/mdlayher/vsock"
)

// ErrVsockAddress means a vsock address is not "CID:PORT" with both
// unsigned 32-bit decimal numbers.
var ErrVsockAddress = errors.New("agent: malformed vsock address")

// HostCID is the context id of the host, seen from inside a virtual
// machine (VMADDR_CID_HOST). Under Firecracker, a guest's connection to
// it arrives on the host as a connection to the Unix socket
// "<uds_path>_<PORT>".
const HostCID = 2

// ParseVsockAddr parses a vsock address "CID:PORT", as EnvVsock holds it.
func ParseVsockAddr(addr string) (cid, port uint32, err error) {
	c, p, ok := strings.Cut(addr, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%w: %q has no ':'", ErrVsockAddress, addr)
	}
	ci, err := strconv.ParseUint(c, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: CID in %q", ErrVsockAddress, addr)
	}
	pi, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: port in %q", ErrVsockAddress, addr)
	}
	return uint32(ci), uint32(pi), nil
}

// dialVsock connects over AF_VSOCK to addr ("CID:PORT"), bounded by ctx.
// Inside a Firecracker microVM the address is HostCID and the port the
// host listens on.
func dialVsock(ctx context.Context, addr string) (net.Conn, error) {
	cid, port, err := ParseVsockAddr(addr)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("agent: dial vsock %s: %w", addr, err)
	}
	conn, err := vsock.DialContext(ctx, cid, port, nil)
	if err != nil {
		return nil, fmt.Errorf("agent: dial vsock %s: %w", addr, err)
	}
	return conn, nil
}
