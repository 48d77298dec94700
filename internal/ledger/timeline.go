package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"time"
)

// Clock tells a writer the time (Options.Clock). The Clock of package
// internal/clock is one.
type Clock interface {
	Now() time.Time
}

// ClockAnchor ties the ledger's ticks to the time: tick Tick fell at
// Time, and the ticks were Period apart from there on.
type ClockAnchor struct {
	Tick   uint64        `json:"tick"`
	Time   time.Time     `json:"time"`
	Period time.Duration `json:"period_ns"`
}

// TimeOf returns when tick t fell, reckoned from a by its period.
func (a ClockAnchor) TimeOf(t uint64) time.Time {
	d := int64(t) - int64(a.Tick) // ticks are at most math.MaxInt64
	if a.Period > 0 && (d > math.MaxInt64/int64(a.Period) || d < math.MinInt64/int64(a.Period)) {
		d = math.MaxInt64 / int64(a.Period) * sign(d) // some 292 years: the end of time.Duration
	}
	return a.Time.Add(time.Duration(d) * a.Period)
}

func sign(d int64) int64 {
	if d < 0 {
		return -1
	}
	return 1
}

// ticksTo returns the ticks, reckoned from a, from its tick to the one in
// progress at t (floor; up: the first that began at or after t, ceiling).
func (a ClockAnchor) ticksTo(t time.Time, up bool) int64 {
	d := t.Sub(a.Time) // saturates at some 292 years
	n := int64(d / a.Period)
	if r := d % a.Period; r != 0 {
		switch {
		case r > 0 && up:
			n++
		case r < 0 && !up:
			n--
		}
	}
	return n
}

// TimeBasis says where the time of a tick came from.
type TimeBasis string

// The bases of a tick's time.
const (
	// TimeClock: reckoned from an anchor of the engine's clock that the
	// daemon recorded at or before the tick (Options.Clock): within
	// driftTolerance and a tick or so, unless the daemon stopped between
	// the anchor and the tick without recording another.
	TimeClock TimeBasis = "clock"
	// TimeEstimated: no anchor at or before the tick; reckoned back by the
	// tick period from the first anchor, or, without any, from the
	// ledger's last write taken as the time of its last tick. It assumes
	// the engine ran without a gap in between: a stop, or ticks it fell
	// behind on, make it wrong by as long.
	TimeEstimated TimeBasis = "estimated"
)

// driftTolerance is how far the ticks, reckoned from the last anchor, may
// drift from the clock before Maintain records another anchor: a second, or
// a tick if longer.
func (l *Ledger) driftTolerance() time.Duration { return max(l.period, time.Second) }

// mark notes that the engine reached tick now and, with a Clock, records a
// clock anchor for it when that is news: the first of this Ledger, or the
// ticks reckoned from the last one having drifted from the clock by more
// than driftTolerance. It returns the anchor it recorded.
func (l *Ledger) mark(ctx context.Context, now uint64) (*ClockAnchor, error) {
	if l.lock == nil {
		return nil, nil // read-only: the rollup says so
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reached = max(l.reached, now)
	if l.clock == nil || now > math.MaxInt64 {
		return nil, nil
	}
	at := l.clock.Now()
	if l.anchorSet {
		last := l.anchor
		if now <= last.Tick || at.Sub(last.TimeOf(now)).Abs() <= l.driftTolerance() {
			return nil, nil
		}
	}
	a := ClockAnchor{Tick: now, Time: time.Unix(0, at.UnixNano()).UTC(), Period: l.period}
	if _, err := l.db.ExecContext(ctx, `INSERT INTO clock (tick, unix_ns, tick_ns) VALUES (?, ?, ?)
		ON CONFLICT (tick) DO UPDATE SET unix_ns = excluded.unix_ns, tick_ns = excluded.tick_ns`,
		int64(now), a.Time.UnixNano(), int64(a.Period)); err != nil {
		return nil, fmt.Errorf("ledger: clock anchor at tick %d: %w", now, classify(err))
	}
	l.anchor, l.anchorSet = a, true
	return &a, nil
}

// scanAnchor reads a row of clock.
func scanAnchor(s interface{ Scan(...any) error }) (ClockAnchor, error) {
	var tick, ns, period int64
	if err := s.Scan(&tick, &ns, &period); err != nil {
		return ClockAnchor{}, err
	}
	return ClockAnchor{Tick: uint64(tick), Time: time.Unix(0, ns).UTC(), Period: time.Duration(period)}, nil
}

const anchorCols = `tick, unix_ns, tick_ns`

// lastWrite is the anchor of a ledger without clock anchors: its last
// tick taken to have fallen when its database or write-ahead log was last
// written, the ticks l.period apart.
func (l *Ledger) lastWrite(ctx context.Context, q querier) (ClockAnchor, error) {
	var last sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(
			(SELECT COALESCE(MAX(MAX(tick, COALESCE(after_tick, 0))), 0) FROM txs),
			(SELECT COALESCE(MAX(tick), 0) FROM ticks),
			(SELECT below - 1 FROM rollup_state WHERE one = 1))`).Scan(&last); err != nil {
		return ClockAnchor{}, err
	}
	var mtime time.Time
	for _, name := range []string{l.path, l.path + "-wal"} {
		if fi, err := os.Stat(name); err == nil && fi.ModTime().After(mtime) {
			mtime = fi.ModTime()
		}
	}
	return ClockAnchor{Tick: uint64(max(last.Int64, 0)), Time: mtime.UTC(), Period: l.period}, nil
}

// timeline tells the times of ticks asked for in increasing order, reading
// the clock anchors once, in tick order, in the read transaction q.
type timeline struct {
	ctx      context.Context
	q        querier
	rows     *sql.Rows
	cur      ClockAnchor // the last anchor at or before the ticks asked for
	haveCur  bool
	next     ClockAnchor // the anchor after cur
	haveNext bool
	fallback ClockAnchor // without any anchor: lastWrite
	anchors  bool        // the ledger has anchors
}

// newTimeline starts a timeline in the read transaction tx.
func (l *Ledger) newTimeline(ctx context.Context, tx *sql.Tx) (*timeline, error) {
	tl := &timeline{ctx: ctx, q: tx}
	rows, err := tx.QueryContext(ctx, `SELECT `+anchorCols+` FROM clock ORDER BY tick`)
	if err != nil {
		return nil, err
	}
	tl.rows = rows
	if err := tl.advance(); err != nil {
		rows.Close()
		return nil, err
	}
	if tl.anchors = tl.haveNext; !tl.anchors {
		if tl.fallback, err = l.lastWrite(ctx, tx); err != nil {
			rows.Close()
			return nil, err
		}
	}
	return tl, nil
}

// advance reads the next anchor into next.
func (tl *timeline) advance() error {
	tl.haveNext = false
	if !tl.rows.Next() {
		return tl.rows.Err()
	}
	a, err := scanAnchor(tl.rows)
	if err != nil {
		return err
	}
	tl.next, tl.haveNext = a, true
	return nil
}

func (tl *timeline) close() { tl.rows.Close() }

// at returns when tick t fell, and on what basis.
func (tl *timeline) at(t uint64) (time.Time, TimeBasis, error) {
	if !tl.anchors {
		return tl.fallback.TimeOf(t), TimeEstimated, nil
	}
	for tl.haveNext && tl.next.Tick <= t {
		tl.cur, tl.haveCur = tl.next, true
		if err := tl.advance(); err != nil {
			return time.Time{}, "", err
		}
	}
	switch {
	case tl.haveCur && tl.cur.Tick <= t:
		return tl.cur.TimeOf(t), TimeClock, nil
	case tl.haveCur:
		// Behind cur (a rollup's first tick after a transaction inside
		// its span): look the anchor up.
		a, err := scanAnchor(tl.q.QueryRowContext(tl.ctx, `SELECT `+anchorCols+` FROM clock WHERE tick <= ? ORDER BY tick DESC LIMIT 1`, int64(t)))
		switch {
		case err == nil:
			return a.TimeOf(t), TimeClock, nil
		case !errors.Is(err, sql.ErrNoRows):
			return time.Time{}, "", err
		}
		first, err := scanAnchor(tl.q.QueryRowContext(tl.ctx, `SELECT `+anchorCols+` FROM clock ORDER BY tick LIMIT 1`))
		if err != nil {
			return time.Time{}, "", err
		}
		return first.TimeOf(t), TimeEstimated, nil
	default:
		return tl.next.TimeOf(t), TimeEstimated, nil // before the first anchor
	}
}

// tickAt returns the tick in progress at time t (up: the first tick that
// began at or after t), reckoned from the clock anchors in the read
// transaction q, and on what basis. It may be negative: before tick 0.
func (l *Ledger) tickAt(ctx context.Context, q querier, t time.Time, up bool) (int64, TimeBasis, error) {
	a, err := scanAnchor(q.QueryRowContext(ctx, `SELECT `+anchorCols+` FROM clock WHERE unix_ns <= ? ORDER BY tick DESC LIMIT 1`, t.UnixNano()))
	basis := TimeClock
	if errors.Is(err, sql.ErrNoRows) {
		// Before every anchor, or none: reckoned back.
		basis = TimeEstimated
		a, err = scanAnchor(q.QueryRowContext(ctx, `SELECT `+anchorCols+` FROM clock ORDER BY tick LIMIT 1`))
		if errors.Is(err, sql.ErrNoRows) {
			a, err = l.lastWrite(ctx, q)
		}
		if err != nil {
			return 0, "", err
		}
		return int64(a.Tick) + a.ticksTo(t, up), basis, nil
	}
	if err != nil {
		return 0, "", err
	}
	n := int64(a.Tick) + a.ticksTo(t, up)
	// A time in a gap (the daemon stopped) lies before the next anchor's
	// tick: the first tick after the gap began after it, the last one
	// before it before.
	next, err := scanAnchor(q.QueryRowContext(ctx, `SELECT `+anchorCols+` FROM clock WHERE tick > ? ORDER BY tick LIMIT 1`, int64(a.Tick)))
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, "", err
	case up && n > int64(next.Tick):
		n = int64(next.Tick)
	case !up && n >= int64(next.Tick):
		n = int64(next.Tick) - 1
	}
	return n, basis, nil
}

// Anchors returns the clock anchors the ledger holds, by tick.
func (l *Ledger) Anchors(ctx context.Context) ([]ClockAnchor, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT `+anchorCols+` FROM clock ORDER BY tick`)
	if err != nil {
		return nil, fmt.Errorf("ledger: clock anchors: %w", classify(err))
	}
	defer rows.Close()
	var as []ClockAnchor
	for rows.Next() {
		a, err := scanAnchor(rows)
		if err != nil {
			return nil, fmt.Errorf("ledger: clock anchors: %w", err)
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: clock anchors: %w", err)
	}
	return as, nil
}
