package kube

import "time"

// Band is a node's price band, published as the LabelPriceBand label for
// schedulers to prefer cheap nodes by.
type Band string

// The price bands.
const (
	BandLow  Band = "low"
	BandMid  Band = "mid"
	BandHigh Band = "high"
)

// Heat returns where a node's price stands between its floor and its
// ceiling, in [0, 1]: 0 when the thermal multiplier is 1 (the host is at
// or below its setpoint), 1 when it is at its maximum.
func Heat(multiplier, maxMultiplier float64) float64 {
	if maxMultiplier <= 1 {
		return 0
	}
	return min(max((multiplier-1)/(maxMultiplier-1), 0), 1)
}

// BandPolicy sets the heat thresholds between bands and their hysteresis.
// A node moves up a band when its heat rises above the upper threshold
// plus Margin, and down when it falls below it minus Margin; and it stays
// at least Dwell in a band before it moves again, so that the label does
// not flap as the price wobbles around a threshold.
type BandPolicy struct {
	// MidAt and HighAt are the heats at which the bands change.
	MidAt, HighAt float64
	// Margin is the half-width of the dead band around each threshold.
	Margin float64
	// Dwell is the least time between two changes of band.
	Dwell time.Duration
}

// DefaultBandPolicy: thirds of the price range, a dead band of ±0.05,
// at least 30 s in a band.
func DefaultBandPolicy() BandPolicy {
	return BandPolicy{MidAt: 1.0 / 3, HighAt: 2.0 / 3, Margin: 0.05, Dwell: 30 * time.Second}
}

// Bander is the band state machine. The zero value starts in no band; the
// first Next sets one at once.
type Bander struct {
	Policy BandPolicy
	band   Band
	since  time.Time
}

// Next returns the band for heat at now.
func (b *Bander) Next(now time.Time, heat float64) Band {
	p := b.Policy
	if b.band == "" {
		b.band, b.since = rawBand(p, heat), now
		return b.band
	}
	if now.Sub(b.since) < p.Dwell {
		return b.band
	}
	want := b.band
	switch b.band {
	case BandLow:
		if heat > p.HighAt+p.Margin {
			want = BandHigh
		} else if heat > p.MidAt+p.Margin {
			want = BandMid
		}
	case BandMid:
		if heat > p.HighAt+p.Margin {
			want = BandHigh
		} else if heat < p.MidAt-p.Margin {
			want = BandLow
		}
	case BandHigh:
		if heat < p.MidAt-p.Margin {
			want = BandLow
		} else if heat < p.HighAt-p.Margin {
			want = BandMid
		}
	}
	if want != b.band {
		b.band, b.since = want, now
	}
	return b.band
}

// rawBand is the band of heat without hysteresis.
func rawBand(p BandPolicy, heat float64) Band {
	switch {
	case heat >= p.HighAt:
		return BandHigh
	case heat >= p.MidAt:
		return BandMid
	}
	return BandLow
}

// HotPolicy says when a node is tainted hot: once its price has stayed at
// its ceiling (heat ≥ AtCeiling) for OnAfter, and untainted once it has
// stayed below for OffAfter.
type HotPolicy struct {
	AtCeiling         float64
	OnAfter, OffAfter time.Duration
}

// DefaultHotPolicy: at 99 % of the range, tainted after 10 s there,
// untainted after 30 s below.
func DefaultHotPolicy() HotPolicy {
	return HotPolicy{AtCeiling: 0.99, OnAfter: 10 * time.Second, OffAfter: 30 * time.Second}
}

// Hot is the hot-taint state machine.
type Hot struct {
	Policy HotPolicy
	hot    bool
	// since is when heat last crossed to the other side of AtCeiling
	// than hot says; zero while it is on hot's side.
	since time.Time
}

// Next returns whether the node should carry the hot taint at now.
func (h *Hot) Next(now time.Time, heat float64) bool {
	at := heat >= h.Policy.AtCeiling
	if at == h.hot {
		h.since = time.Time{}
		return h.hot
	}
	if h.since.IsZero() {
		h.since = now
	}
	hold := h.Policy.OnAfter
	if h.hot {
		hold = h.Policy.OffAfter
	}
	if now.Sub(h.since) >= hold {
		h.hot, h.since = at, time.Time{}
	}
	return h.hot
}

// RateLimit lets an action happen at most once every Min.
type RateLimit struct {
	Min  time.Duration
	last time.Time
	done bool
}

// Allow reports whether the action may happen at now, and if so counts it
// as done.
func (r *RateLimit) Allow(now time.Time) bool {
	if r.done && now.Sub(r.last) < r.Min {
		return false
	}
	r.last, r.done = now, true
	return true
}
