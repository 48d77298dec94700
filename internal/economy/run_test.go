package economy_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/config"
	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/sensors"
	"github.com/maxwellhq/maxwell/internal/units"
)

func TestMain(m *testing.M) {
	cell.RunShimIfRequested()
	os.Exit(m.Run())
}

// TestPaidMatchesAttributed: cells that keep every CPU busy, paying the
// reserve at multiplier 1, pay what the ratio model attributes to them,
// within 10 % (see docs/AUCTION.md): a full slot costs its expected energy,
// and pay per use charges the CPU time the attribution divides the energy
// by. (Bids above the reserve pay the auction's price of scarcity on top.)
func TestPaidMatchesAttributed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	cfg := config.Default()
	// Out of the thermal price's way: the twin models the whole host, and
	// other tests heat it.
	cfg.Engine.SetpointCelsius, cfg.Engine.CriticalCelsius = 90, 99
	dir := t.TempDir()
	cpus := []int{0, 1}
	econ, err := economy.Open(context.Background(), economy.Options{
		Config: cfg, Roots: sensors.HostRoots(), CgroupRoot: "/sys/fs/cgroup",
		CellParent:  "maxwell-test-economy-" + strconv.Itoa(os.Getpid()),
		AgentSocket: filepath.Join(dir, "agent.sock"), LedgerPath: filepath.Join(dir, "ledger.db"), CPUs: cpus,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- econ.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	slot := economy.SlotEnergy(cfg)
	for i, c := range cpus {
		if _, err := econ.Spawn(ctx, api.SpawnRequest{Name: "busy-" + strconv.Itoa(i), Argv: []string{"/bin/sh", "-c", "while :; do :; done"},
			Wallet: 1 << 40, MaxBid: units.Credits(slot), Units: 1, CPUs: []int{c}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(4 * time.Second)
	st, err := econ.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Multiplier != 1 {
		t.Fatalf("multiplier %v: the test needs the base price", st.Multiplier)
	}
	var paid units.Credits
	var attributed float64
	for _, c := range st.Cells {
		paid += c.Paid
		attributed += c.Energy
		t.Logf("%s: paid %.3f J, attributed %.3f J, %.2f CPU s", c.Name, c.Paid.Joules(), c.Energy, c.CPUSeconds)
	}
	if attributed <= 0 || paid <= 0 {
		t.Fatalf("nothing paid (%d) or attributed (%v)", paid, attributed)
	}
	if r := paid.Joules() / attributed; math.Abs(r-1) > 0.10 {
		t.Errorf("paid %.3f J for %.3f J attributed: ratio %.3f, want within 10 %% of 1", paid.Joules(), attributed, r)
	}
}
