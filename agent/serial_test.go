package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/maxwellhq/maxwell/agent"
	"github.com/maxwellhq/maxwell/agent/proto"
)

func TestFromEnvSerial(t *testing.T) {
	tests := []struct {
		socket, serial, vsock string
		want                  agent.Config
	}{
		{"", "/dev/virtio-ports/maxwell.agent", "", agent.Config{Transport: agent.Serial, Address: "/dev/virtio-ports/maxwell.agent"}},
		{"", "/dev/vport0p1", "2:1024", agent.Config{Transport: agent.Serial, Address: "/dev/vport0p1"}},
		{"/run/m.sock", "/dev/vport0p1", "", agent.Config{Transport: agent.Unix, Address: "/run/m.sock"}},
	}
	for _, tt := range tests {
		t.Setenv(agent.EnvSocket, tt.socket)
		t.Setenv(agent.EnvSerial, tt.serial)
		t.Setenv(agent.EnvVsock, tt.vsock)
		if got := agent.FromEnv(); got != tt.want {
			t.Errorf("FromEnv() with socket %q serial %q vsock %q = %+v, want %+v", tt.socket, tt.serial, tt.vsock, got, tt.want)
		}
	}
}

// serialPort makes a pseudo-terminal in raw mode standing in for a
// virtio-serial port: the agent opens the slave by path, as it opens
// /dev/virtio-ports/maxwell.agent in a VM; the test plays the host on
// the master. (A VM's real port is tested in package cell/vm.)
func serialPort(t *testing.T) (host *os.File, path string) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	path = fmt.Sprintf("/dev/pts/%d", n)
	// Raw mode, as a serial port carries bytes: no echo, no line
	// editing, no CR/LF translation.
	sfd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tio, err := unix.IoctlGetTermios(sfd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	if err := unix.IoctlSetTermios(sfd, unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	host = os.NewFile(uintptr(fd), "ptmx")
	t.Cleanup(func() { host.Close(); unix.Close(sfd) })
	return host, path
}

// TestSerialResync: a new agent on a port finds there what the host sent
// its predecessor (an ack, a tick, an error about a line cut short); it
// sends a lone newline first, skips all that until its welcome, and then
// talks as over a socket.
func TestSerialResync(t *testing.T) {
	host, path := serialPort(t)
	// Left in the port by the previous agent's session.
	stale := `{"v":1,"type":"ack","seq":41}` + "\n" +
		`{"v":1,"type":"tick","tick":9,"reserve":1,"slot_energy":1,"units":1}` + "\n" +
		`{"v":1,"type":"error","code":"malformed","message":"cut short"}` + "\n"
	if _, err := host.WriteString(stale); err != nil {
		t.Fatal(err)
	}
	hostErr := make(chan error, 1)
	go func() {
		rd := bufio.NewReader(host)
		line, err := rd.ReadString('\n')
		if err != nil || line != "\n" {
			hostErr <- fmt.Errorf("first bytes %q, %v; want a lone newline", line, err)
			return
		}
		if line, err = rd.ReadString('\n'); err != nil || !strings.Contains(line, `"type":"hello"`) {
			hostErr <- fmt.Errorf("second line %q, %v; want the hello", line, err)
			return
		}
		host.WriteString(`{"v":1,"type":"ack","seq":42}` + "\n") // crossed on the wire
		host.WriteString(`{"v":1,"type":"welcome","cell":"vm-a","protocol":1}` + "\n")
		if line, err = rd.ReadString('\n'); err != nil || !strings.Contains(line, `"seq":1`) {
			hostErr <- fmt.Errorf("third line %q, %v; want report 1", line, err)
			return
		}
		host.WriteString(`{"v":1,"type":"ack","seq":1}` + "\n")
		hostErr <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := agent.Dial(ctx, agent.Config{Transport: agent.Serial, Address: path, Hello: proto.Hello{Kind: "test"}})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if c.Cell() != "vm-a" {
		t.Errorf("Cell() = %q", c.Cell())
	}
	if err := c.Report(ctx, map[string]uint64{"n": 1}); err != nil {
		t.Errorf("Report: %v", err)
	}
	if err := <-hostErr; err != nil {
		t.Error(err)
	}
}

// TestSerialRefusal: a fatal error before the welcome is the host's
// answer, not a leftover.
func TestSerialRefusal(t *testing.T) {
	host, path := serialPort(t)
	go func() {
		rd := bufio.NewReader(host)
		rd.ReadString('\n')
		rd.ReadString('\n')
		host.WriteString(`{"v":1,"type":"error","code":"already_connected","message":"no","fatal":true}` + "\n")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := agent.Dial(ctx, agent.Config{Transport: agent.Serial, Address: path})
	var pe *agent.ProtocolError
	if !errors.As(err, &pe) || pe.Code != proto.CodeAlreadyConnected {
		t.Errorf("Dial = %v, want the host's already_connected", err)
	}
}

// TestSerialSilentHost: a host that never answers costs the deadline,
// never a hang.
func TestSerialSilentHost(t *testing.T) {
	_, path := serialPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := agent.Dial(ctx, agent.Config{Transport: agent.Serial, Address: path})
	if err == nil {
		t.Fatal("Dial to a silent host succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Dial took %v with a 300 ms deadline", d)
	}
	if _, err := agent.Dial(context.Background(), agent.Config{Transport: agent.Serial, Address: "/nonexistent/port"}); err == nil {
		t.Error("Dial to a missing port succeeded")
	}
}
