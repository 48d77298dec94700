// Package metrics exports the daemon's state as Prometheus metrics. A
// Collector reads an api.State on each scrape and turns it into
// metrics with conventional names and base units (°C, W, J, bytes,
// seconds; money in credits, one credit being one µJ of host energy).
//
// Figures that come from a sensor or a model carry its name in a "source"
// label, its kind and tier, and estimated="true" when a model made them.
//
// Nothing here touches the global registry: Handler serves a registry of
// its own.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/life"
)

// StateFunc returns the daemon's state; api.Backend's State is one.
type StateFunc func(ctx context.Context) (api.State, error)

// Timeout bounds each call of the StateFunc during a scrape.
const Timeout = 10 * time.Second

// desc is one metric family: its name and help, type and labels.
type desc struct {
	name   string
	help   string
	typ    prometheus.ValueType
	labels []string
}

var (
	readingLabels = []string{"source", "kind", "tier", "estimated"}
	agentLabel    = []string{"agent"}
)

// families lists every metric the Collector exports, in output order.
func families() []desc {
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	return []desc{
		{"maxwell_temperature_celsius", "Host temperature in degrees Celsius, by the source that measured or estimated it.", g, readingLabels},
		{"maxwell_temperature_setpoint_celsius", "Temperature in degrees Celsius that the price controller aims for.", g, nil},
		{"maxwell_power_watts", "Host power draw in watts, by the source that measured or estimated it.", g, readingLabels},
		{"maxwell_source_info", "Where each figure comes from: the sensor or model (with its parameters) per quantity; always 1.", g, []string{"quantity", "source", "kind", "tier", "estimated", "model"}},
		{"maxwell_price_multiplier", "Thermal price multiplier (at least 1) set by the temperature controller.", g, nil},
		{"maxwell_reserve_price_credits", "Reserve price of one CPU slot for one tick, in credits (1 credit = 1 microjoule).", g, nil},
		{"maxwell_clearing_price_credits", "Clearing price of the last auction, in credits per CPU slot; 0 when nothing sold.", g, nil},
		{"maxwell_fail_safe", "1 while the temperature cannot be read and the price is held at its ceiling, else 0.", g, nil},
		{"maxwell_ticks_total", "Auction ticks decided since the daemon started.", c, nil},
		{"maxwell_tick_duration_seconds", "Length of one auction tick in seconds.", g, nil},
		{"maxwell_slots", "CPU slots sold in each auction.", g, nil},
		{"maxwell_start_time_seconds", "Start time of the daemon since the Unix epoch in seconds.", g, nil},
		{"maxwell_apoptosis_total", "Agents killed for insolvency since the daemon started.", c, nil},
		{"maxwell_agents", "Agents known to the daemon, by state.", g, []string{"state"}},
		{"maxwell_agent_state", "Life state of each agent: 1 for the state it is in, 0 for the others.", g, []string{"agent", "state"}},
		{"maxwell_agent_info", "Each agent's containment backend; always 1.", g, []string{"agent", "backend"}},
		{"maxwell_agent_balance_credits", "Wallet balance of each agent in credits.", g, agentLabel},
		{"maxwell_agent_endowment_credits", "Wallet endowment of each agent at admission in credits.", g, agentLabel},
		{"maxwell_agent_burn_rate_credits_per_second", "Recent spending of each agent in credits per second.", g, agentLabel},
		{"maxwell_agent_paid_credits_total", "Credits each agent has paid for CPU slots.", c, agentLabel},
		{"maxwell_agent_tax_credits_total", "Credits each agent has paid in Landauer tax on freed memory.", c, agentLabel},
		{"maxwell_agent_freed_bytes_total", "Memory each agent has freed, in bytes, as the daemon metered it.", c, agentLabel},
		{"maxwell_agent_energy_joules_total", "Host energy attributed to each agent, in joules.", c, []string{"agent", "estimated"}},
		{"maxwell_agent_cpu_ratio", "Share of the host's CPU time each agent used over the last tick, from 0 to 1.", g, agentLabel},
		{"maxwell_agent_bid_price_credits", "Price each agent bid per CPU slot in the last auction, in credits.", g, agentLabel},
		{"maxwell_agent_bid_slots", "CPU slots each agent bid for in the last auction.", g, agentLabel},
		{"maxwell_agent_won_slots", "CPU slots each agent won in the last auction.", g, agentLabel},
	}
}

// Collector is a prometheus.Collector that reads the daemon's state on
// each scrape.
type Collector struct {
	state StateFunc
	descs map[string]*prometheus.Desc
	types map[string]prometheus.ValueType
	order []desc
	err   *prometheus.Desc
}

// NewCollector returns a Collector reading state on each scrape.
func NewCollector(state StateFunc) *Collector {
	c := &Collector{state: state, descs: map[string]*prometheus.Desc{}, types: map[string]prometheus.ValueType{}, order: families()}
	for _, d := range c.order {
		c.descs[d.name] = prometheus.NewDesc(d.name, d.help, d.labels, nil)
		c.types[d.name] = d.typ
	}
	c.err = prometheus.NewDesc("maxwell_state_error", "The daemon's state could not be read.", nil, nil)
	return c
}

// Names returns the names of the metric families the Collector exports.
func (c *Collector) Names() []string {
	names := make([]string, len(c.order))
	for i, d := range c.order {
		names[i] = d.name
	}
	return names
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.order {
		ch <- c.descs[d.name]
	}
}

// Collect implements prometheus.Collector. A state that cannot be read
// fails the scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	st, err := c.state(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.err, fmt.Errorf("read daemon state: %w", err))
		return
	}
	emit := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], c.types[name], v, labels...)
	}
	src := func(s api.Source) []string {
		return []string{s.Name, s.Kind, strconv.Itoa(s.Tier), strconv.FormatBool(s.Estimated)}
	}
	if st.Temperature.Error == "" {
		emit("maxwell_temperature_celsius", st.Temperature.Celsius, src(st.Temperature.Source)...)
	}
	emit("maxwell_temperature_setpoint_celsius", st.Temperature.Setpoint)
	if st.Power.Error == "" {
		emit("maxwell_power_watts", st.Power.Watts, src(st.Power.Source)...)
	}
	for q, s := range map[string]api.Source{"temperature": st.Temperature.Source, "power": st.Power.Source} {
		if s.Name != "" || s.Kind != "" {
			emit("maxwell_source_info", 1, append([]string{q}, append(src(s), s.Model)...)...)
		}
	}
	emit("maxwell_price_multiplier", st.Multiplier)
	emit("maxwell_reserve_price_credits", float64(st.Reserve))
	emit("maxwell_clearing_price_credits", float64(st.Clearing))
	emit("maxwell_fail_safe", b2f(st.FailSafe))
	emit("maxwell_ticks_total", float64(st.Tick))
	emit("maxwell_tick_duration_seconds", st.TickSeconds)
	emit("maxwell_slots", float64(st.Slots))
	if !st.Started.IsZero() {
		emit("maxwell_start_time_seconds", float64(st.Started.UnixNano())/1e9)
	}
	emit("maxwell_apoptosis_total", float64(st.Apoptoses))

	counts := map[life.State]int{}
	for _, cell := range st.Cells {
		counts[cell.State]++
	}
	for _, s := range life.States() {
		emit("maxwell_agents", float64(counts[s]), string(s))
	}
	for _, cell := range st.Cells {
		n := cell.Name
		for _, s := range life.States() {
			emit("maxwell_agent_state", b2f(cell.State == s), n, string(s))
		}
		emit("maxwell_agent_info", 1, n, cell.Backend)
		emit("maxwell_agent_balance_credits", float64(cell.Balance), n)
		emit("maxwell_agent_endowment_credits", float64(cell.Endowment), n)
		emit("maxwell_agent_burn_rate_credits_per_second", cell.BurnRate, n)
		emit("maxwell_agent_paid_credits_total", float64(cell.Paid), n)
		emit("maxwell_agent_tax_credits_total", float64(cell.Tax), n)
		emit("maxwell_agent_freed_bytes_total", float64(cell.FreedBytes), n)
		emit("maxwell_agent_energy_joules_total", cell.Energy, n, strconv.FormatBool(cell.EnergyEstimated))
		emit("maxwell_agent_cpu_ratio", cell.CPUShare, n)
		emit("maxwell_agent_bid_price_credits", float64(cell.BidPrice), n)
		emit("maxwell_agent_bid_slots", float64(cell.BidUnits), n)
		emit("maxwell_agent_won_slots", float64(cell.Won), n)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRegistry returns a registry holding only a Collector for state.
func NewRegistry(state StateFunc) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(NewCollector(state)); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return reg, nil
}

// Handler returns an http.Handler that serves the metrics of state in the
// Prometheus exposition formats. A scrape whose state cannot be read fails
// with 500.
func Handler(state StateFunc) http.Handler {
	reg, err := NewRegistry(state)
	if err != nil {
		// Only an invalid descriptor fails registration: a bug here.
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		})
	}
	return HandlerFor(reg)
}

// HandlerFor serves a registry's metrics as Handler does, for a daemon
// that registers collectors of its own beside NewRegistry's (the
// Kubernetes node agent's).
func HandlerFor(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError, Timeout: Timeout + time.Second})
}
