package cell

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

func TestLimitCPU(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	m, err := NewManager(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Layout().Kind == LayoutNone {
		t.Skipf("no writable cgroups: %s", m.Layout().Reason)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Start(context.Background(), Spec{Name: "limit-test", Path: exe, Env: append(os.Environ(), roleEnv+"="+roleSpin)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, ok := c.(CPULimiter)
	if !ok {
		t.Fatal("cgroup cell does not implement CPULimiter")
	}
	cpuOver := func(d time.Duration) time.Duration {
		a, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(d)
		b, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return b.CPUTime - a.CPUTime
	}
	if err := l.LimitCPU(0.1); err != nil {
		t.Fatal(err)
	}
	// The spinner would use up to two CPUs; capped at 0.1 it gets at most
	// 0.1 s per second, plus a period's slack at the edges.
	capped := cpuOver(time.Second)
	if capped > 220*time.Millisecond {
		t.Errorf("capped at 0.1 CPU, the cell used %v in 1 s", capped)
	}
	if err := l.LimitCPU(0); err != nil {
		t.Fatal(err)
	}
	// Uncapped it takes what the host gives it: on a host shared with
	// other tests (eight busy processes on two CPUs give it a quarter of
	// a CPU), still twice the cap at least.
	if used := cpuOver(time.Second); used < 200*time.Millisecond || used < 2*capped {
		t.Errorf("uncapped, the cell used only %v in 1 s (capped: %v)", used, capped)
	}

	sig, err := m.Start(context.Background(), Spec{Name: "limit-signal", Path: "/bin/sleep", Args: []string{"10"}, Freezer: FreezerSignal})
	if err != nil {
		t.Fatal(err)
	}
	defer sig.Close()
	if err := sig.(CPULimiter).LimitCPU(1); !errors.Is(err, ErrNoCPUController) {
		t.Errorf("LimitCPU on a signal cell = %v, want ErrNoCPUController", err)
	}
}
