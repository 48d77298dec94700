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
// endowments, taps and operator funding are paid out of it, so its balance is
// −minted. Burn is the sink: auction payments, energy charges, taxes, rent and
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
// the entries. Applying a key again with identical content does nothing and
// reports Duplicate; with different content it fails with ErrKeyConflict. An
// engine that crashes can therefore replay its last tick safely.
//
// The invariant, checked by Verify, is
//
//	minted = Σ wallet balances + burned
//
// exactly, to the credit.
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
// A full disk surfaces as ErrFull and a read-only file system as ErrReadOnly;
// the failed transaction leaves no trace and the Ledger stays usable, so the
// same call succeeds once space returns.
package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
)

// Options tunes Open. The zero value opens for writing.
type Options struct {
	// ReadOnly opens the database for reading only (mode=ro), without the
	// writer's lock, so that it can be inspected while an engine runs. Every
	// write then fails with ErrReadOnly.
	ReadOnly bool
	// BusyTimeout bounds how long a statement waits for another
	// connection's lock; 0 means 5 s.
	BusyTimeout time.Duration
	// Logger receives recoveries and errors; nil discards them.
	Logger *slog.Logger

	// synchronous overrides PRAGMA synchronous and walAutocheckpoint sets
	// PRAGMA wal_autocheckpoint, in pages (tests and benchmarks only).
	synchronous       string
	walAutocheckpoint int

	// immutable: the ledger is on a read-only file system (set by Open).
	immutable bool
}

// Ledger is an open ledger database. Its methods are safe for concurrent use;
// writes are serialised.
type Ledger struct {
	path string
	db   *sql.DB
	lock *os.File // nil when read-only
	log  *slog.Logger

	mu    sync.Mutex           // serialises writers; guards stmts
	stmts map[string]*sql.Stmt // prepared statements of Apply, by query
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
	l := &Ledger{path: abs, log: opts.Logger, stmts: map[string]*sql.Stmt{}}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if opts.ReadOnly {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("ledger: open %s: %w", abs, err)
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
	}
	if l.db, err = sql.Open("sqlite", dsn(abs, opts)); err != nil {
		l.unlock()
		return nil, fmt.Errorf("ledger: open %s: %w", abs, err)
	}
	if opts.ReadOnly {
		err = l.checkSchema(ctx)
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
func dsn(path string, opts Options) string {
	bt := opts.BusyTimeout
	if bt <= 0 {
		bt = 5 * time.Second
	}
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
		if opts.walAutocheckpoint > 0 {
			q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", opts.walAutocheckpoint))
		}
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
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
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
