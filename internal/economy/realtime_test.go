package economy

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// policyOfThisThread reads the scheduling policy of the calling thread
// (field 41 of /proc/thread-self/stat; 1 is SCHED_FIFO).
func policyOfThisThread(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	p, err := strconv.Atoi(f[41-3])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSetFIFO: the tick thread really runs under SCHED_FIFO, as the
// kernel reports it; a priority out of range is refused.
func TestSetFIFO(t *testing.T) {
	if err := setFIFO(0); err == nil {
		t.Error("priority 0 accepted")
	}
	if os.Geteuid() != 0 {
		t.Skip("SCHED_FIFO needs root or CAP_SYS_NICE")
	}
	done := make(chan int)
	go func() {
		runtime.LockOSThread() // the thread ends with the goroutine
		if err := setFIFO(20); err != nil {
			t.Error(err)
		}
		done <- policyOfThisThread(t)
	}()
	if p := <-done; p != 1 {
		t.Errorf("the thread's policy is %d, want 1 (SCHED_FIFO)", p)
	}
	if p := policyOfThisThread(t); p != 0 {
		t.Errorf("the test's own thread is policy %d", p)
	}
}
