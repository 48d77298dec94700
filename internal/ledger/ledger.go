// Package ledger is Maxwell's durable double-entry ledger: the wallets of the
// cells and every movement of money between them.
//
// # Money
//
// Money is counted in units.Credits, integer credits: one unit pays for one
// microjoule of host energy. There are no floats anywhere in this package and
// every sum is checked for overflow.
//
// # Accounts
//
// Two system accounts frame the economy. Mint is the source of all money:
// endowments, taps, income for verified useful work and operator funding are
// paid out of it, so its balance is −minted. Burn is the sink: auction payments, energy charges, taxes, rent and
// the write-off of a closed wallet go into it, and refunds come back out of it.
// Every cell has a wallet: an account with an endowment, an optional tap (an
// income of so many credits per second up to a balance ceiling), and a
// state, open or closed. A wallet may overdraw; the engine, not the ledger,
// decides what insolvency means.
//
// # Transactions
//
// Money moves only in transactions (Tx). A transaction has an idempotency key
// (see Key), a kind, the tick it belongs to and entries that sum to exactly
// zero. It is immutable once written. Each transaction, or each batch given to
// Apply, is one SQLite transaction that writes the entries and the account
// balances together, so a balance is always both stored and derivable from
// the entries (and the per-tick rows and rollups, below). Applying a key again with identical content does nothing and
// reports Duplicate; with different content it fails with ErrKeyConflict. An
// engine that crashes can therefore replay its last tick safely.
//
// The invariant, checked by Verify, is
//
//	minted = Σ wallet balances + burned
//
// exactly, to the credit.
//
// # Tap terms
//
// A wallet opens with its tap terms (WalletSpec.TapRate, TapCap), and a
// tap is refused unless the wallet has a tap and the tap leaves its balance
// at or below the cap. SetTerms changes the terms of an open wallet in a
// transaction of its own kind, KindTerms, which moves no money: every tap
// applied after it, in Apply's order, is held to the new terms; those
// applied before it stay as they were. Each change is kept, with the terms
// it replaced, so that Verify can tell what terms a wallet had at any
// point of the ledger.
//
// # Storage
//
// The ledger is one SQLite database (modernc.org/sqlite, pure Go) in WAL mode
// with synchronous=FULL: a transaction that Apply has acknowledged is in the
// fsynced write-ahead log, so it survives kill -9 of the engine and power loss
// of the host. One process at a time may write a ledger: Open takes an flock
// on "<path>.lock" for the ledger's life. Readers (Options.ReadOnly) take no
// lock and may read while the engine writes.
//
// The database file, its write-ahead log, its shared-memory index and the
// lock file are created mode 0640 (less under a stricter umask); an existing
// one that others may read or write loses those bits when a writer opens it.
//
// # Per-tick postings and rollups
//
// The bulk of a ledger is the engine's per-tick postings: a payment, an
// energy charge, a tax, rent, a tap or income for each cell on every tick.
// A transaction of one of those kinds whose key is its conventional
// Key(tick, wallet, kind), with no memo and the two entries Charge, Tap or
// Income would make, is stored compactly, one row per wallet and tick holding every
// kind, instead of as a transaction with its entries (some 26 bytes for a
// wallet's tick instead of some 190 for each of its postings; Result.ID and
// Posted.ID are then 0). Every other transaction (opens,
// endowments, funds, refunds, closes, changes of terms, any transaction
// with a memo, other entries or another key) is stored whole and kept for
// ever.
//
// Per-tick postings are kept for a window (Options.Keep, one hour by
// default). Rollup folds older ones into per-wallet totals per bucket of
// ticks (Options.Bucket, one minute by default): per kind, the number of
// postings and their sum, and the wallet's net change. A rollup is done in
// steps, each one SQLite transaction that writes the totals, deletes the
// postings they replace and advances the rollup watermark together, so a
// crash loses and doubles nothing. A per-tick posting whose tick lies below
// the watermark can no longer be recognised as a duplicate, so it is refused
// with ErrRolledUp; the window always covers the tick a restarted engine
// replays. See docs/LEDGER.md for what Verify can still prove once the
// detail is gone.
//
// # Full disk
//
// A full disk surfaces as ErrFull and a read-only file system as ErrReadOnly;
// the failed transaction leaves no trace and the Ledger stays usable, so the
// same call succeeds once space returns. Checkpoint (or Maintain) keeps the
// write-ahead log small, and truncates it when the file system is short of
// space, so that the log does not hold the disk's space once it is back; a
// transaction that fails with ErrFull first has the log truncated and is
// tried once more.
package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Names of the system accounts. No wallet may take them.
const (
	Mint = "mint"
	Burn = "burn"
)

// Errors. They are wrapped with context; test with errors.Is.
var (
	// ErrKeyConflict: the idempotency key was already used for a
	// transaction with different content.
	ErrKeyConflict = errors.New("idempotency key already used with different content")
	// ErrInvalid: the transaction is malformed (empty key, entries that do
	// not sum to zero, unknown kind, ...).
	ErrInvalid = errors.New("invalid transaction")
	// ErrNoAccount: an entry names an account that does not exist.
	ErrNoAccount = errors.New("no such account")
	// ErrExists: a wallet of that name already exists.
	ErrExists = errors.New("wallet already exists")
	// ErrClosed: the wallet is closed and takes no more entries.
	ErrClosed = errors.New("wallet is closed")
	// ErrOverflow: a balance or sum would leave the int64 range.
	ErrOverflow = errors.New("credit overflow")
	// ErrFull: the file system holding the ledger is full (SQLITE_FULL,
	// ENOSPC). Nothing of the failed transaction was written.
	ErrFull = errors.New("disk full")
	// ErrReadOnly: the ledger cannot be written (read-only open, read-only
	// file system, SQLITE_READONLY).
	ErrReadOnly = errors.New("read-only")
	// ErrLocked: another process holds the ledger open for writing.
	ErrLocked = errors.New("locked by another process")
	// ErrSchema: the database is not a ledger this binary understands.
	ErrSchema = errors.New("unknown schema")
	// ErrRolledUp: the per-tick posting's tick lies below the rollup
	// watermark: its tick was rolled up, so the posting can be neither
	// recognised as a duplicate nor added.
	ErrRolledUp = errors.New("tick already rolled up")
)

// Defaults of Options.
const (
	DefaultBusyTimeout = 5 * time.Second
	DefaultTick        = 100 * time.Millisecond
	DefaultKeep        = time.Hour
	DefaultBucket      = time.Minute
	DefaultLowSpace    = 64 << 20
)

// fileMode is the mode of the files a writer creates.
const fileMode = 0o640

// walSizeLimit is PRAGMA journal_size_limit: a write-ahead log that a
// checkpoint has emptied is truncated to this size when it is next reset.
const walSizeLimit = 1 << 20

// walAutocheckpoint is PRAGMA wal_autocheckpoint, in pages: the backstop
// for a writer that never calls Checkpoint, a quarter of SQLite's default
// of 1000 pages (4 MiB), so that the log stays within walSizeLimit.
const walAutocheckpoint = 256

// rollupStepRows bounds the rows of per-tick postings one rollup step
// folds, so that Apply waits for at most one short step.
const rollupStepRows = 4096

// Options tunes Open. The zero value opens for writing.
type Options struct {
	// ReadOnly opens the database for reading only (mode=ro), without the
	// writer's lock, so that it can be inspected while an engine runs. Every
	// write then fails with ErrReadOnly.
	ReadOnly bool
	// BusyTimeout bounds how long a statement waits for another
	// connection's lock; 0 means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Logger receives recoveries and errors; nil discards them.
	Logger *slog.Logger

	// Tick is the engine's tick period, which turns Keep and Bucket into
	// numbers of ticks; 0 means DefaultTick. A writer with a Clock
	// records it with each clock anchor; a reader uses it to estimate the
	// times of ticks that no anchor covers.
	Tick time.Duration
	// Clock, for a writer, is the engine's clock: Maintain(ctx, now)
	// records that tick now fell at Clock.Now() when that is news (the
	// first call, or the ticks drifted from the clock), so that ticks can
	// be told as times. nil records no times.
	Clock Clock
	// Keep is how long per-tick postings are kept before Rollup folds
	// them; 0 means DefaultKeep, a negative value keeps them for ever.
	// It is at least one Bucket.
	Keep time.Duration
	// Bucket is the span of ticks one rollup row totals; 0 means
	// DefaultBucket.
	Bucket time.Duration
	// LowSpace is the free space, in bytes, below which the file system
	// counts as short and Checkpoint truncates the write-ahead log; 0
	// means DefaultLowSpace.
	LowSpace uint64

	// synchronous overrides PRAGMA synchronous and walAutocheckpoint sets
	// PRAGMA wal_autocheckpoint, in pages (tests and benchmarks only).
	synchronous       string
	walAutocheckpoint int

	// stepRows overrides rollupStepRows, which also bounds the rows a step
	// of a migration moves (tests).
	stepRows int

	// immutable: the ledger is on a read-only file system (set by Open).
	immutable bool
}

// retention is what Options say about rollups, in ticks.
type retention struct {
	keep     uint64 // ticks of per-tick postings kept; 0: kept for ever
	bucket   uint64 // ticks per rollup bucket
	stepRows int
	lowSpace uint64
}

// retention checks and converts o's rollup settings.
func (o Options) retention() (retention, error) {
	tick, keep, bucket := o.Tick, o.Keep, o.Bucket
	if tick == 0 {
		tick = DefaultTick
	}
	if keep == 0 {
		keep = DefaultKeep
	}
	if bucket == 0 {
		bucket = DefaultBucket
	}
	r := retention{stepRows: o.stepRows, lowSpace: o.LowSpace}
	if r.stepRows <= 0 {
		r.stepRows = rollupStepRows
	}
	if r.lowSpace == 0 {
		r.lowSpace = DefaultLowSpace
	}
	switch {
	case tick < 0:
		return r, fmt.Errorf("tick period %v: want a positive duration", tick)
	case bucket < tick:
		return r, fmt.Errorf("rollup bucket %v is shorter than a tick (%v)", bucket, tick)
	case keep > 0 && keep < bucket:
		return r, fmt.Errorf("keeping %v of per-tick postings is less than a rollup bucket (%v)", keep, bucket)
	}
	r.bucket = uint64(bucket / tick)
	if keep > 0 {
		r.keep = uint64((keep + tick - 1) / tick)
	}
	return r, nil
}

// Ledger is an open ledger database. Its methods are safe for concurrent use;
// writes are serialised.
type Ledger struct {
	path string
	db   *sql.DB
	lock *os.File // nil when read-only
	log  *slog.Logger

	ret retention

	busyTimeout time.Duration // PRAGMA busy_timeout of every connection

	mu    sync.Mutex           // serialises writers; guards what follows
	stmts map[string]*sql.Stmt // prepared statements of Apply, by query
	// accounts are the open accounts as committed, read by a batch and
	// updated after its commit: only this Ledger writes the database.
	accounts map[string]account
	// What loadState reads once, and writers keep up to date.
	haveState bool
	below     uint64 // the rollup watermark
	maxRow    uint64 // the highest tick of a committed per-tick row (or higher)
	shadows   bool   // a transaction stored whole may hold a per-tick key
	// reached is the last tick the ledger knows the engine reached: of a
	// per-tick posting, below the watermark, of a Maintain, or a whole
	// transaction's after_tick. A transaction stored whole records it.
	reached uint64

	clock  Clock         // Options.Clock; nil: no anchors
	period time.Duration // the tick period, Options.Tick or DefaultTick
	// anchor is the clock anchor this Ledger last recorded; guarded by mu.
	anchor    ClockAnchor
	anchorSet bool
}

// Open opens the ledger at path, creating it (and its directory) if need be,
// and migrates its schema to the current version. Unless opts.ReadOnly, it
// takes the writer's lock and fails with ErrLocked when another process holds
// it.
func Open(ctx context.Context, path string, opts Options) (*Ledger, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	l := &Ledger{path: abs, log: opts.Logger, stmts: map[string]*sql.Stmt{}, accounts: map[string]account{},
		clock: opts.Clock, period: cmp.Or(opts.Tick, DefaultTick)}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.ret, err = opts.retention(); err != nil {
		return nil, fmt.Errorf("ledger: %w: %w", ErrInvalid, err)
	}
	if l.busyTimeout = opts.BusyTimeout; l.busyTimeout <= 0 {
		l.busyTimeout = DefaultBusyTimeout
	}
	if opts.ReadOnly {
		if _, err := os.Stat(abs); err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return nil, fmt.Errorf("ledger: %w: cannot reach %s: %w", ErrAccess, abs, err)
			}
			return nil, fmt.Errorf("ledger: open %s: %w", abs, err)
		}
		if err := canRead(abs); err != nil {
			return nil, err
		}
		if opts.immutable, err = readOnlyFS(abs); err != nil {
			return nil, err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return nil, fmt.Errorf("ledger: create directory: %w", classify(err))
		}
		if l.lock, err = lockFile(abs + ".lock"); err != nil {
			return nil, err
		}
		if err := l.private(); err != nil {
			l.unlock()
			return nil, err
		}
	}
	if l.db, err = sql.Open("sqlite", dsn(abs, opts, l.busyTimeout)); err != nil {
		l.unlock()
		return nil, fmt.Errorf("ledger: open %s: %w", abs, err)
	}
	if opts.ReadOnly {
		if err = l.checkSchema(ctx); err != nil {
			if err = readOnlyShm(abs, err); errors.Is(err, ErrAccess) {
				l.db.Close()
				return nil, err
			}
		}
	} else {
		err = l.migrate(ctx)
	}
	if err != nil {
		l.db.Close()
		l.unlock()
		return nil, fmt.Errorf("ledger: open %s: %w", abs, err)
	}
	return l, nil
}

// dsn builds the modernc.org/sqlite data source name for path.
func dsn(path string, opts Options, bt time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", bt.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if opts.ReadOnly {
		q.Set("mode", "ro")
		if opts.immutable {
			q.Set("immutable", "1")
		}
		q.Add("_pragma", "query_only(1)")
	} else {
		sync := opts.synchronous
		if sync == "" {
			sync = "FULL"
		}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+sync+")")
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
		ac := opts.walAutocheckpoint
		if ac <= 0 {
			ac = walAutocheckpoint
		}
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", ac))
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// readOnlyFS reports whether the ledger at path lies on a read-only file
// system. A read-only SQLite connection to a WAL database needs to create
// the -shm file, which it cannot do there; since nothing can change the file
// either, it may then be opened immutable, provided no write-ahead log holds
// transactions not yet copied into it.
func readOnlyFS(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		return false, fmt.Errorf("ledger: statfs %s: %w", filepath.Dir(path), err)
	}
	if st.Flags&unix.ST_RDONLY == 0 {
		return false, nil
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		return false, fmt.Errorf("ledger: %s: %w file system, and its write-ahead log %s-wal holds transactions that cannot be read without writing",
			path, ErrReadOnly, path)
	}
	return true, nil
}

// lockFile takes an exclusive, non-blocking flock on name for the life of
// the returned file. The kernel releases it when the process dies, however
// it dies.
func lockFile(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("ledger: lock %s: %w", name, classify(err))
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("ledger: %w: %s", ErrLocked, name)
		}
		return nil, fmt.Errorf("ledger: lock %s: %w", name, err)
	}
	return f, nil
}

// private creates the database file mode 0640 if it does not exist (SQLite
// gives its write-ahead log and shared-memory file the same mode), and takes
// from the ledger's existing files the permissions of others.
func (l *Ledger) private() error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("ledger: create %s: %w", l.path, classify(err))
		}
	case !errors.Is(err, os.ErrExist):
		return fmt.Errorf("ledger: create %s: %w", l.path, classify(err))
	}
	for _, name := range []string{l.path, l.path + "-wal", l.path + "-shm", l.path + ".lock"} {
		fi, err := os.Stat(name)
		if err != nil || fi.Mode().Perm()&0o007 == 0 {
			continue
		}
		mode := fi.Mode().Perm() &^ 0o007
		if err := os.Chmod(name, mode); err != nil {
			l.log.Warn("ledger file is open to other users", "file", name, "mode", fi.Mode().Perm().String(), "err", err)
			continue
		}
		l.log.Info("ledger file closed to other users", "file", name, "was", fi.Mode().Perm().String(), "now", mode.String())
	}
	return nil
}

func (l *Ledger) unlock() {
	if l.lock != nil {
		l.lock.Close() // closing the last descriptor drops the flock
		l.lock = nil
	}
}

// Path returns the absolute path of the database file.
func (l *Ledger) Path() string { return l.path }

// Close closes the database and releases the writer's lock.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, st := range l.stmts {
		st.Close()
	}
	err := l.db.Close()
	l.unlock()
	if err != nil {
		return fmt.Errorf("ledger: close: %w", err)
	}
	return nil
}

// classify maps storage errors to ErrFull and ErrReadOnly, keeping the
// original error in the chain.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL:
			return fmt.Errorf("%w: %w", ErrFull, err)
		case sqlite3.SQLITE_READONLY:
			return fmt.Errorf("%w: %w", ErrReadOnly, err)
		}
		if se.Code() == sqlite3.SQLITE_IOERR_SHMSIZE {
			// unixShmMap could not allocate shared-memory pages.
			return fmt.Errorf("%w: %w", ErrFull, err)
		}
		return err
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", ErrFull, err)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}
