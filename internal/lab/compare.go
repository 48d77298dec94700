package lab

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/maxwellhq/maxwell/internal/economy"
	"github.com/maxwellhq/maxwell/internal/engine"
	"github.com/maxwellhq/maxwell/internal/plot"
	"github.com/maxwellhq/maxwell/internal/record"
)

// Baseline runs the named agents of the story (both with none) under plain
// Linux scheduling (engine.PolicyCFS: nothing is governed, everything is
// measured) for d, writing to dir.
func (env Env) Baseline(ctx context.Context, kind string, d time.Duration, dir string, names ...string) (record.Summary, error) {
	endow := economy.DemoEndowment(env.Config, len(env.CPUs), d)
	r, err := env.run(ctx, runSpec{kind: kind, policy: engine.PolicyCFS, agents: env.storyAgents(endow, false, names...), duration: d, dir: dir})
	return r.summary, err
}

// CompareOptions configure Compare.
type CompareOptions struct {
	// Duration is the length of the baseline and of the Maxwell run,
	// Alone that of the Scientist-alone run (0: Duration).
	Duration, Alone time.Duration
	Dir             string
	// Story hears the Maxwell run's story and the progress.
	Story io.Writer
}

// Comparison is what `maxwell compare --json` prints.
type Comparison struct {
	Baseline record.Summary `json:"baseline"`
	Maxwell  DemoResult     `json:"maxwell"`
	// Alone is the Scientist by itself under plain scheduling: the
	// throughput the Scientist reaches when nothing competes with it.
	Alone record.Summary `json:"alone"`
	// Unit is the useful work compared, and Ratio Maxwell's useful work
	// per Joule over the baseline's, on total energy and on dynamic energy
	// above idle (where idle is known).
	Unit         string   `json:"unit"`
	Ratio        float64  `json:"useful_per_joule_ratio"`
	DynamicRatio *float64 `json:"useful_per_dynamic_joule_ratio,omitempty"`
	// AloneRate is the Scientist's throughput alone over the same stretch
	// of its work as it did after the Miner's apoptosis under Maxwell: the
	// first (duration − time of apoptosis) seconds (it had done next to
	// nothing before, outbid), since a sieve's primes per second fall as
	// the numbers grow.
	AloneRate *float64 `json:"scientist_alone_primes_per_second,omitempty"`
	// AfterVsAlone is the Scientist's throughput after the Miner's
	// apoptosis over AloneRate.
	AfterVsAlone *float64 `json:"scientist_after_vs_alone,omitempty"`
	Plots        []string `json:"plots"`
}

// Compare runs the baseline, then Maxwell's economy, with the same
// duration, agents and CPUs, then the Scientist alone, and compares them.
func (env Env) Compare(ctx context.Context, o CompareOptions) (Comparison, error) {
	var c Comparison
	if o.Alone <= 0 {
		o.Alone = o.Duration
	}
	var err error
	if c.Baseline, err = env.Baseline(ctx, "baseline", o.Duration, filepath.Join(o.Dir, "baseline")); err != nil {
		return c, fmt.Errorf("baseline run: %w", err)
	}
	if c.Maxwell, err = env.Demo(ctx, DemoOptions{Duration: o.Duration, Dir: filepath.Join(o.Dir, "maxwell"), Story: o.Story}); err != nil {
		return c, fmt.Errorf("maxwell run: %w", err)
	}
	alone := filepath.Join(o.Dir, "alone")
	if c.Alone, err = env.Baseline(ctx, "alone", o.Alone, alone, Scientist); err != nil {
		return c, fmt.Errorf("scientist-alone run: %w", err)
	}
	if r, err := record.ReadRun(alone); err == nil {
		window := time.Duration(c.Alone.DurationSeconds * float64(time.Second))
		if died := c.Maxwell.Economy.MinerDiedAtSeconds; died != nil {
			window = o.Duration - time.Duration(*died*float64(time.Second))
		}
		if v, ok := record.CounterRate(r, Scientist, "primes", 0, window); ok {
			c.AloneRate = &v
		}
	}
	c.ratios()
	c.Plots, err = plot.Run([]string{filepath.Join(o.Dir, "baseline"), filepath.Join(o.Dir, "maxwell")}, filepath.Join(o.Dir, "plots"))
	if err != nil {
		return c, fmt.Errorf("plots: %w", err)
	}
	return c, nil
}

// ratios fills in the comparison's ratios, on the first unit of useful
// work the baseline did.
func (c *Comparison) ratios() {
	b, m := c.Baseline, c.Maxwell.Summary
	if len(b.Useful) > 0 {
		c.Unit = b.Useful[0].Unit
	}
	bu, bok := b.UsefulIn(c.Unit)
	mu, mok := m.UsefulIn(c.Unit)
	if bok && mok && bu.PerJoule > 0 {
		c.Ratio = mu.PerJoule / bu.PerJoule
		if bu.PerDynamicJoule != nil && mu.PerDynamicJoule != nil && *bu.PerDynamicJoule > 0 {
			r := *mu.PerDynamicJoule / *bu.PerDynamicJoule
			c.DynamicRatio = &r
		}
	}
	if after := c.Maxwell.Economy.ScientistPrimesPerSecondAfter; after != nil && c.AloneRate != nil && *c.AloneRate > 0 {
		r := *after / *c.AloneRate
		c.AfterVsAlone = &r
	}
}
