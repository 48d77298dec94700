package market

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

func TestDecodeRequest(t *testing.T) {
	req, err := DecodeRequest(strings.NewReader(`{"rule":"vcg","reserve":5,
		"slots":[{"id":2,"weight":1000000},{"id":-1,"weight":1}],
		"bids":[{"bidder":"a","price":9223372036854775807},{"bidder":"b","price":0,"budget":7}]} `))
	if err != nil {
		t.Fatal(err)
	}
	want := Request{
		Rule: VCG, Reserve: 5,
		Slots: []Slot{{ID: 2, Weight: 1_000_000}, {ID: -1, Weight: 1}},
		Bids:  []Bid{{Bidder: 0, Price: 9223372036854775807}, {Bidder: 1, Budget: 7}},
		Names: []string{"a", "b"},
	}
	if req.Rule != want.Rule || req.Reserve != want.Reserve || !slices.Equal(req.Slots, want.Slots) ||
		!slices.Equal(req.Bids, want.Bids) || !slices.Equal(req.Names, want.Names) {
		t.Fatalf("got %+v, want %+v", *req, want)
	}
	// "rule" defaults to gsp; empty lists are fine.
	req, err = DecodeRequest(strings.NewReader(`{"reserve":0,"slots":[],"bids":[]}`))
	if err != nil || req.Rule != GSP {
		t.Fatalf("got %+v, %v", req, err)
	}
}

func TestDecodeRequestRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ``},
		{"not an object", `[]`},
		{"unknown field", `{"reserve":0,"slots":[],"bids":[],"tax":1}`},
		{"unknown slot field", `{"reserve":0,"slots":[{"id":0,"weight":1,"hot":true}],"bids":[]}`},
		{"unknown rule", `{"rule":"first-price","reserve":0,"slots":[],"bids":[]}`},
		{"rule as number", `{"rule":1,"reserve":0,"slots":[],"bids":[]}`},
		{"missing reserve", `{"slots":[],"bids":[]}`},
		{"null reserve", `{"reserve":null,"slots":[],"bids":[]}`},
		{"negative reserve", `{"reserve":-1,"slots":[],"bids":[]}`},
		{"fractional price", `{"reserve":0,"slots":[],"bids":[{"bidder":"a","price":1.5}]}`},
		{"exponent price", `{"reserve":0,"slots":[],"bids":[{"bidder":"a","price":1e3}]}`},
		{"NaN price", `{"reserve":0,"slots":[],"bids":[{"bidder":"a","price":NaN}]}`},
		{"string price", `{"reserve":0,"slots":[],"bids":[{"bidder":"a","price":"5"}]}`},
		{"overflowing price", `{"reserve":0,"slots":[],"bids":[{"bidder":"a","price":18446744073709551616}]}`},
		{"price beyond credits", `{"reserve":0,"slots":[],"bids":[{"bidder":"a","price":9223372036854775808}]}`},
		{"reserve beyond credits", `{"reserve":9223372036854775808,"slots":[],"bids":[]}`},
		{"overflowing slot id", `{"reserve":0,"slots":[{"id":99999999999999999999,"weight":1}],"bids":[]}`},
		{"negative weight", `{"reserve":0,"slots":[{"id":0,"weight":-5}],"bids":[]}`},
		{"missing weight", `{"reserve":0,"slots":[{"id":0}],"bids":[]}`},
		{"missing price", `{"reserve":0,"slots":[],"bids":[{"bidder":"a"}]}`},
		{"missing bidder", `{"reserve":0,"slots":[],"bids":[{"price":1}]}`},
		{"empty bidder", `{"reserve":0,"slots":[],"bids":[{"bidder":"","price":1}]}`},
		{"duplicate bidder", `{"reserve":0,"slots":[],"bids":[{"bidder":"a","price":1},{"bidder":"a","price":2}]}`},
		{"duplicate slot", `{"reserve":0,"slots":[{"id":1,"weight":1},{"id":1,"weight":2}],"bids":[]}`},
		{"trailing garbage", `{"reserve":0,"slots":[],"bids":[]} x`},
		{"second object", `{"reserve":0,"slots":[],"bids":[]}{}`},
		{"truncated", `{"reserve":0,"slots":[`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeRequest(strings.NewReader(tt.in))
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("got %+v, %v; want ErrBadRequest", req, err)
			}
		})
	}
}

// TestExample checks the worked example of docs/AUCTION.md, computed by hand
// there: the miner's budget 800000 caps its effective price at 800000 for a
// top slot of weight 1000000, below the scientist's 900000; idle's 100000 is
// under the reserve 200000; three eligible bids for four slots leave slot 3
// unsold.
func TestExample(t *testing.T) {
	f, err := os.Open("testdata/example.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req, err := DecodeRequest(f)
	if err != nil {
		t.Fatal(err)
	}
	if req.Rule != GSP {
		t.Fatalf("example rule %v, want gsp", req.Rule)
	}
	winners := []string{"scientist", "miner", "logger"}
	for _, tt := range []struct {
		rule     Rule
		payments []units.Credits
		revenue  units.Credits
	}{
		// GSP: 800000×1, 300000×0.7, reserve 200000×0.4.
		{GSP, []units.Credits{800_000, 210_000, 80_000}, 1_090_000},
		// VCG: 0.4×200000 = 80000; +0.3×300000 = 170000;
		// +0.3×800000 = 410000.
		{VCG, []units.Credits{410_000, 170_000, 80_000}, 660_000},
	} {
		res, err := Clear(tt.rule, req.Slots, req.Bids, req.Reserve)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Allocations) != 3 || res.Revenue != tt.revenue || res.ClearingPrice != 200_000 {
			t.Fatalf("%v: got %+v", tt.rule, res)
		}
		for i, al := range res.Allocations {
			if req.Names[al.Bidder] != winners[i] || al.Slot != i || al.Payment != tt.payments[i] {
				t.Errorf("%v rank %d: got %s on slot %d paying %d, want %s on slot %d paying %d",
					tt.rule, i, req.Names[al.Bidder], al.Slot, al.Payment, winners[i], i, tt.payments[i])
			}
		}
	}
}

// FuzzDecodeRequest checks that the decoder never panics, and that whatever
// it accepts is consistent and can be cleared without panicking.
func FuzzDecodeRequest(f *testing.F) {
	if b, err := os.ReadFile("testdata/example.json"); err == nil {
		f.Add(string(b))
	}
	f.Add(`{"rule":"vcg","reserve":1,"slots":[{"id":1,"weight":0}],"bids":[{"bidder":"x","price":2}]}`)
	f.Add(`{"reserve":0,"slots":[],"bids":[]} `)
	f.Add(`{"reserve":-0,"slots":null,"bids":[{"bidder":"a","price":1e1}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		req, err := DecodeRequest(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if len(req.Names) != len(req.Bids) {
			t.Fatalf("%d names for %d bids", len(req.Names), len(req.Bids))
		}
		seen := map[string]bool{}
		for i, b := range req.Bids {
			if b.Bidder != i || req.Names[i] == "" || seen[req.Names[i]] {
				t.Fatalf("bad bid %d: %+v name %q", i, b, req.Names[i])
			}
			seen[req.Names[i]] = true
		}
		for _, rule := range []Rule{GSP, VCG} {
			if _, err := Clear(rule, req.Slots, req.Bids, req.Reserve); err != nil &&
				!errors.Is(err, ErrZeroWeight) && !errors.Is(err, ErrOverflow) {
				t.Fatalf("Clear of a decoded request: unexpected error %v", err)
			}
		}
	})
}
