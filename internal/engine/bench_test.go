package engine

import (
	"strconv"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

// BenchmarkDecide measures one tick of the decision core: price, auction,
// charges and insolvency, for n bidding cells over 2 and 64 CPUs.
func BenchmarkDecide(b *testing.B) {
	for _, slots := range []int{2, 64} {
		for _, n := range []int{2, 100, 1000} {
			b.Run("slots="+strconv.Itoa(slots)+"/cells="+strconv.Itoa(n), func(b *testing.B) {
				cfg := testConfig()
				cfg.Slots = slots
				c, err := NewCore(cfg)
				if err != nil {
					b.Fatal(err)
				}
				in := Input{Dt: cfg.Tick, Temperature: 50}
				for i := range n {
					name := "cell-" + strconv.Itoa(i)
					if err := c.Admit(name, Wallet{Balance: 1 << 60, Endowment: 1 << 60}); err != nil {
						b.Fatal(err)
					}
					in.Cells = append(in.Cells, CellInput{Name: name, FreedBytes: uint64(i) << 12,
						Bid: Bid{Price: units.Credits(1000 + i%97*37), Units: 1 + i%3}})
				}
				b.ReportAllocs()
				for b.Loop() {
					in.Tick++
					d, err := c.Decide(in)
					if err != nil {
						b.Fatal(err)
					}
					c.Commit(d)
				}
			})
		}
	}
}
