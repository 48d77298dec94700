package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/kube"
)

// docRow is one metric as docs/METRICS.md lists it.
type docRow struct {
	typ    string
	labels []string
}

// readDoc parses the metric tables of docs/METRICS.md: rows "| `name` |
// type | unit | `label`, … or — | meaning |".
func readDoc(t *testing.T) map[string]docRow {
	t.Helper()
	b, err := os.ReadFile("../../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	label := regexp.MustCompile("`([a-z_]+)`")
	rows := map[string]docRow{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 5 {
			t.Errorf("docs/METRICS.md: row %q has %d columns, want 5 (metric, type, unit, labels, meaning)", line, len(cells))
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		if _, dup := rows[name]; dup {
			t.Errorf("docs/METRICS.md lists %s twice", name)
		}
		var labels []string
		for _, m := range label.FindAllStringSubmatch(cells[3], -1) {
			labels = append(labels, m[1])
		}
		if strings.TrimSpace(cells[3]) != "—" && len(labels) == 0 {
			t.Errorf("docs/METRICS.md: %s: labels %q: want `name`, … or —", name, cells[3])
		}
		if strings.TrimSpace(cells[2]) == "" {
			t.Errorf("docs/METRICS.md: %s has no unit (— for none)", name)
		}
		slices.Sort(labels)
		rows[name] = docRow{typ: strings.TrimSpace(cells[1]), labels: labels}
	}
	return rows
}

// TestDocumented checks docs/METRICS.md against the metrics the exporter
// and the Kubernetes node agent register: every one listed with its type
// and labels, and nothing listed that is not one.
func TestDocumented(t *testing.T) {
	doc := readDoc(t)
	x, err := New(Options{State: stateOf(testState())})
	if err != nil {
		t.Fatal(err)
	}
	x.ObserveStep(engine.Step{Interval: 100 * time.Millisecond, Total: time.Millisecond})
	fams, err := x.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	types := map[dto.MetricType]string{dto.MetricType_GAUGE: "gauge", dto.MetricType_COUNTER: "counter", dto.MetricType_HISTOGRAM: "histogram", dto.MetricType_SUMMARY: "summary"}
	registered := map[string]bool{}
	for _, f := range fams {
		name := f.GetName()
		if p, _, ok := strings.Cut(name, "_"); ok && (p == "go" || p == "process") {
			if _, ok := doc[p+"_*"]; !ok {
				t.Errorf("docs/METRICS.md does not list %s (nor %s_*)", name, p)
			}
			registered[p+"_*"] = true
			continue
		}
		registered[name] = true
		row, ok := doc[name]
		if !ok {
			t.Errorf("docs/METRICS.md does not list %s", name)
			continue
		}
		if row.typ != types[f.GetType()] {
			t.Errorf("docs/METRICS.md: %s is a %s, the exporter's a %s", name, row.typ, types[f.GetType()])
		}
		set := map[string]bool{}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				set[l.GetName()] = true
			}
		}
		var labels []string
		for l := range set {
			labels = append(labels, l)
		}
		slices.Sort(labels)
		if !slices.Equal(row.labels, labels) {
			t.Errorf("docs/METRICS.md: %s has labels %v, the exporter's %v", name, row.labels, labels)
		}
	}
	// The node agent's metrics: names and labels from its descriptors
	// (all gauges, which a descriptor does not say). They register beside
	// the exporter's, as the daemon does with --kubernetes.
	if err := x.Register((*kube.Agent)(nil).Collector()); err != nil {
		t.Errorf("the node agent's collector does not register beside the exporter's: %v", err)
	}
	ch := make(chan *prometheus.Desc, 64)
	(*kube.Agent)(nil).Collector().Describe(ch)
	close(ch)
	descRe := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}\}$`)
	for d := range ch {
		m := descRe.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("descriptor %s: cannot read", d)
		}
		name, labels := m[1], strings.Split(m[2], ",")
		slices.Sort(labels)
		registered[name] = true
		row, ok := doc[name]
		switch {
		case !ok:
			t.Errorf("docs/METRICS.md does not list the node agent's %s", name)
		case !slices.Equal(row.labels, labels) || row.typ != "gauge":
			t.Errorf("docs/METRICS.md: %s is a %s with labels %v, the node agent's a gauge with %v", name, row.typ, row.labels, labels)
		}
	}
	for name := range doc {
		if !registered[name] {
			t.Errorf("docs/METRICS.md lists %s, which nothing registers", name)
		}
	}
	for _, name := range NewCollector(nil, 0).Names() {
		if !registered[name] {
			t.Errorf("the test state does not bring out %s: its row is unchecked", name)
		}
	}
}
