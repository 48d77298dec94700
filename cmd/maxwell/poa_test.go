package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func runPoaCmd(t *testing.T, args ...string) string {
	t.Helper()
	cmd := newPoaCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestPoaCmd(t *testing.T) {
	table := runPoaCmd(t, "--instances", "5", "--seed", "9")
	if lines := strings.Count(table, "\n"); lines != 1+16+2 {
		t.Errorf("table has %d lines, want a header, 16 settings and a footer:\n%s", lines, table)
	}
	if !strings.Contains(table, "seed 9, 5 instances per setting") {
		t.Errorf("footer missing:\n%s", table)
	}
	a := runPoaCmd(t, "--instances", "5", "--seed", "9", "--json")
	b := runPoaCmd(t, "--instances", "5", "--seed", "9", "--json")
	if a != b {
		t.Fatal("same seed, different output")
	}
	var out struct {
		Seed     uint64 `json:"seed"`
		Settings []struct {
			Rule      string          `json:"rule"`
			Instances int             `json:"instances"`
			Ratio     json.RawMessage `json:"ratio"`
		} `json:"settings"`
	}
	if err := json.Unmarshal([]byte(a), &out); err != nil {
		t.Fatalf("%v in %s", err, a)
	}
	if out.Seed != 9 || len(out.Settings) != 16 || out.Settings[0].Rule != "gsp" || out.Settings[15].Rule != "vcg" ||
		out.Settings[0].Instances != 5 {
		t.Fatalf("got %+v", out)
	}
}
