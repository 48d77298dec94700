package kube

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHeat(t *testing.T) {
	for _, tc := range []struct{ m, max, want float64 }{
		{1, 4, 0}, {4, 4, 1}, {2.5, 4, 0.5}, {0.5, 4, 0}, {9, 4, 1}, {3, 1, 0},
	} {
		if got := Heat(tc.m, tc.max); got != tc.want {
			t.Errorf("Heat(%v, %v) = %v; want %v", tc.m, tc.max, got, tc.want)
		}
	}
}

func TestBander(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := BandPolicy{MidAt: 1.0 / 3, HighAt: 2.0 / 3, Margin: 0.05, Dwell: 10 * time.Second}
	type step struct {
		at   time.Duration
		heat float64
		want Band
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first reading sets the band at once", []step{{0, 0.9, BandHigh}}},
		{"wobbling around a threshold does not flap", []step{
			{0, 0.30, BandLow}, {20 * time.Second, 0.36, BandLow}, {40 * time.Second, 0.32, BandLow}, {60 * time.Second, 0.37, BandLow},
		}},
		{"clear rise moves up, clear fall moves down", []step{
			{0, 0.1, BandLow}, {20 * time.Second, 0.5, BandMid}, {40 * time.Second, 0.25, BandLow},
		}},
		{"dwell holds a fresh band", []step{
			{0, 0.1, BandLow}, {11 * time.Second, 0.5, BandMid}, {12 * time.Second, 0.1, BandMid}, {22 * time.Second, 0.1, BandLow},
		}},
		{"jumps two bands", []step{{0, 0.0, BandLow}, {20 * time.Second, 1.0, BandHigh}, {40 * time.Second, 0.0, BandLow}}},
		{"high holds inside its dead band", []step{{0, 0.9, BandHigh}, {20 * time.Second, 0.63, BandHigh}, {40 * time.Second, 0.6, BandMid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Bander{Policy: p}
			for i, s := range tc.steps {
				if got := b.Next(t0.Add(s.at), s.heat); got != s.want {
					t.Fatalf("step %d (t+%v, heat %v) = %s; want %s", i, s.at, s.heat, got, s.want)
				}
			}
		})
	}
}

func TestHot(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := HotPolicy{AtCeiling: 0.99, OnAfter: 10 * time.Second, OffAfter: 30 * time.Second}
	type step struct {
		at   time.Duration
		heat float64
		want bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"a moment at the ceiling is not hot", []step{{0, 1, false}, {5 * time.Second, 1, false}, {6 * time.Second, 0.5, false}, {20 * time.Second, 1, false}}},
		{"staying at the ceiling is hot", []step{{0, 1, false}, {9 * time.Second, 1, false}, {10 * time.Second, 1, true}}},
		{"hot holds through a short dip", []step{{0, 1, false}, {10 * time.Second, 1, true}, {20 * time.Second, 0.5, true}, {40 * time.Second, 1, true}, {50 * time.Second, 0.5, true}}},
		{"cooling for OffAfter clears it", []step{{0, 1, false}, {10 * time.Second, 1, true}, {20 * time.Second, 0.5, true}, {49 * time.Second, 0.5, true}, {50 * time.Second, 0.5, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Hot{Policy: p}
			for i, s := range tc.steps {
				if got := h.Next(t0.Add(s.at), s.heat); got != s.want {
					t.Fatalf("step %d (t+%v, heat %v) = %t; want %t", i, s.at, s.heat, got, s.want)
				}
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := RateLimit{Min: 5 * time.Second}
	for i, tc := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {time.Second, false}, {4 * time.Second, false}, {5 * time.Second, true}, {9 * time.Second, false}, {20 * time.Second, true}} {
		if got := r.Allow(t0.Add(tc.at)); got != tc.want {
			t.Errorf("step %d (t+%v) = %t; want %t", i, tc.at, got, tc.want)
		}
	}
}

func TestParseTerms(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ann     map[string]string
		want    Terms
		optedIn bool
		bad     []string // substrings of the error
	}{
		{"not opted in", map[string]string{"app": "web"}, Terms{}, false, nil},
		{"wallet only", map[string]string{AnnotationWallet: "5000"}, Terms{Wallet: 5000, Units: 1, OnInsolvency: Evict}, true, nil},
		{"everything", map[string]string{AnnotationWallet: "5000", AnnotationMaxBid: "40", AnnotationUnits: "2", AnnotationTap: "10", AnnotationOnInsolvency: "hibernate"},
			Terms{Wallet: 5000, MaxBid: 40, Units: 2, Tap: 10, OnInsolvency: Hibernate}, true, nil},
		{"tap alone pays", map[string]string{AnnotationWallet: "0", AnnotationTap: "10"}, Terms{Tap: 10, Units: 1, OnInsolvency: Evict}, true, nil},
		{"garbage wallet", map[string]string{AnnotationWallet: "lots"}, Terms{}, true, []string{`maxwell.dev/wallet="lots"`}},
		{"negative", map[string]string{AnnotationWallet: "-5"}, Terms{}, true, []string{"wallet"}},
		{"no wallet", map[string]string{AnnotationMaxBid: "10"}, Terms{}, true, []string{"maxwell.dev/wallet is missing"}},
		{"bad policy", map[string]string{AnnotationWallet: "1", AnnotationOnInsolvency: "explode"}, Terms{}, true, []string{"want evict or hibernate"}},
		{"units without bid", map[string]string{AnnotationWallet: "1", AnnotationUnits: "2"}, Terms{}, true, []string{"units size the standing bid"}},
		{"units out of range", map[string]string{AnnotationWallet: "1", AnnotationMaxBid: "1", AnnotationUnits: "0"}, Terms{}, true, []string{"want 1 to 4096"}},
		{"unknown key", map[string]string{AnnotationWallet: "1", Prefix + "walet": "1"}, Terms{}, true, []string{"maxwell.dev/walet: unknown"}},
		{"cannot pay", map[string]string{AnnotationWallet: "0"}, Terms{}, true, []string{"could never pay"}},
		{"every problem named", map[string]string{AnnotationWallet: "x", AnnotationTap: "y"}, Terms{}, true, []string{"wallet", "tap"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, optedIn, err := ParseTerms(tc.ann)
			if optedIn != tc.optedIn {
				t.Errorf("opted in = %t; want %t", optedIn, tc.optedIn)
			}
			if len(tc.bad) == 0 {
				if err != nil || got != tc.want {
					t.Errorf("= %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrAnnotation) {
				t.Fatalf("err = %v; want ErrAnnotation", err)
			}
			for _, b := range tc.bad {
				if !strings.Contains(err.Error(), b) {
					t.Errorf("err %q does not mention %q", err, b)
				}
			}
		})
	}
}
