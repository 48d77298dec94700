package metrics

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
)

// desc is one metric family of the Collector: its name and help, type and
// labels.
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

// Energy modes of maxwell_host_energy_joules_total.
const (
	modeIdle    = "idle"
	modeDynamic = "dynamic"
	modeTotal   = "total"
)

// Limits that may bind the price (maxwell_price_binding): the engine's,
// and "none" for a price at its floor.
var bindings = []string{string(engine.LimitTemperature), string(engine.LimitPower), "none"}

// families lists every metric the Collector exports, in output order.
func families() []desc {
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	return []desc{
		{"maxwell_temperature_celsius", "Host temperature in degrees Celsius, by the source that measured or estimated it.", g, readingLabels},
		{"maxwell_temperature_setpoint_celsius", "Temperature in degrees Celsius that the price controller aims for.", g, nil},
		{"maxwell_power_watts", "Host power draw in watts over the last tick, by the source that measured or estimated it.", g, readingLabels},
		{"maxwell_power_idle_watts", "Idle power of the CPUs sold in watts, where the power model gives it; absent with a sensor, which does not tell idle power apart.", g, readingLabels},
		{"maxwell_power_budget_watts", "Host power budget in watts that the price controller holds the power under; absent when none is set.", g, nil},
		{"maxwell_host_energy_joules_total", `Host energy spent since the daemon started, in joules, by source. Where the power model knows the idle power, mode="idle" is idle power × time and mode="dynamic" the rest; a sensor that does not split them (RAPL, hwmon) gives one series, mode="total" (Maxwell does not guess the idle power). The sum over mode is the host's energy either way.`, c, append(readingLabels[:4:4], "mode")},
		{"maxwell_host_busy_cpu_seconds_total", "Busy CPU time of the CPUs sold since the daemon started, in seconds (every process's, not only the agents').", c, nil},
		{"maxwell_source_info", "Where each figure comes from: the sensor or model (with its parameters) per quantity; always 1.", g, []string{"quantity", "source", "kind", "tier", "estimated", "model"}},
		{"maxwell_price_multiplier", "Thermal price multiplier (at least 1) set by the price controller.", g, nil},
		{"maxwell_price_binding", `Which limit sets the price: 1 for the binding one ("temperature", the setpoint; "power", the power budget; "none", the price at its floor), 0 for the others.`, g, []string{"limit"}},
		{"maxwell_reserve_price_credits", "Reserve price of one CPU slot for one tick, in credits (1 credit = 1 microjoule).", g, nil},
		{"maxwell_clearing_price_credits", "Clearing price of the last auction, in credits per CPU slot; 0 when nothing sold.", g, nil},
		{"maxwell_fail_safe", "1 while the temperature cannot be read and the price is held at its ceiling, else 0.", g, nil},
		{"maxwell_ticks_total", "Auction ticks decided since the daemon started (a restarted daemon continues the ledger's numbering: use rate or increase).", c, nil},
		{"maxwell_last_tick_timestamp_seconds", "When the last tick was decided, in seconds since the Unix epoch; absent before the first.", g, nil},
		{"maxwell_tick_configured_seconds", "Configured length of one auction tick in seconds (maxwell_tick_interval_seconds has the lengths measured).", g, nil},
		{"maxwell_slots", "CPU slots sold in each auction.", g, nil},
		{"maxwell_start_time_seconds", "Start time of the daemon since the Unix epoch in seconds.", g, nil},
		{"maxwell_apoptosis_total", "Agents killed for insolvency since the daemon started.", c, nil},
		{"maxwell_ledger_errors_total", "Ticks whose postings the ledger refused since the daemon started; nobody is charged or frozen while it refuses (events ledger_unavailable, ledger_recovered).", c, nil},
		{"maxwell_hub_errors_total", `Agent connections the hub refused (kind="agent_refused": the peer is in no cell) and agent protocol errors (kind="agent_protocol_error"), every one counted, including those a flood's summary event stands for.`, c, []string{"kind"}},
		{"maxwell_events_lost_total", "Events that a watcher of the economy's event stream fell too far behind to receive.", c, nil},
		{"maxwell_agents", "Agents known to the daemon, by state; dead ones count for as long as the daemon runs.", g, []string{"state"}},
		{"maxwell_agent_state", "Life state of each agent: 1 for the state it is in, 0 for the others.", g, []string{"agent", "state"}},
		{"maxwell_agent_info", `Each agent's containment: its backend, its cgroup below the hierarchies' root (as /proc/PID/cgroup and cAdvisor's id label have it; "" for a cell in no cgroup) and its OCI container ID ("" if it is not a container); always 1.`, g, []string{"agent", "backend", "cgroup", "container_id"}},
		{"maxwell_agent_balance_credits", "Wallet balance of each agent in credits.", g, agentLabel},
		{"maxwell_agent_endowment_credits", "Wallet endowment of each agent at admission in credits.", g, agentLabel},
		{"maxwell_agent_burn_rate_credits_per_second", "What each agent spent (CPU slots, Landauer tax, memory rent) per second over the last 10 s: rate(maxwell_agent_spent_credits_total[10s]).", g, agentLabel},
		{"maxwell_agent_spent_credits_total", "Credits each agent has spent: paid for CPU slots, Landauer tax and memory rent together.", c, agentLabel},
		{"maxwell_agent_paid_credits_total", "Credits each agent has paid for CPU slots.", c, agentLabel},
		{"maxwell_agent_tax_credits_total", "Credits each agent has paid in Landauer tax on freed memory.", c, agentLabel},
		{"maxwell_agent_rent_credits_total", "Credits each agent has paid in memory rent.", c, agentLabel},
		{"maxwell_agent_income_credits_total", "Credits each agent has earned for checked useful work.", c, agentLabel},
		{"maxwell_agent_freed_bytes_total", "Memory each agent has freed, in bytes, as the daemon metered it.", c, agentLabel},
		{"maxwell_agent_energy_joules_total", "Host energy attributed to each agent by its share of the CPU time, in joules; source, kind, tier and estimated are the host energy's.", c, []string{"agent", "source", "kind", "tier", "estimated"}},
		{"maxwell_agent_cpu_seconds_total", "CPU time each agent's cell has used, in seconds.", c, agentLabel},
		{"maxwell_agent_cpu_ratio", "Share of the sold CPUs' time each agent used over the last tick, from 0 to 1 (for rates over a window, use maxwell_agent_cpu_seconds_total).", g, agentLabel},
		{"maxwell_agent_memory_bytes", "Memory each agent's cell used at the last tick, in bytes.", g, agentLabel},
		{"maxwell_agent_bid_price_credits", "Price each agent bid per CPU slot in the last auction, in credits.", g, agentLabel},
		{"maxwell_agent_bid_slots", "CPU slots each agent bid for in the last auction.", g, agentLabel},
		{"maxwell_agent_won_slots_total", "CPU slots each agent has won, one per slot per tick.", c, agentLabel},
		{"maxwell_agent_ticks_total", "Ticks each agent has been decided in, from admission to death.", c, agentLabel},
	}
}

// Collector is a prometheus.Collector that reads the daemon's state on
// each scrape. It drops the series of a cell that has been dead for its
// grace period.
type Collector struct {
	state StateFunc
	grace time.Duration
	descs map[string]*prometheus.Desc
	types map[string]prometheus.ValueType
	order []desc
	err   *prometheus.Desc

	mu        sync.Mutex
	deadSince map[string]time.Time // when a scrape first found each dead cell dead, by the state's time
}

// NewCollector returns a Collector reading state on each scrape, which
// exports a dead cell's series for grace after it first finds it dead
// (grace ≤ 0: not at all).
func NewCollector(state StateFunc, grace time.Duration) *Collector {
	c := &Collector{state: state, grace: grace, descs: map[string]*prometheus.Desc{}, types: map[string]prometheus.ValueType{},
		order: families(), deadSince: map[string]time.Time{}}
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
	power := src(st.Power.Source)
	if st.Temperature.Error == "" {
		emit("maxwell_temperature_celsius", st.Temperature.Celsius, src(st.Temperature.Source)...)
	}
	emit("maxwell_temperature_setpoint_celsius", st.Temperature.Setpoint)
	if st.Power.Error == "" {
		emit("maxwell_power_watts", st.Power.Watts, power...)
	}
	if st.Power.IdleWatts > 0 {
		emit("maxwell_power_idle_watts", st.Power.IdleWatts, power...)
	}
	if st.PowerBudgetWatts > 0 {
		emit("maxwell_power_budget_watts", st.PowerBudgetWatts)
	}
	if st.Power.IdleWatts > 0 {
		emit("maxwell_host_energy_joules_total", st.IdleEnergyJoules, append(power, modeIdle)...)
		emit("maxwell_host_energy_joules_total", max(st.EnergyJoules-st.IdleEnergyJoules, 0), append(power, modeDynamic)...)
	} else {
		emit("maxwell_host_energy_joules_total", st.EnergyJoules, append(power, modeTotal)...)
	}
	emit("maxwell_host_busy_cpu_seconds_total", st.BusyCPUSeconds)
	for _, q := range []struct {
		quantity string
		s        api.Source
	}{{"temperature", st.Temperature.Source}, {"power", st.Power.Source}} {
		if q.s.Name != "" || q.s.Kind != "" {
			emit("maxwell_source_info", 1, append([]string{q.quantity}, append(src(q.s), q.s.Model)...)...)
		}
	}
	emit("maxwell_price_multiplier", st.Multiplier)
	if st.Tick > 0 {
		binding := st.Binding
		if binding == "" {
			binding = "none"
		}
		for _, l := range bindings {
			emit("maxwell_price_binding", b2f(l == binding), l)
		}
	}
	emit("maxwell_reserve_price_credits", float64(st.Reserve))
	emit("maxwell_clearing_price_credits", float64(st.Clearing))
	emit("maxwell_fail_safe", b2f(st.FailSafe))
	emit("maxwell_ticks_total", float64(st.Tick))
	if !st.TickTime.IsZero() {
		emit("maxwell_last_tick_timestamp_seconds", unixSeconds(st.TickTime))
	}
	emit("maxwell_tick_configured_seconds", st.TickSeconds)
	emit("maxwell_slots", float64(st.Slots))
	if !st.Started.IsZero() {
		emit("maxwell_start_time_seconds", unixSeconds(st.Started))
	}
	emit("maxwell_apoptosis_total", float64(st.Apoptoses))
	emit("maxwell_ledger_errors_total", float64(st.LedgerErrors))
	emit("maxwell_hub_errors_total", float64(st.AgentRefused), string(event.AgentRefused))
	emit("maxwell_hub_errors_total", float64(st.AgentProtocolErrors), string(event.AgentProtocolError))
	emit("maxwell_events_lost_total", float64(st.EventsLost))

	counts := map[life.State]int{}
	for _, cell := range st.Cells {
		counts[cell.State]++
	}
	for _, s := range life.States() {
		emit("maxwell_agents", float64(counts[s]), string(s))
	}
	for _, cell := range c.shown(st) {
		n := cell.Name
		for _, s := range life.States() {
			emit("maxwell_agent_state", b2f(cell.State == s), n, string(s))
		}
		emit("maxwell_agent_info", 1, n, cell.Backend, cell.Cgroup, cell.ContainerID)
		emit("maxwell_agent_balance_credits", float64(cell.Balance), n)
		emit("maxwell_agent_endowment_credits", float64(cell.Endowment), n)
		emit("maxwell_agent_burn_rate_credits_per_second", cell.BurnRate, n)
		emit("maxwell_agent_spent_credits_total", float64(cell.Paid+cell.Tax+cell.Rent), n)
		emit("maxwell_agent_paid_credits_total", float64(cell.Paid), n)
		emit("maxwell_agent_tax_credits_total", float64(cell.Tax), n)
		emit("maxwell_agent_rent_credits_total", float64(cell.Rent), n)
		emit("maxwell_agent_income_credits_total", float64(cell.Income), n)
		emit("maxwell_agent_freed_bytes_total", float64(cell.FreedBytes), n)
		emit("maxwell_agent_energy_joules_total", cell.Energy, n, power[0], power[1], power[2], strconv.FormatBool(cell.EnergyEstimated))
		emit("maxwell_agent_cpu_seconds_total", cell.CPUSeconds, n)
		emit("maxwell_agent_cpu_ratio", cell.CPUShare, n)
		emit("maxwell_agent_memory_bytes", float64(cell.MemoryBytes), n)
		emit("maxwell_agent_bid_price_credits", float64(cell.BidPrice), n)
		emit("maxwell_agent_bid_slots", float64(cell.BidUnits), n)
		emit("maxwell_agent_won_slots_total", float64(cell.WonSlots), n)
		emit("maxwell_agent_ticks_total", float64(cell.Ticks), n)
	}
}

// shown returns the cells of st whose series are exported: all but those
// dead for longer than the grace, by st's time. It forgets the cells st no
// longer has.
func (c *Collector) shown(st api.State) []api.Cell {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]api.Cell, 0, len(st.Cells))
	seen := make(map[string]bool, len(st.Cells))
	for _, cell := range st.Cells {
		seen[cell.Name] = true
		if cell.State != life.Dead {
			delete(c.deadSince, cell.Name)
			out = append(out, cell)
			continue
		}
		since, ok := c.deadSince[cell.Name]
		if !ok {
			since = st.Time
			c.deadSince[cell.Name] = since
		}
		if st.Time.Sub(since) < c.grace {
			out = append(out, cell)
		}
	}
	for name := range c.deadSince {
		if !seen[name] {
			delete(c.deadSince, name)
		}
	}
	return out
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
