package poa

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
)

// Report is a study's result: its configuration and one summary per
// setting. It prints as a table (WriteText) or as JSON, where NaN is null
// and +Inf "inf".
type Report struct {
	Config    Config
	Summaries []Summary
}

// WriteText prints the report as a table.
func (r Report) WriteText(w io.Writer) error {
	cfg, sums := r.Config, r.Summaries
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "rule\toverbid\tbudgets\treserve\truns\tnot conv.\tsold nothing\tratio med\tp95\tmax\tratio max (all)\tε med\tε p95\tε max\ttruthful ε max\t\n")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.1f%%\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			s.Rule, onOff(s.Overbid), onOff(s.Budgets), onOff(s.Reserve), s.Instances,
			100*s.NonConvergence, s.SoldNothing, num(s.Ratio.Median), num(s.Ratio.P95), num(s.Ratio.Max),
			num(s.RatioAll.Max), num(s.Epsilon.Median), num(s.Epsilon.P95), num(s.Epsilon.Max),
			num(s.TruthEpsilon.Max))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nseed %d, %d instances per setting, cap %d updates per bidder, ε grid %d\n",
		cfg.Seed, cfg.Instances, cfg.MaxStepsPerBidder, cfg.Grid)
	return err
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "-"
	case math.IsInf(x, 1):
		return "inf"
	}
	return fmt.Sprintf("%.3f", x)
}

// jsonNum is a float64 that encodes NaN as null and +Inf as "inf", which
// encoding/json cannot represent as numbers.
type jsonNum float64

func (x jsonNum) MarshalJSON() ([]byte, error) {
	switch f := float64(x); {
	case math.IsNaN(f):
		return []byte("null"), nil
	case math.IsInf(f, 1):
		return []byte(`"inf"`), nil
	}
	return json.Marshal(float64(x))
}

type jsonDist struct {
	Median jsonNum `json:"median"`
	P95    jsonNum `json:"p95"`
	Max    jsonNum `json:"max"`
}

func distJSON(d Dist) jsonDist {
	return jsonDist{jsonNum(d.Median), jsonNum(d.P95), jsonNum(d.Max)}
}

// MarshalJSON implements json.Marshaler.
func (r Report) MarshalJSON() ([]byte, error) {
	cfg, sums := r.Config, r.Summaries
	type row struct {
		Rule           string   `json:"rule"`
		Overbid        bool     `json:"overbid"`
		Budgets        bool     `json:"budgets"`
		Reserve        bool     `json:"reserve"`
		Instances      int      `json:"instances"`
		Converged      int      `json:"converged"`
		NonConvergence float64  `json:"non_convergence"`
		SoldNothing    int      `json:"sold_nothing"`
		Ratio          jsonDist `json:"ratio"`
		RatioAll       jsonDist `json:"ratio_all"`
		Epsilon        jsonDist `json:"epsilon"`
		TruthEpsilon   jsonDist `json:"truthful_epsilon"`
	}
	out := struct {
		Seed              uint64 `json:"seed"`
		Instances         int    `json:"instances"`
		MaxStepsPerBidder int    `json:"max_steps_per_bidder"`
		Grid              int    `json:"grid"`
		Settings          []row  `json:"settings"`
	}{Seed: cfg.Seed, Instances: cfg.Instances, MaxStepsPerBidder: cfg.MaxStepsPerBidder, Grid: cfg.Grid}
	for _, s := range sums {
		out.Settings = append(out.Settings, row{
			Rule: s.Rule.String(), Overbid: s.Overbid, Budgets: s.Budgets, Reserve: s.Reserve,
			Instances: s.Instances, Converged: s.Converged, NonConvergence: s.NonConvergence,
			SoldNothing: s.SoldNothing,
			Ratio:       distJSON(s.Ratio), RatioAll: distJSON(s.RatioAll),
			Epsilon: distJSON(s.Epsilon), TruthEpsilon: distJSON(s.TruthEpsilon),
		})
	}
	return json.Marshal(out)
}
