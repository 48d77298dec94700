package agent_test

import (
	"context"
	"errors"
	"testing"

	"github.com/maxwellhq/maxwell/agent"
)

func TestParseVsockAddr(t *testing.T) {
	tests := []struct {
		in        string
		cid, port uint32
		wantErr   bool
	}{
		{"2:1024", 2, 1024, false},
		{"3:4294967295", 3, 4294967295, false},
		{"2", 0, 0, true},
		{":1024", 0, 0, true},
		{"2:", 0, 0, true},
		{"-1:5", 0, 0, true},
		{"2:4294967296", 0, 0, true},
		{"host:5", 0, 0, true},
		{"2:5:6", 0, 0, true},
	}
	for _, tt := range tests {
		cid, port, err := agent.ParseVsockAddr(tt.in)
		if tt.wantErr {
			if !errors.Is(err, agent.ErrVsockAddress) {
				t.Errorf("ParseVsockAddr(%q) = %d, %d, %v; want ErrVsockAddress", tt.in, cid, port, err)
			}
			continue
		}
		if err != nil || cid != tt.cid || port != tt.port {
			t.Errorf("ParseVsockAddr(%q) = %d, %d, %v; want %d, %d", tt.in, cid, port, err, tt.cid, tt.port)
		}
	}
}

// TestDialVsockNoPeer checks the vsock transport is wired in without
// connecting anywhere: this kernel has no vsock loopback, and a test may
// only connect to peers it created, so only the paths that fail before
// connect(2) are exercised here (docs/DEPLOY.md: verified in a VM).
func TestDialVsockNoPeer(t *testing.T) {
	t.Setenv(agent.EnvSocket, "")
	t.Setenv(agent.EnvVsock, "2:not-a-port")
	cfg := agent.FromEnv()
	if cfg.Transport != agent.Vsock {
		t.Fatalf("FromEnv = %+v; want the vsock transport", cfg)
	}
	if _, err := agent.Dial(context.Background(), cfg); !errors.Is(err, agent.ErrVsockAddress) {
		t.Errorf("Dial(malformed vsock) = %v; want ErrVsockAddress", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := agent.Dial(ctx, agent.Config{Transport: agent.Vsock, Address: "2:1024"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Dial(vsock, canceled) = %v; want context.Canceled before any connect", err)
	}
}
