package kube

import (
	"strings"
	"testing"
	"time"
)

// TestWriteClusterTable: every node is listed, with what its agent
// published or why there is nothing; estimates are marked; every cell is
// listed under its node.
func TestWriteClusterTable(t *testing.T) {
	at := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	nodes := []NodeView{
		{Node: "cool", Band: BandLow, Published: &NodeAnnotation{Node: "cool", At: at, Reserve: 759375, Ceiling: 7593750, Multiplier: 1,
			Celsius: 34.5, Setpoint: 55, Source: "estimated: model rc-twin (R=0.5 K/W)", Band: BandLow,
			Cells: []CellReport{{Name: "default/web-0", State: "running", Balance: 900}, {Name: "default/web-1/2", State: "paused", Balance: 5}}}},
		{Node: "hot", Band: BandHigh, Hot: true, Published: &NodeAnnotation{Node: "hot", At: at.Add(-4 * time.Second), Reserve: 7593750, Ceiling: 7593750,
			Multiplier: 10, Celsius: 91.7, Setpoint: 55, Source: "measured: hwmon coretemp", Band: BandHigh, Hot: true, CellsOmitted: 3}},
		{Node: "plain", Problem: "no maxwell.dev/node annotation: no Maxwell node agent publishes here"},
	}
	var b strings.Builder
	if err := WriteClusterTable(&b, nodes, at.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, l := range strings.Split(b.String(), "\n") {
		rows[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, want := range []string{
		"cool low - 759375 7593750 1.00 ~34.5 °C 55.0 °C estimated: model rc-twin (R=0.5 K/W) 2s ago",
		"hot high hot 7593750 7593750 10.00 91.7 °C 55.0 °C measured: hwmon coretemp 6s ago",
		"plain - - - - - - - no maxwell.dev/node annotation: no Maxwell node agent publishes here -",
		"cool default/web-0 running 900", "cool default/web-1/2 paused 5", "hot (3 more not published)",
	} {
		if !rows[want] {
			t.Errorf("no row %q in:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := WriteClusterTable(&b, nodes[2:], at); err != nil || !strings.Contains(b.String(), "no cells") {
		t.Errorf("a cluster without cells: %v\n%s", err, b.String())
	}
}
