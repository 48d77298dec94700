package scenario

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/scenarios"
)

// TestShippedScenarios: every scenario in scenarios/ parses, has useful
// work, and the ones with parasites name them.
func TestShippedScenarios(t *testing.T) {
	names := scenarios.Names()
	if len(names) < 7 || names[0] != scenarios.Default {
		t.Fatalf("shipped scenarios %v, want at least 7, the default first", names)
	}
	for _, n := range names {
		b, err := scenarios.Read(n)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(b)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if s.Name != n {
			t.Errorf("%s.yaml is named %q", n, s.Name)
		}
		if len(s.Useful()) == 0 {
			t.Errorf("%s: no useful agent", n)
		}
	}
	s, _ := Parse(mustRead(t, "mixed-20"))
	if len(s.Cells()) != 20 || len(s.Parasites()) != 10 || len(s.Useful()) != 10 {
		t.Errorf("mixed-20: %d cells, %d parasites, %d useful", len(s.Cells()), len(s.Parasites()), len(s.Useful()))
	}
	seed, _ := Parse(mustRead(t, "seed"))
	if seed.Duration != 60*time.Second || seed.CPUs != 2 || seed.Agents[1].Multiple != 25 {
		t.Errorf("seed: %+v", seed)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := scenarios.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadScenarios: each mistake gives a clear error naming the agent and
// the setting.
func TestBadScenarios(t *testing.T) {
	const ok = "name: x\nagents:\n  - name: s\n    workload: scientist\n    useful: true\n"
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatalf("a minimal scenario: %v", err)
	}
	for _, tt := range []struct{ name, doc, want string }{
		{"empty", "", "empty"},
		{"not yaml", "agents: [", "invalid scenario"},
		{"a misspelt key", ok + "    multipel: 3\n", "multipel"},
		{"no name", "agents:\n  - name: s\n    workload: scientist\n    useful: true\n", "name: required"},
		{"no agents", "name: x\n", "at least one"},
		{"nobody useful", "name: x\nagents:\n  - name: m\n    workload: miner\n", "none is useful"},
		{"an unknown workload", "name: x\nagents:\n  - name: s\n    workload: poet\n    useful: true\n", `workload "poet"`},
		{"a command without one", "name: x\nagents:\n  - name: c\n    workload: command\n    useful: true\n    useful_counter: n\n", "needs command"},
		{"a useful command without a counter", "name: x\nagents:\n  - name: c\n    workload: command\n    command: [/bin/true]\n    useful: true\n", "useful_counter"},
		{"a strategy for a command", "name: x\nagents:\n  - name: c\n    workload: command\n    command: [/bin/true]\n    strategy: greedy\n  - name: s\n    workload: scientist\n    useful: true\n", "standing_bid"},
		{"an unknown strategy", "name: x\nagents:\n  - name: s\n    workload: scientist\n    strategy: bold\n    useful: true\n", `strategy "bold"`},
		{"income nobody can check", "name: x\nagents:\n  - name: s\n    workload: service\n    income: {credits_per_unit: 1}\n    useful: true\n", "cannot check"},
		{"a bad income", "name: x\nagents:\n  - name: s\n    workload: scientist\n    income: {credits_per_unit: -1}\n    useful: true\n", "credits_per_unit"},
		{"two agents one name", "name: x\nagents:\n  - name: s\n    workload: scientist\n    useful: true\n  - name: s\n    workload: miner\n", "two agents named s"},
		{"replicas colliding", "name: x\nagents:\n  - name: s\n    count: 2\n    workload: scientist\n    useful: true\n  - name: s-1\n    workload: miner\n", "two agents named s-1"},
		{"useful and parasite", "name: x\nagents:\n  - name: s\n    workload: scientist\n    useful: true\n    parasite: true\n", "useful and parasite"},
		{"a bad thermal limit", ok + "thermal: {setpoint_celsius: 80, critical_celsius: 70}\n", "thermal"},
		{"a negative endowment", "name: x\nagents:\n  - name: s\n    workload: scientist\n    endowment_credits: -5\n    useful: true\n", "negative"},
		{"a bad name", "name: x\nagents:\n  - name: a/b\n    workload: scientist\n    useful: true\n", "name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
}
