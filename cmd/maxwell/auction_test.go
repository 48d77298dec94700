package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/market"
)

// repoRoot finds the module root, where docs/ and internal/ live.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

func runAuctionCmd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newAuctionCmd()
	var out bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// TestAuctionDocExample checks that docs/AUCTION.md shows the example file
// verbatim and exactly what the command prints for it.
func TestAuctionDocExample(t *testing.T) {
	root := repoRoot(t)
	example, err := os.ReadFile(filepath.Join(root, "internal/market/testdata/example.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs/AUCTION.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```json\n"+string(example)+"```\n") {
		t.Error("docs/AUCTION.md does not show internal/market/testdata/example.json verbatim")
	}
	got, err := runAuctionCmd(t, string(example))
	if err != nil {
		t.Fatal(err)
	}
	const marker = "`maxwell auction < internal/market/testdata/example.json` prints:\n\n```\n"
	_, after, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatal("docs/AUCTION.md lost its example output block")
	}
	want, _, _ := strings.Cut(after, "```\n")
	if got != want {
		t.Errorf("command prints\n%s\ndocs/AUCTION.md shows\n%s", got, want)
	}
	// The same file named as an argument gives the same output.
	got2, err := runAuctionCmd(t, "", filepath.Join(root, "internal/market/testdata/example.json"))
	if err != nil || got2 != got {
		t.Errorf("file argument: got %q, %v", got2, err)
	}
}

func TestAuctionJSON(t *testing.T) {
	in := `{"rule":"vcg","reserve":0,"slots":[{"id":1,"weight":1000000},{"id":2,"weight":1000000},{"id":3,"weight":1000000}],
		"bids":[{"bidder":"a","price":100},{"bidder":"b","price":80},{"bidder":"c","price":60},{"bidder":"d","price":40}]}`
	got, err := runAuctionCmd(t, in, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var out market.Outcome
	if err := json.Unmarshal([]byte(got), &out); err != nil {
		t.Fatalf("%v in %s", err, got)
	}
	// Equal weights: VCG is the uniform 4th price.
	if out.Rule != "vcg" || out.Revenue != 120 || out.ClearingPrice != 40 || len(out.Allocations) != 3 {
		t.Fatalf("got %+v", out)
	}
	for i, name := range []string{"a", "b", "c"} {
		if al := out.Allocations[i]; al.Bidder != name || al.Slot != i+1 || al.Payment != 40 {
			t.Errorf("allocation %d: %+v", i, al)
		}
	}
	if len(out.UnsoldSlots) != 0 || len(out.Losers) != 1 || out.Losers[0] != "d" {
		t.Errorf("unsold %v losers %v", out.UnsoldSlots, out.Losers)
	}
}

func TestAuctionRejectsBadInput(t *testing.T) {
	for _, in := range []string{
		`{"reserve":0,"slots":[],"bids":[],"extra":1}`,
		`{"reserve":-3,"slots":[],"bids":[]}`,
		`{"reserve":0.5,"slots":[],"bids":[]}`,
		`{"reserve":0,"slots":[],"bids":[]} trailing`,
		`{"reserve":0,"slots":[{"id":0,"weight":0}],"bids":[]}`,
		`{"reserve":0,"slots":[{"id":0,"weight":2000000}],"bids":[{"bidder":"a","price":18446744073709551615}]}`,
	} {
		if out, err := runAuctionCmd(t, in); err == nil {
			t.Errorf("%s: accepted, printed %q", in, out)
		}
	}
	if _, err := runAuctionCmd(t, "", "/nonexistent/bids.json"); err == nil {
		t.Error("missing file accepted")
	}
}
