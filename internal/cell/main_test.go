package cell

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"
)

// Roles the test binary plays when a test re-executes it.
const (
	roleEnv    = "MAXWELL_CELL_TEST_ROLE"
	parentEnv  = "MAXWELL_CELL_TEST_PARENT"
	freezerEnv = "MAXWELL_CELL_TEST_FREEZER"

	roleSpin     = "spin"     // burn CPU on every thread until killed
	roleFakeHost = "fakehost" // start and pause a cell, report it, then idle
	// roleAdoptHost adopts the cgroup in adoptCgroupEnv, limits and
	// pauses it, reports, then idles (adopt_host_test.go).
	roleAdoptHost = "adopthost"
)

func TestMain(m *testing.M) {
	RunShimIfRequested()
	switch os.Getenv(roleEnv) {
	case roleSpin:
		spin()
	case roleFakeHost:
		os.Exit(fakeHost())
	case roleAdoptHost:
		os.Exit(adoptHost())
	}
	os.Exit(m.Run())
}

// spin burns CPU on two threads forever, so that the signal freezer has
// more than one thread to stop.
func spin() {
	runtime.GOMAXPROCS(2)
	go func() {
		for {
		}
	}()
	for {
	}
}

// fakeHostReport is what the fake host prints once its cell is paused.
type fakeHostReport struct {
	PIDs  []int    `json:"pids"`
	Dirs  []string `json:"dirs"`
	Guard int      `json:"guard"`
	Error string   `json:"error,omitempty"`
}

// fakeHost plays a Maxwell host that gets SIGKILLed: it starts a cell
// (a shell with a sleeping child and a busy loop), pauses it, prints a
// fakeHostReport line, and idles until killed.
func fakeHost() int {
	report := func(r fakeHostReport) {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
	opts := DefaultOptions()
	opts.Parent = os.Getenv(parentEnv)
	opts.Freezer = FreezerKind(os.Getenv(freezerEnv))
	m, err := NewManager(opts)
	if err != nil {
		report(fakeHostReport{Error: err.Error()})
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := m.Start(ctx, Spec{Name: "victim", Path: "sh", Args: []string{"-c", "sleep 1000 & while :; do :; done"}})
	if err != nil {
		report(fakeHostReport{Error: err.Error()})
		return 1
	}
	cc := c.(*cell)
	var r fakeHostReport
	err = cgroupfs.Poll(ctx, func() (bool, error) {
		var err error
		if cc.cg != nil {
			r.PIDs, err = cc.cg.procs()
		} else {
			r.PIDs, err = cc.pg.members()
		}
		return len(r.PIDs) >= 2, err
	})
	if err == nil {
		err = c.Pause(ctx)
	}
	if err != nil {
		report(fakeHostReport{Error: err.Error()})
		return 1
	}
	if cc.cg != nil {
		r.Dirs = cc.cg.dirs()
	}
	r.Guard = m.guard.cmd.Process.Pid
	report(r)
	time.Sleep(time.Hour)
	return 0
}
