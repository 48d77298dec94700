package cell

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// adoptCgroupEnv names the cgroup path the adopt host adopts.
const adoptCgroupEnv = "MAXWELL_CELL_TEST_ADOPT_CGROUP"

// AdoptHostReport is what the adopt host prints once its adopted cell is
// limited and paused.
type AdoptHostReport struct {
	Guard int    `json:"guard"`
	Error string `json:"error,omitempty"`
}

// adoptHost plays a Maxwell host that adopts a cgroup and then gets
// SIGKILLed: it adopts the cgroup named in adoptCgroupEnv, caps it at a
// tenth of a CPU, pauses it, prints an AdoptHostReport line, and idles.
func adoptHost() int {
	report := func(r AdoptHostReport) int {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
		if r.Error != "" {
			return 1
		}
		return 0
	}
	opts := DefaultOptions()
	opts.Parent = os.Getenv(parentEnv)
	m, err := NewManager(opts)
	if err != nil {
		return report(AdoptHostReport{Error: err.Error()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := m.Adopt(ctx, AdoptSpec{Name: "ns/adopted", Cgroup: os.Getenv(adoptCgroupEnv), Freezer: FreezerKind(os.Getenv(freezerEnv))})
	if err == nil {
		err = c.(CPULimiter).LimitCPU(0.1)
	}
	if err == nil {
		err = c.Pause(ctx)
	}
	if err != nil {
		return report(AdoptHostReport{Error: err.Error()})
	}
	report(AdoptHostReport{Guard: m.guard.cmd.Process.Pid})
	time.Sleep(time.Hour)
	return 0
}
