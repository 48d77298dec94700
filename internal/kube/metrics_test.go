package kube

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/maxwellhq/maxwell/internal/clock/clocktest"
	"github.com/maxwellhq/maxwell/internal/units"
)

type reportOnly struct{ r NodeReport }

func (e reportOnly) Adopt(_ context.Context, r AdoptRequest) (string, error) { return r.Name, nil }
func (e reportOnly) Release(context.Context, string) (units.Credits, error) {
	return 0, nil
}
func (e reportOnly) Report(context.Context) (NodeReport, error) { return e.r, nil }

// TestCollector reads the series the agent exports after one reading. The
// fake clientset holds no node, so the node write fails: the metrics
// report the reading all the same (the write path is tested against the
// real API server in agent_test.go).
func TestCollector(t *testing.T) {
	econ := reportOnly{NodeReport{Reserve: 2500, Ceiling: 4000, Multiplier: 2.5, MaxMultiplier: 4, Temperature: 72, Setpoint: 70, Source: "estimated: thermal twin"}}
	a, err := New(Options{Node: "n1", Client: fake.NewClientset(), Economy: econ, Clock: clocktest.New()})
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(a.Collector()); n != 0 {
		t.Errorf("%d series before the first reading; want none", n)
	}
	a.PublishOnce(context.Background())
	want := `
# HELP maxwell_node_reserve_price_credits Reserve price of one CPU slot on this node, in credits (1 credit = 1 microjoule).
# TYPE maxwell_node_reserve_price_credits gauge
maxwell_node_reserve_price_credits{node="n1"} 2500
# HELP maxwell_node_thermal_headroom_celsius Setpoint minus temperature on this node, in degrees Celsius; the temperature's source is in maxwell_node_info.
# TYPE maxwell_node_thermal_headroom_celsius gauge
maxwell_node_thermal_headroom_celsius{node="n1"} -2
# HELP maxwell_node_price_band 1 for the price band the node publishes (label maxwell.dev/price-band), 0 for the others.
# TYPE maxwell_node_price_band gauge
maxwell_node_price_band{band="high",node="n1"} 0
maxwell_node_price_band{band="low",node="n1"} 0
maxwell_node_price_band{band="mid",node="n1"} 1
# HELP maxwell_node_info Always 1; source says where the node's temperature comes from (measured or estimated, and by what).
# TYPE maxwell_node_info gauge
maxwell_node_info{node="n1",source="estimated: thermal twin"} 1
`
	if err := testutil.CollectAndCompare(a.Collector(), strings.NewReader(want),
		"maxwell_node_reserve_price_credits", "maxwell_node_thermal_headroom_celsius", "maxwell_node_price_band", "maxwell_node_info"); err != nil {
		t.Error(err)
	}
}
