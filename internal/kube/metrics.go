package kube

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a Prometheus collector of the agent's latest reading
// of its node, every series with a node label, for the daemon to register
// beside its own metrics (and for the Prometheus Adapter rule in
// deploy/kubernetes to serve to metric-driven schedulers):
//
//	maxwell_node_reserve_price_credits{node}    reserve price, credits per CPU slot
//	maxwell_node_thermal_headroom_celsius{node} setpoint − temperature, °C (source in maxwell_node_info)
//	maxwell_node_price_heat{node}               where the price stands between floor (0) and ceiling (1)
//	maxwell_node_price_band{node,band}          1 for the published band, 0 for the others
//	maxwell_node_hot{node}                      1 while the node carries the maxwell.dev/hot taint
//	maxwell_node_adopted_pods{node}             pods the agent governs as cells
//	maxwell_node_info{node,source}              1; source says whether the temperature was measured or estimated
//
// Before the first reading it reports nothing.
func (a *Agent) Collector() prometheus.Collector { return collector{a} }

type collector struct{ a *Agent }

var (
	labelsNode     = []string{"node"}
	descReserve    = prometheus.NewDesc("maxwell_node_reserve_price_credits", "Reserve price of one CPU slot on this node, in credits (1 credit = 1 microjoule).", labelsNode, nil)
	descHeadroom   = prometheus.NewDesc("maxwell_node_thermal_headroom_celsius", "Setpoint minus temperature on this node, in degrees Celsius; the temperature's source is in maxwell_node_info.", labelsNode, nil)
	descHeat       = prometheus.NewDesc("maxwell_node_price_heat", "Where the node's price stands between its floor (0) and its ceiling (1).", labelsNode, nil)
	descBand       = prometheus.NewDesc("maxwell_node_price_band", "1 for the price band the node publishes (label maxwell.dev/price-band), 0 for the others.", []string{"node", "band"}, nil)
	descHot        = prometheus.NewDesc("maxwell_node_hot", "1 while the node carries the maxwell.dev/hot:NoSchedule taint.", labelsNode, nil)
	descAdopted    = prometheus.NewDesc("maxwell_node_adopted_pods", "Pods the node agent governs as cells.", labelsNode, nil)
	descNodeSource = prometheus.NewDesc("maxwell_node_info", "Always 1; source says where the node's temperature comes from (measured or estimated, and by what).", []string{"node", "source"}, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReserve, descHeadroom, descHeat, descBand, descHot, descAdopted, descNodeSource} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	a.mu.Lock()
	last, ok, adopted := a.last, a.hasLast, len(a.adopted)
	a.mu.Unlock()
	if !ok {
		return
	}
	n := a.opts.Node
	g := prometheus.GaugeValue
	ch <- prometheus.MustNewConstMetric(descReserve, g, float64(last.Reserve), n)
	ch <- prometheus.MustNewConstMetric(descHeadroom, g, last.Headroom, n)
	ch <- prometheus.MustNewConstMetric(descHeat, g, last.Heat, n)
	for _, b := range []Band{BandLow, BandMid, BandHigh} {
		v := 0.0
		if b == last.Band {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descBand, g, v, n, string(b))
	}
	hot := 0.0
	if last.Hot {
		hot = 1
	}
	ch <- prometheus.MustNewConstMetric(descHot, g, hot, n)
	ch <- prometheus.MustNewConstMetric(descAdopted, g, float64(adopted), n)
	ch <- prometheus.MustNewConstMetric(descNodeSource, g, 1, n, last.Source)
}
