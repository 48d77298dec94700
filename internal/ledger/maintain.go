package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// RollupResult says what Rollup did.
type RollupResult struct {
	// Steps is the number of SQLite transactions it committed.
	Steps int `json:"steps"`
	// Rows is the number of per-tick rows (one per wallet and tick) it
	// folded, Postings the number of postings they held.
	Rows     int64 `json:"rows"`
	Postings int64 `json:"postings"`
	// Below is the rollup watermark afterwards: the postings of every tick
	// below it are rolled up.
	Below uint64 `json:"below"`
	// Due: more postings have left the window than this call folded (it
	// was held to one step, or ctx ended); the next call goes on.
	Due bool `json:"due"`
}

// Rollup folds the per-tick postings that have left the window, the ticks
// up to now − Options.Keep (in whole buckets of Options.Bucket), into
// per-wallet totals per bucket, and returns what it did. now is the
// engine's current tick. Per-tick postings of the last Keep of ticks
// before now are never touched, so a replay of any of them is still
// recognised as a duplicate.
//
// The work is done in steps of at most a few thousand rows, each one
// SQLite transaction that writes the totals, deletes the postings they
// replace and moves the watermark; Apply waits for one step at most, so
// Rollup may run in a goroutine of its own. A crash between steps or
// inside one loses nothing and counts nothing twice. When ctx ends, Rollup
// returns after the step in progress with ctx's error; the next call goes
// on where it stopped.
func (l *Ledger) Rollup(ctx context.Context, now uint64) (RollupResult, error) {
	return l.rollup(ctx, now, 0)
}

// rollup is Rollup done in at most maxSteps steps (0: as many as it takes).
func (l *Ledger) rollup(ctx context.Context, now uint64, maxSteps int) (RollupResult, error) {
	var res RollupResult
	if l.lock == nil {
		return res, fmt.Errorf("ledger: rollup: %w: opened read-only", ErrReadOnly)
	}
	var target uint64
	if k := l.ret.keep; k > 0 && now+1 >= k {
		target = (now + 1 - k) / l.ret.bucket * l.ret.bucket
	}
	for {
		if err := ctx.Err(); err != nil {
			res.Due = true
			return res, fmt.Errorf("ledger: rollup: %w", err)
		}
		if maxSteps > 0 && res.Steps >= maxSteps {
			res.Due = true
			return res, nil
		}
		s, done, err := l.rollupStep(ctx, target)
		res.Below = s.Below
		if err != nil {
			return res, fmt.Errorf("ledger: rollup: %w", classify(err))
		}
		if s.Steps > 0 {
			res.Steps++
			res.Rows += s.Rows
			res.Postings += s.Postings
		}
		if done {
			return res, nil
		}
	}
}

// rollupStep folds at most stepRows per-tick rows of ticks below target,
// within one bucket, in one SQLite transaction. It reports done when
// nothing below target is left to fold.
func (l *Ledger) rollupStep(ctx context.Context, target uint64) (s RollupResult, done bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.haveState && l.below >= target {
		return RollupResult{Below: l.below}, true, nil
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return s, false, err
	}
	defer tx.Rollback()
	if err := l.loadState(ctx, tx); err != nil {
		return s, false, err
	}
	var below, bucket int64
	if err := tx.QueryRowContext(ctx, `SELECT below, bucket FROM rollup_state WHERE one = 1`).Scan(&below, &bucket); err != nil {
		return s, false, fmt.Errorf("read watermark: %w", err)
	}
	s.Below = uint64(below)
	if s.Below >= target {
		return s, true, nil
	}
	var first sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MIN(tick) FROM ticks WHERE tick >= ?`, below).Scan(&first); err != nil {
		return s, false, err
	}
	if !first.Valid || uint64(first.Int64) >= target {
		// Nothing to fold below target: the watermark moves up to it.
		if _, err := tx.ExecContext(ctx, `UPDATE rollup_state SET below = ? WHERE one = 1`, int64(target)); err != nil {
			return s, false, err
		}
		if err := tx.Commit(); err != nil {
			return s, false, err
		}
		l.below = target
		if target > 0 {
			l.reached = max(l.reached, target-1)
		}
		return RollupResult{Below: target}, true, nil
	}
	lo := uint64(first.Int64)
	// The bucket of lo, or the bucket the watermark is in if later (the
	// bucket size may have changed since): a row never spans another.
	start := max(lo/l.ret.bucket*l.ret.bucket, uint64(bucket))
	hi := min(lo/l.ret.bucket*l.ret.bucket+l.ret.bucket, target)
	var nth sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT tick FROM ticks WHERE tick >= ? ORDER BY tick LIMIT 1 OFFSET ?`, int64(lo), l.ret.stepRows).Scan(&nth)
	switch {
	case err == nil:
		if n := uint64(nth.Int64); n < hi {
			hi = max(n, lo+1) // whole ticks only
		}
	case !errors.Is(err, sql.ErrNoRows):
		return s, false, err
	}
	if err := tx.QueryRowContext(ctx, rollupCountQuery, int64(lo), int64(hi)).Scan(&s.Rows, &s.Postings); err != nil {
		return s, false, err
	}
	if _, err := tx.ExecContext(ctx, rollupQuery, int64(start), int64(lo), int64(hi)); err != nil {
		return s, false, fmt.Errorf("write rollups of ticks %d to %d: %w", lo, hi-1, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM ticks WHERE tick >= ? AND tick < ?`, int64(lo), int64(hi)); err != nil {
		return s, false, fmt.Errorf("delete per-tick postings of ticks %d to %d: %w", lo, hi-1, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE rollup_state SET below = ?, bucket = ? WHERE one = 1`, int64(hi), int64(start)); err != nil {
		return s, false, err
	}
	if err := tx.Commit(); err != nil {
		return s, false, err
	}
	l.below = hi
	l.reached = max(l.reached, hi-1)
	s.Steps, s.Below = 1, hi
	return s, hi >= target, nil
}

// rollupCountQuery counts the rows and postings of the ticks from ? to
// below ?; rollupQuery folds them into the bucket ? (start, lo, hi):
// per wallet and kind the number of postings and their sum, and the
// wallet's net change, added to what the bucket's row already holds.
var (
	rollupCountQuery = `SELECT COUNT(*), ` + columnsSQL("COUNT(%s)", " + ", nil) + ` FROM ticks WHERE tick >= ? AND tick < ?`
	rollupQuery      = `INSERT INTO rollups (account, bucket, first_tick, last_tick, ` + columnsSQL("n_%[1]s, %[1]s", ", ", nil) + `, net)
		SELECT account, ?, MIN(tick), MAX(tick), ` + columnsSQL("COUNT(%[1]s), COALESCE(SUM(%[1]s), 0)", ", ", nil) + `,
			SUM(` + netSQL("COALESCE(%s, 0)") + `)
		FROM ticks WHERE tick >= ? AND tick < ? GROUP BY account
		ON CONFLICT (bucket, account) DO UPDATE SET
			first_tick = MIN(first_tick, excluded.first_tick), last_tick = MAX(last_tick, excluded.last_tick),
			` + columnsSQL("n_%[1]s = n_%[1]s + excluded.n_%[1]s, %[1]s = %[1]s + excluded.%[1]s", ", ", nil) + `,
			net = net + excluded.net`
)

// CheckpointMode is how Checkpoint copies the write-ahead log into the
// database.
type CheckpointMode int

// The checkpoint modes.
const (
	// CheckpointPassive copies what it can without waiting for readers;
	// the log's file keeps its size, and SQLite writes it again from the
	// start once it is all copied.
	CheckpointPassive CheckpointMode = iota + 1
	// CheckpointTruncate copies all of it, waiting briefly for readers,
	// and truncates the log's file to zero bytes.
	CheckpointTruncate
)

// String returns the mode as SQLite names it.
func (m CheckpointMode) String() string {
	switch m {
	case CheckpointPassive:
		return "PASSIVE"
	case CheckpointTruncate:
		return "TRUNCATE"
	}
	return fmt.Sprintf("CheckpointMode(%d)", int(m))
}

// truncateBusyTimeout bounds how long a truncating checkpoint waits for
// readers, so that the caller's tick is not held up by a `ledger show`.
const truncateBusyTimeout = 100 // ms

// CheckpointResult says what Checkpoint did.
type CheckpointResult struct {
	Mode CheckpointMode `json:"mode"`
	// Busy: a reader kept the checkpoint from copying the whole log.
	Busy bool `json:"busy"`
	// Frames is the number of frames (page images) in the log, Copied the
	// number copied into the database, as SQLite reports them (both 0
	// after a truncation).
	Frames int `json:"frames"`
	Copied int `json:"copied"`
	// WALBefore and WALAfter are the log's size in bytes.
	WALBefore int64 `json:"wal_before"`
	WALAfter  int64 `json:"wal_after"`
	// Free is the space left to unprivileged users on the ledger's file
	// system before the checkpoint, in bytes.
	Free uint64 `json:"free"`
}

// Checkpoint copies the write-ahead log into the database: passively, or,
// when the file system has less than Options.LowSpace free, truncating the
// log to nothing. SQLite checkpoints on its own only once the log reaches
// 1000 pages (4 MiB), more than a small file system has room for; call
// Checkpoint about once a second of ticks.
func (l *Ledger) Checkpoint(ctx context.Context) (CheckpointResult, error) {
	if l.lock == nil {
		return CheckpointResult{}, fmt.Errorf("ledger: checkpoint: %w: opened read-only", ErrReadOnly)
	}
	free, err := freeSpace(filepath.Dir(l.path))
	if err != nil {
		return CheckpointResult{}, err
	}
	mode := CheckpointPassive
	if free < l.ret.lowSpace {
		mode = CheckpointTruncate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.checkpoint(ctx, mode)
	c.Free = free
	if err != nil {
		return c, fmt.Errorf("ledger: checkpoint (%s, %d bytes free): %w", mode, free, err)
	}
	return c, nil
}

// checkpoint runs a checkpoint in mode; l.mu is held.
func (l *Ledger) checkpoint(ctx context.Context, mode CheckpointMode) (CheckpointResult, error) {
	c := CheckpointResult{Mode: mode, WALBefore: fileSize(l.path + "-wal")}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return c, classify(err)
	}
	defer conn.Close()
	if mode == CheckpointTruncate {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", truncateBusyTimeout)); err != nil {
			return c, classify(err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", l.busyTimeout.Milliseconds()))
	}
	var busy int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode.String()+")").Scan(&busy, &c.Frames, &c.Copied); err != nil {
		return c, classify(err)
	}
	c.Busy = busy != 0
	c.WALAfter = fileSize(l.path + "-wal")
	return c, nil
}

// Maintenance is what Maintain did.
type Maintenance struct {
	Rollup     RollupResult     `json:"rollup"`
	Checkpoint CheckpointResult `json:"checkpoint"`
	// Anchor is the clock anchor it recorded, if it recorded one.
	Anchor *ClockAnchor `json:"anchor,omitempty"`
}

// Maintain records that the engine reached tick now (with a clock anchor
// when Options.Clock is set and the anchor is news: see Anchor), does one
// step of what Rollup would do (at most a few thousand rows: a few
// milliseconds) and checkpoints the write-ahead log (Checkpoint); now is
// the engine's current tick. An engine calls it on its
// own clock after posting a tick, about once a second of ticks: most calls
// only checkpoint; the rollup of a bucket, due once a bucket, is spread
// over the calls that follow (Maintenance.Rollup.Due says more is due).
// One step a second folds 4096 rows a second, what 400 cells post at
// 10 Hz; with more cells, call it more often or run Rollup in a goroutine
// of its own. It tries both even when one fails (a rollup on a full disk
// fails; the checkpoint may give space back).
func (l *Ledger) Maintain(ctx context.Context, now uint64) (Maintenance, error) {
	var m Maintenance
	var aerr, rerr, cerr error
	m.Anchor, aerr = l.mark(ctx, now)
	m.Rollup, rerr = l.rollup(ctx, now, 1)
	m.Checkpoint, cerr = l.Checkpoint(ctx)
	return m, errors.Join(aerr, rerr, cerr)
}

// freeSpace returns the bytes available to unprivileged users on the file
// system holding dir.
func freeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("ledger: statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// fileSize returns the size of the file name, 0 if it does not exist.
func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}
