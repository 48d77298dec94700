package ledger

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Kind says what a transaction is for.
type Kind string

// The kinds of transaction.
const (
	KindMint    Kind = "mint"    // money issued by the engine (mint → wallet)
	KindEndow   Kind = "endow"   // a wallet's endowment (mint → wallet); with Tx.Open, the wallet is created
	KindTap     Kind = "tap"     // tap income (mint → wallet), never above the wallet's tap cap
	KindIncome  Kind = "income"  // pay for useful work the host verified, e.g. primes it recounted (mint → wallet), with no cap
	KindFund    Kind = "fund"    // an operator's top-up (mint → wallet)
	KindPayment Kind = "payment" // an auction payment (wallet → burn)
	KindEnergy  Kind = "energy"  // an energy charge (wallet → burn)
	KindTax     Kind = "tax"     // a tax, e.g. on freeing memory (wallet → burn)
	KindRent    Kind = "rent"    // rent (wallet → burn)
	KindRefund  Kind = "refund"  // a refund (burn → wallet)
	KindClose   Kind = "close"   // a wallet's closing write-off (wallet ↔ burn), computed by the ledger
	KindTerms   Kind = "terms"   // a change of a wallet's tap terms (Tx.Terms); moves no money, has no entries
)

var kinds = []Kind{KindMint, KindEndow, KindTap, KindIncome, KindFund, KindPayment, KindEnergy, KindTax, KindRent, KindRefund, KindClose, KindTerms}

// issues reports whether transactions of kind k may draw on the mint.
func (k Kind) issues() bool {
	return k == KindMint || k == KindEndow || k == KindTap || k == KindIncome || k == KindFund
}

// charges reports whether k is a charge, which Charge moves from a wallet
// to burn.
func (k Kind) charges() bool {
	return k == KindPayment || k == KindEnergy || k == KindTax || k == KindRent
}

// Key returns the conventional idempotency key for what a cell's transaction
// of one tick is for, e.g. Key(1234, "miner", "payment") =
// "tick:1234/cell:miner/payment".
func Key(tick uint64, cell, what string) string {
	return "tick:" + strconv.FormatUint(tick, 10) + "/cell:" + cell + "/" + what
}

// Entry is one leg of a transaction: Amount credits added to Account's
// balance (negative: taken from it).
type Entry struct {
	Account string        `json:"account"`
	Amount  units.Credits `json:"amount"`
}

// WalletSpec describes a wallet to open.
type WalletSpec struct {
	Name string `json:"name"`
	// Endowment is paid from the mint when the wallet opens, in credits.
	Endowment units.Credits `json:"endowment"`
	// TapRate is the tap's income in credits per second; 0: no tap.
	TapRate units.Credits `json:"tap_rate"`
	// TapCap is the balance, in credits, above which the tap pays nothing.
	TapCap units.Credits `json:"tap_cap"`
}

// Terms are a wallet's tap terms: an income of TapRate credits per second
// (0: no tap) while its balance is below TapCap credits. The engine computes
// a tap's amount; the ledger checks that only a wallet with a tap is paid
// one and that no tap lifts the balance above the cap.
type Terms struct {
	TapRate units.Credits `json:"tap_rate"`
	TapCap  units.Credits `json:"tap_cap"`
}

// Tx is a transaction to apply. Two transactions with the same Key must have
// the same content in every other field.
type Tx struct {
	Key  string `json:"key"`
	Kind Kind   `json:"kind"`
	Tick uint64 `json:"tick"`
	Memo string `json:"memo,omitempty"`
	// Entries are the postings; they must sum to exactly zero, and only
	// KindMint, KindEndow, KindTap, KindIncome and KindFund may draw on
	// Mint; a KindIncome's are exactly {Mint, −a} and {Wallet, +a}, a > 0.
	// Leave Entries empty for KindClose and Open: the ledger computes
	// their single movement from the wallet's state when it applies them;
	// and for KindTerms, which moves no money.
	Entries []Entry `json:"entries,omitempty"`
	// Wallet names the wallet the transaction is about: the one a KindTap
	// or KindIncome pays, a KindClose closes or a KindTerms changes, and
	// the one that Result.Amount reports on.
	Wallet string `json:"wallet,omitempty"`
	// Open, with KindEndow, creates the wallet and pays its endowment.
	Open *WalletSpec `json:"open,omitempty"`
	// Terms, with KindTerms (and no entries), are Wallet's new tap terms:
	// taps applied after this transaction are held to them.
	Terms *Terms `json:"terms,omitempty"`
}

// Result is what applying one Tx did.
type Result struct {
	Key string `json:"key"`
	// ID is the transaction's sequence number in the ledger.
	ID int64 `json:"id"`
	// Duplicate: the key had already been applied with the same content,
	// and this call changed nothing; Entries and Amount are those recorded
	// then.
	Duplicate bool `json:"duplicate"`
	// Entries are the postings as written.
	Entries []Entry `json:"entries"`
	// Amount is the change in Tx.Wallet's balance, except for KindClose,
	// where it is the wallet's final balance, written off to burn (and 0
	// for KindTerms, which moves no money).
	Amount units.Credits `json:"amount"`
}

// validate checks what can be checked of t without the database and fills
// in Wallet from Open.
func (t *Tx) validate() error {
	if t.Key == "" || len(t.Key) > 256 || !utf8.ValidString(t.Key) {
		return errors.New("key must be 1 to 256 bytes of UTF-8")
	}
	if !slices.Contains(kinds, t.Kind) {
		return fmt.Errorf("unknown kind %q", t.Kind)
	}
	if t.Tick > math.MaxInt64 {
		return fmt.Errorf("tick %d out of range", t.Tick)
	}
	if len(t.Memo) > 1024 || !utf8.ValidString(t.Memo) {
		return errors.New("memo must be at most 1024 bytes of UTF-8")
	}
	if t.Open != nil {
		if t.Kind != KindEndow {
			return fmt.Errorf("open needs kind %q", KindEndow)
		}
		if t.Wallet == "" {
			t.Wallet = t.Open.Name
		}
		if t.Wallet != t.Open.Name {
			return fmt.Errorf("wallet %q differs from open %q", t.Wallet, t.Open.Name)
		}
		if err := checkWalletName(t.Open.Name); err != nil {
			return err
		}
		if t.Open.Endowment < 0 || t.Open.TapRate < 0 || t.Open.TapCap < 0 {
			return errors.New("endowment, tap rate and tap cap must not be negative")
		}
	}
	if t.Kind == KindTerms || t.Terms != nil {
		return t.checkTerms()
	}
	computed := t.Kind == KindClose || t.Open != nil
	if computed {
		if len(t.Entries) != 0 {
			return errors.New("entries of a close or open are computed by the ledger; leave them empty")
		}
		if t.Wallet == "" {
			return errors.New("no wallet")
		}
		return nil
	}
	if (t.Kind == KindTap || t.Kind == KindIncome) && t.Wallet == "" {
		return fmt.Errorf("a %s names the wallet it pays", t.Kind)
	}
	if len(t.Entries) < 2 {
		return errors.New("need at least two entries")
	}
	if t.Kind == KindIncome {
		if err := t.checkIncome(); err != nil {
			return err
		}
	}
	var sum units.Credits
	named := t.Wallet == ""
	for _, e := range t.Entries {
		if e.Account == "" {
			return errors.New("entry without account")
		}
		if e.Amount == 0 {
			return fmt.Errorf("zero entry for %q", e.Account)
		}
		if e.Account == Mint && (e.Amount > 0 || !t.Kind.issues()) {
			return fmt.Errorf("kind %q may not credit or debit the mint that way (%d)", t.Kind, e.Amount)
		}
		var ok bool
		if sum, ok = sum.Add(e.Amount); !ok {
			return fmt.Errorf("entries: %w", ErrOverflow)
		}
		named = named || e.Account == t.Wallet
	}
	if sum != 0 {
		return fmt.Errorf("entries sum to %d, not 0", sum)
	}
	if !named {
		return fmt.Errorf("wallet %q has no entry", t.Wallet)
	}
	return nil
}

// checkIncome holds an income to its shape: money minted for its wallet,
// {Mint, −a} and {Wallet, +a} (in either order) with a > 0. Unlike a tap,
// income has no cap.
func (t *Tx) checkIncome() error {
	if len(t.Entries) == 2 && t.Wallet != Mint && t.Wallet != Burn {
		e0, e1 := t.Entries[0], t.Entries[1]
		if e0.Account == t.Wallet {
			e0, e1 = e1, e0
		}
		if e0.Account == Mint && e1.Account == t.Wallet && e1.Amount > 0 && e0.Amount == -e1.Amount {
			return nil
		}
	}
	return fmt.Errorf("an income mints a positive amount for its wallet %q: entries {%s, −a} and {%s, +a}, not %v", t.Wallet, Mint, t.Wallet, t.Entries)
}

// checkTerms holds a change of terms to its shape: kind KindTerms, a
// wallet, the terms, no figure negative, and no entries (it moves no
// money).
func (t *Tx) checkTerms() error {
	switch {
	case t.Kind != KindTerms:
		return fmt.Errorf("terms need kind %q, not %q", KindTerms, t.Kind)
	case t.Terms == nil:
		return errors.New("a change of terms states the new terms")
	case t.Wallet == "":
		return errors.New("a change of terms names its wallet")
	case len(t.Entries) != 0:
		return errors.New("a change of terms moves no money: leave its entries empty")
	case t.Terms.TapRate < 0 || t.Terms.TapCap < 0:
		return fmt.Errorf("tap rate %d and tap cap %d must not be negative", t.Terms.TapRate, t.Terms.TapCap)
	}
	return nil
}

func checkWalletName(n string) error {
	if n == "" || len(n) > 128 || !utf8.ValidString(n) {
		return errors.New("wallet name must be 1 to 128 bytes of UTF-8")
	}
	if n == Mint || n == Burn {
		return fmt.Errorf("wallet name %q is reserved", n)
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return fmt.Errorf("wallet name %q has a control character", n)
		}
	}
	return nil
}

// digest is a hash of everything in t but its key: what must match for a
// replay to count as a duplicate.
func (t *Tx) digest() []byte {
	h := sha256.New()
	var b [8]byte
	num := func(v uint64) { binary.BigEndian.PutUint64(b[:], v); h.Write(b[:]) }
	str := func(s string) { num(uint64(len(s))); h.Write([]byte(s)) }
	str("maxwell-ledger-tx-v1")
	str(string(t.Kind))
	num(t.Tick)
	str(t.Memo)
	num(uint64(len(t.Entries)))
	for _, e := range t.Entries {
		str(e.Account)
		num(uint64(e.Amount))
	}
	str(t.Wallet)
	if o := t.Open; o != nil {
		num(1)
		str(o.Name)
		num(uint64(o.Endowment))
		num(uint64(o.TapRate))
		num(uint64(o.TapCap))
	} else {
		num(0)
	}
	// Appended only when present, so that the digests of every other
	// transaction stay as they were before terms existed.
	if tm := t.Terms; tm != nil {
		str("terms")
		num(uint64(tm.TapRate))
		num(uint64(tm.TapCap))
	}
	return h.Sum(nil)
}

// account is an account row cached for the length of one batch.
type account struct {
	name      string
	id        int64 // accounts.id, which per-tick rows and rollups refer to
	kind      string
	state     string
	balance   units.Credits
	tapRate   units.Credits
	tapCap    units.Credits
	dirty     bool // balance (and closing) to write
	termsSet  bool // tapRate and tapCap to write
	closeTick *uint64
	closeTx   int64 // the id of the closing transaction, with closeTick
	final     units.Credits
}

// batch is the state of one Apply.
type batch struct {
	ctx   context.Context // the caller's, checked before each transaction
	sctx  context.Context // for statements: ctx without its cancellation
	l     *Ledger
	tx    *sql.Tx
	bound map[string]*sql.Stmt // l.stmts bound to tx
	accs  map[string]*account
	rows  map[rowKey]*tickRow // per-tick rows read or written
	// maxRow is the highest tick of a per-tick row the batch wrote.
	maxRow uint64
	lastID int64 // the highest txs.id, once haveID
	haveID bool
}

// stmt returns the statement q bound to the batch's transaction, prepared
// once per connection: parsing SQL is most of the CPU time of a small
// transaction otherwise.
//
// Statements run without the caller's cancellation: each is a short
// lookup or write (a busy wait is bounded by the busy timeout), the batch
// checks the context before each transaction, and a cancellable context
// costs a goroutine per statement in modernc.org/sqlite.
func (b *batch) stmt(q string) (*sql.Stmt, error) {
	if st, ok := b.bound[q]; ok {
		return st, nil
	}
	st, ok := b.l.stmts[q]
	if !ok {
		var err error
		if st, err = b.l.db.PrepareContext(b.sctx, q); err != nil {
			return nil, err
		}
		b.l.stmts[q] = st
	}
	bst := b.tx.StmtContext(b.sctx, st)
	b.bound[q] = bst
	return bst, nil
}

// exec runs the statement q with args in the batch's transaction.
func (b *batch) exec(q string, args ...any) (sql.Result, error) {
	st, err := b.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(b.sctx, args...)
}

// queryRow runs the query q with args in the batch's transaction.
func (b *batch) queryRow(q string, args ...any) *sql.Row {
	st, err := b.stmt(q)
	if err != nil {
		// A failed prepare surfaces through Scan, like any query error.
		return b.tx.QueryRowContext(b.sctx, q, args...)
	}
	return st.QueryRowContext(b.sctx, args...)
}

// Apply applies txs, in order, in one SQLite transaction: all of them or,
// on any error, none. An engine posts one batch per tick. Transactions whose
// key was already applied with the same content are skipped and reported as
// Duplicate; a key reused with other content fails the batch with
// ErrKeyConflict.
func (l *Ledger) Apply(ctx context.Context, txs ...Tx) ([]Result, error) {
	txs = slices.Clone(txs)
	for i := range txs {
		if err := txs[i].validate(); err != nil {
			return nil, fmt.Errorf("ledger: %w: tx %d %q: %v", ErrInvalid, i, txs[i].Key, err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	res, err := l.applyLocked(ctx, txs)
	if errors.Is(err, ErrFull) && l.lock != nil {
		// The write-ahead log may hold the space the commit needed: most
		// of its frames are older copies of pages. Truncate it and try
		// once more.
		if c, cerr := l.checkpoint(ctx, CheckpointTruncate); cerr == nil && !c.Busy && c.WALAfter < c.WALBefore {
			l.log.Info("ledger full: write-ahead log truncated, trying again", "path", l.path, "wal_bytes", c.WALBefore)
			res, err = l.applyLocked(ctx, txs)
		}
	}
	return res, err
}

// applyLocked is Apply with l.mu held: one SQLite transaction.
func (l *Ledger) applyLocked(ctx context.Context, txs []Tx) ([]Result, error) {
	sqlTx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("ledger: begin: %w", classify(err))
	}
	b := &batch{ctx: ctx, sctx: context.WithoutCancel(ctx), l: l, tx: sqlTx,
		bound: map[string]*sql.Stmt{}, accs: map[string]*account{}, rows: map[rowKey]*tickRow{}}
	if err := l.loadState(b.sctx, sqlTx); err != nil {
		sqlTx.Rollback()
		return nil, fmt.Errorf("ledger: %w", classify(err))
	}
	if err := b.prefetch(txs); err != nil {
		sqlTx.Rollback()
		return nil, fmt.Errorf("ledger: read accounts: %w", classify(err))
	}
	res := make([]Result, len(txs))
	for i := range txs {
		if err = ctx.Err(); err == nil {
			res[i], err = b.apply(&txs[i])
		}
		if err != nil {
			sqlTx.Rollback()
			return nil, fmt.Errorf("ledger: tx %d %q: %w", i, txs[i].Key, classify(err))
		}
	}
	if err := b.flush(); err != nil {
		sqlTx.Rollback()
		return nil, fmt.Errorf("ledger: write balances: %w", classify(err))
	}
	if err := sqlTx.Commit(); err != nil {
		sqlTx.Rollback() // harmless if SQLite already rolled back
		err = classify(err)
		l.log.Warn("ledger commit failed", "path", l.path, "txs", len(txs), "err", err)
		return nil, fmt.Errorf("ledger: commit: %w", err)
	}
	l.maxRow = max(l.maxRow, b.maxRow)
	l.reached = max(l.reached, b.maxRow)
	for name, a := range b.accs {
		if a.state != "open" {
			delete(l.accounts, name) // closed: rarely read again
			continue
		}
		c := *a
		c.dirty, c.termsSet = false, false
		l.accounts[name] = c
	}
	return res, nil
}

// get returns the cached account row for name.
func (b *batch) get(name string) (*account, error) {
	if a, ok := b.accs[name]; ok {
		return a, nil
	}
	if c, ok := b.l.accounts[name]; ok {
		b.accs[name] = &c
		return &c, nil
	}
	a := &account{name: name}
	var id sql.NullInt64
	err := b.queryRow(
		`SELECT id, kind, state, balance, tap_rate, tap_cap FROM accounts WHERE name = ?`, name).
		Scan(&id, &a.kind, &a.state, &a.balance, &a.tapRate, &a.tapCap)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ErrNoAccount, name)
	}
	if err != nil {
		return nil, err
	}
	if !id.Valid {
		return nil, fmt.Errorf("%w: account %q has no id", ErrSchema, name)
	}
	a.id = id.Int64
	b.accs[name] = a
	return a, nil
}

// wallet returns the open wallet called name.
func (b *batch) wallet(name string) (*account, error) {
	a, err := b.get(name)
	if err != nil {
		return nil, err
	}
	if a.kind != "wallet" {
		return nil, fmt.Errorf("%w: %q is a system account", ErrInvalid, name)
	}
	if a.state != "open" {
		return nil, fmt.Errorf("%w: %q", ErrClosed, name)
	}
	return a, nil
}

func (b *batch) apply(t *Tx) (Result, error) {
	r := Result{Key: t.Key}
	amt, perTick := t.perTick()
	// A per-tick posting's key is only looked for among whole
	// transactions when one of those may have a per-tick key.
	if !perTick || b.l.shadows {
		var have []byte
		err := b.queryRow(`SELECT id, digest FROM txs WHERE key = ?`, t.Key).Scan(&r.ID, &have)
		switch {
		case err == nil:
			if string(have) != string(t.digest()) {
				return r, ErrKeyConflict
			}
			r.Duplicate = true
			if r.Entries, err = b.entries(r.ID); err != nil {
				return r, err
			}
			r.Amount = amount(t, r.Entries)
			return r, nil
		case !errors.Is(err, sql.ErrNoRows):
			return r, err
		}
	}
	if perTick {
		return b.applyPerTick(t, amt)
	}
	if tick, wallet, k, ok := parsePerTickKey(t.Key); ok {
		// A per-tick posting may hold this key; and from now on a whole
		// transaction may hold a per-tick key.
		if err := b.shadowed(tick, wallet, k); err != nil {
			return r, err
		}
		b.l.shadows = true
	}

	entries := t.Entries
	switch {
	case t.Open != nil:
		if _, err := b.get(t.Wallet); err == nil {
			return r, fmt.Errorf("%w: %q", ErrExists, t.Wallet)
		} else if !errors.Is(err, ErrNoAccount) {
			return r, err
		}
		o := t.Open
		var id int64
		if err := b.queryRow(
			`INSERT INTO accounts (name, kind, state, endowment, tap_rate, tap_cap, opened_tick, id)
			VALUES (?, 'wallet', 'open', ?, ?, ?, ?, (SELECT COALESCE(MAX(id), 0) + 1 FROM accounts)) RETURNING id`,
			o.Name, o.Endowment, o.TapRate, o.TapCap, int64(t.Tick)).Scan(&id); err != nil {
			return r, err
		}
		b.accs[o.Name] = &account{name: o.Name, id: id, kind: "wallet", state: "open", tapRate: o.TapRate, tapCap: o.TapCap}
		if o.Endowment > 0 {
			entries = []Entry{{Mint, -o.Endowment}, {o.Name, o.Endowment}}
		}
	case t.Kind == KindTap:
		w, err := b.wallet(t.Wallet)
		if err != nil {
			return r, err
		}
		if err := checkTap(t, w, amount(t, entries)); err != nil {
			return r, err
		}
	case t.Kind == KindIncome:
		// Any open wallet may earn, as much as it is paid.
		if _, err := b.wallet(t.Wallet); err != nil {
			return r, err
		}
	case t.Kind == KindTerms:
		// A closed wallet (ErrClosed), an unknown one (ErrNoAccount) or a
		// system account (ErrInvalid) has no terms to change.
		if _, err := b.wallet(t.Wallet); err != nil {
			return r, err
		}
	case t.Kind == KindClose:
		w, err := b.wallet(t.Wallet)
		if err != nil {
			return r, err
		}
		if w.balance != 0 {
			if w.balance == math.MinInt64 {
				return r, fmt.Errorf("write off %d: %w", w.balance, ErrOverflow)
			}
			entries = []Entry{{w.name, -w.balance}, {Burn, w.balance}}
		}
	}

	// Its place in tick order: after the last tick posted before it
	// (in this batch too), which for the economy's opens, funds, closes
	// and changes of terms, all posted at tick 0, is when they happened.
	after := max(b.l.reached, b.maxRow)
	res, err := b.exec(`INSERT INTO txs (key, kind, tick, memo, digest, after_tick) VALUES (?, ?, ?, ?, ?, ?)`,
		t.Key, string(t.Kind), int64(t.Tick), t.Memo, t.digest(), int64(after))
	if err != nil {
		return r, err
	}
	if r.ID, err = res.LastInsertId(); err != nil {
		return r, err
	}
	b.lastID, b.haveID = r.ID, true
	for i, e := range entries {
		if err := b.move(e); err != nil {
			return r, err
		}
		if _, err := b.exec(`INSERT INTO entries (tx_id, seq, account, amount) VALUES (?, ?, ?, ?)`,
			r.ID, i, e.Account, e.Amount); err != nil {
			return r, err
		}
	}
	switch t.Kind {
	case KindClose:
		w := b.accs[t.Wallet]
		tick := t.Tick
		w.final = -amount(&Tx{Wallet: t.Wallet}, entries)
		w.state, w.closeTick, w.closeTx, w.dirty = "closed", &tick, r.ID, true
	case KindTerms:
		if err := b.setTerms(r.ID, b.accs[t.Wallet], *t.Terms); err != nil {
			return r, err
		}
	}
	r.Entries = slices.Clone(entries)
	if r.Entries == nil {
		r.Entries = []Entry{}
	}
	r.Amount = amount(t, entries)
	return r, nil
}

// setTerms records the change of w's terms to tm made by the transaction
// id, with the terms it replaces, and holds every tap applied after it to
// tm: the cached account's terms change now, and flush writes them with the
// batch.
func (b *batch) setTerms(id int64, w *account, tm Terms) error {
	if _, err := b.exec(`INSERT INTO terms (tx_id, account, tap_rate, tap_cap, was_rate, was_cap) VALUES (?, ?, ?, ?, ?, ?)`,
		id, w.id, tm.TapRate, tm.TapCap, w.tapRate, w.tapCap); err != nil {
		return err
	}
	w.tapRate, w.tapCap, w.termsSet = tm.TapRate, tm.TapCap, true
	return nil
}

// move adds e to its account's cached balance.
func (b *batch) move(e Entry) error {
	a, err := b.get(e.Account)
	if err != nil {
		return err
	}
	if a.state != "open" {
		return fmt.Errorf("%w: %q", ErrClosed, a.name)
	}
	nb, ok := a.balance.Add(e.Amount)
	if !ok {
		return fmt.Errorf("%q: %d%+d: %w", a.name, a.balance, e.Amount, ErrOverflow)
	}
	a.balance, a.dirty = nb, true
	return nil
}

// checkTap holds a tap of inc credits to the wallet w's terms as they stand
// at this point of the batch: those of its last change of terms applied
// before it (SetTerms), else those it opened with. The engine computes tap
// income; the ledger checks that a tap only pays a wallet that has one, and
// never lifts its balance above the cap.
func checkTap(t *Tx, w *account, inc units.Credits) error {
	if w.tapRate <= 0 {
		return fmt.Errorf("%w: %q: wallet %q has no tap", ErrInvalid, t.Key, w.name)
	}
	if nb, ok := w.balance.Add(inc); inc <= 0 || !ok || nb > w.tapCap {
		return fmt.Errorf("%w: %q: a tap of %d would take %q from %d past its cap of %d", ErrInvalid, t.Key, inc, w.name, w.balance, w.tapCap)
	}
	return nil
}

// amount is Result.Amount for t posted as es.
func amount(t *Tx, es []Entry) units.Credits {
	var d units.Credits
	for _, e := range es {
		if e.Account == t.Wallet && t.Wallet != "" {
			d += e.Amount // bounded: the entries were applied without overflow
		}
	}
	if t.Kind == KindClose {
		return -d
	}
	return d
}

func (b *batch) entries(id int64) ([]Entry, error) {
	rows, err := b.tx.QueryContext(b.sctx, `SELECT account, amount FROM entries WHERE tx_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	es := []Entry{}
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.Account, &e.Amount); err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	return es, rows.Err()
}

// flush writes the per-tick rows the batch changed, then the balances (and
// closings) of the accounts it moved.
func (b *batch) flush() error {
	if err := b.flushRows(); err != nil {
		return err
	}
	// The balances, a few statements for all accounts.
	var bals []any
	for _, a := range b.accs {
		if a.termsSet {
			if _, err := b.exec(`UPDATE accounts SET tap_rate = ?, tap_cap = ? WHERE name = ?`, a.tapRate, a.tapCap, a.name); err != nil {
				return err
			}
		}
		if !a.dirty {
			continue
		}
		if a.closeTick != nil {
			if _, err := b.exec(
				`UPDATE accounts SET balance = ?, state = 'closed', closed_tick = ?, closed_tx = ?, final_balance = ? WHERE name = ?`,
				a.balance, int64(*a.closeTick), a.closeTx, a.final, a.name); err != nil {
				return err
			}
			continue
		}
		bals = append(bals, a.name, a.balance)
	}
	return b.execRows(bals, 2, func(values string) string {
		return `UPDATE accounts SET balance = v.column2 FROM (VALUES ` + values + `) AS v WHERE accounts.name = v.column1`
	})
}

// rowsPerStatement bounds the rows of one multi-row statement.
const rowsPerStatement = 64

// execRows runs the statement query(values) for args, cols values a row,
// in chunks of at most rowsPerStatement rows; values is the statement's
// list of rows of placeholders, "(?, ?), (?, ?)".
func (b *batch) execRows(args []any, cols int, query func(values string) string) error {
	for len(args) > 0 {
		n := min(len(args)/cols, rowsPerStatement)
		if _, err := b.exec(query(placeholders(n, cols)), args[:n*cols]...); err != nil {
			return err
		}
		args = args[n*cols:]
	}
	return nil
}

// placeholders returns rows rows of cols placeholders each.
func placeholders(rows, cols int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return row + strings.Repeat(", "+row, rows-1)
}

// prefetch reads, in a few queries, the accounts txs name that the batch
// has not read yet.
func (b *batch) prefetch(txs []Tx) error {
	var names []any
	seen := map[string]bool{}
	want := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			_, batch := b.accs[n]
			_, committed := b.l.accounts[n]
			if !batch && !committed {
				names = append(names, n)
			}
		}
	}
	for i := range txs {
		want(txs[i].Wallet)
		for _, e := range txs[i].Entries {
			want(e.Account)
		}
	}
	for len(names) > 1 { // get reads one as fast
		n := min(len(names), rowsPerStatement)
		st, err := b.stmt(`SELECT name, id, kind, state, balance, tap_rate, tap_cap FROM accounts WHERE name IN (?` +
			strings.Repeat(", ?", n-1) + `)`)
		if err != nil {
			return err
		}
		if err := b.scanAccounts(st, names[:n]); err != nil {
			return err
		}
		names = names[n:]
	}
	return nil
}

// scanAccounts caches the accounts the query st returns for args.
func (b *batch) scanAccounts(st *sql.Stmt, args []any) error {
	rows, err := st.QueryContext(b.sctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		a := &account{}
		var id sql.NullInt64
		if err := rows.Scan(&a.name, &id, &a.kind, &a.state, &a.balance, &a.tapRate, &a.tapCap); err != nil {
			return err
		}
		if !id.Valid {
			return fmt.Errorf("%w: account %q has no id", ErrSchema, a.name)
		}
		a.id = id.Int64
		b.accs[a.name] = a
	}
	return rows.Err()
}
