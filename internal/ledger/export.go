package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Filter selects what Export and History read.
type Filter struct {
	// Cell names one wallet; "" is every account (History needs one).
	Cell string `json:"cell,omitempty"`
	// SinceTick and UntilTick bound the ticks, both included; UntilTick 0
	// is no bound. A rollup is read when its span of ticks meets them.
	SinceTick uint64 `json:"since_tick"`
	UntilTick uint64 `json:"until_tick,omitempty"`
}

// until returns the last tick f reads.
func (f Filter) until() uint64 {
	if f.UntilTick == 0 {
		return math.MaxInt64
	}
	return f.UntilTick
}

// Record is one posting as Export gives it, as the wallet sees it.
type Record struct {
	// Tick is the posting's tick; for a rollup, the first of its span,
	// LastTick the last (LastTick is Tick otherwise). A transaction stored
	// whole is at the tick the engine had reached when it was written, or
	// at its own tick if that is later (see Export).
	Tick     uint64 `json:"tick"`
	LastTick uint64 `json:"last_tick"`
	// Time is when Tick fell, as the ledger can tell (TimeBasis says how);
	// nil when it cannot.
	Time      *time.Time `json:"time,omitempty"`
	TimeBasis TimeBasis  `json:"time_basis,omitempty"`
	// Rollup: the record stands for Count postings of one kind over the
	// ticks Tick to LastTick, folded into a rollup; Amount is their sum.
	// Count is 1 otherwise.
	Rollup bool  `json:"rollup,omitempty"`
	Count  int64 `json:"count"`
	// Wallet is the account the amount moved: a wallet, or mint or burn
	// for a transaction that moves no wallet's money.
	Wallet string `json:"wallet"`
	Kind   Kind   `json:"kind"`
	// Amount is the change in Wallet's balance: positive for what it was
	// paid (endowments, funds, taps, income, refunds), negative for what
	// it paid (charges, a write-off at its close); 0 for a change of terms.
	Amount units.Credits `json:"amount"`
	// Key is the transaction's idempotency key (a per-tick posting's is
	// its conventional Key); none for a rollup. ID is the sequence number
	// of a transaction stored whole, 0 otherwise.
	Key  string `json:"key,omitempty"`
	ID   int64  `json:"id,omitempty"`
	Memo string `json:"memo,omitempty"`
	// Balance is Wallet's balance after the record, where the ledger
	// knows it (see Export); nil where it does not.
	Balance *units.Credits `json:"balance,omitempty"`
	// Terms is what a change of terms changed.
	Terms *TermsChange `json:"terms,omitempty"`
}

// itemKind is what an item of the export's walk is.
type itemKind int8

const (
	itemWhole  itemKind = iota + 1 // a transaction stored whole, for one account
	itemRow                        // a wallet's per-tick row
	itemRollup                     // a wallet's rollup row
)

// place orders the export's walk: by tick; at a tick, the transactions
// stored whole written before its postings (phase 0), its per-tick rows
// and the rollups ending at it (phase 1), then those written after them
// (phase 2); then by account (rows, rollups) or id and leg (whole).
type place struct {
	tick  uint64
	phase int8
	sub   int64
	leg   int
}

func (a place) compare(b place) int {
	return cmp.Or(cmp.Compare(a.tick, b.tick), cmp.Compare(a.phase, b.phase), cmp.Compare(a.sub, b.sub), cmp.Compare(a.leg, b.leg))
}

// before reports whether a comes before b in tick and phase alone.
func (a place) before(b place) bool {
	return a.tick < b.tick || a.tick == b.tick && a.phase < b.phase
}

// item is one step of the export's walk.
type item struct {
	kind   itemKind
	at     place
	wallet string
	system bool // wallet is mint or burn

	// A transaction stored whole: its tick is at.tick.
	id     int64
	key    string
	txKind Kind
	memo   string
	amount units.Credits
	terms  *TermsChange
	legacy bool // written before schema version 5: no after_tick

	// A per-tick row (first == last) or a rollup.
	first, last uint64
	amounts     [len(perTickKinds)]units.Credits
	counts      [len(perTickKinds)]int64

	// inside: a transaction stored whole that lies inside the span of a
	// rollup of its wallet, whose postings around it are summed.
	inside bool
	// balance is the wallet's balance after the item, known when known.
	balance units.Credits
	known   bool
	// time is when the item's first tick fell.
	time  time.Time
	basis TimeBasis
}

// net is the change the item made to its wallet's balance.
func (it *item) net() units.Credits {
	if it.kind == itemWhole {
		return it.amount
	}
	var n units.Credits
	for i, k := range perTickKinds {
		if k.issues() {
			n += it.amounts[i]
		} else {
			n -= it.amounts[i]
		}
	}
	return n
}

// signed is the amount of per-tick kind i as the wallet sees it.
func signed(i int, a units.Credits) units.Credits {
	if perTickKinds[i].issues() {
		return a
	}
	return -a
}

// Export calls yield with every posting of the ledger that f selects, in
// tick order, read in one snapshot and streamed: the ledger is never held in
// memory (what is, is a balance per wallet and a bucket of rollups). A
// transaction stored whole gives a record per wallet whose balance it moved
// (per account when it moves no wallet's: mint and burn), and a change of
// terms one of amount 0; a per-tick row a record per kind it holds; a
// rollup a record per kind, with Count postings over its span of ticks.
//
// The order. Per-tick postings are at their tick and rollups at the end of
// their span. A transaction stored whole since schema version 5 records
// the last tick posted before it was written (after_tick), which places it
// after that tick's postings, or before its own tick's if that is later:
// the economy posts opens, funds, closes and changes of terms at tick 0,
// and this is when they happened. One written in the same batch as
// per-tick postings of its tick is placed after all of them. Before
// version 5 that tick was not kept: such a transaction is at its own tick.
//
// The balance after a record, which the ledger knows where the order is
// known: after a transaction stored whole; after a wallet's per-tick
// postings of one tick, on the last of its records (they are stored
// without their order); after a rollup, on its last record. Not after a
// transaction inside a rollup's span (the rollup's sums include postings
// before and after it; the balance after the rollup is known again); not
// after one written before version 5 other than a wallet's open (at a tick
// of its own, its place among that tick's postings is unknown; at tick 0,
// its place at all); and none for a wallet with a transaction that moved
// its money written before version 5 at tick 0, other than its first: its
// place is unknown, and so is every balance after its open. The ledger keeps balances of mint and burn
// but Export reckons only wallets'.
//
// Times come from the clock anchors the daemon recorded (Options.Clock),
// else they are estimated (see TimeBasis).
//
// Export stops at the first error yield returns, and returns it.
func (l *Ledger) Export(ctx context.Context, f Filter, yield func(Record) error) error {
	return l.walk(ctx, f, func(it *item) error {
		for _, r := range it.records() {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// records returns the records of an item.
func (it *item) records() []Record {
	base := Record{Tick: it.at.tick, LastTick: it.at.tick, Count: 1, Wallet: it.wallet}
	if !it.time.IsZero() {
		t := it.time
		base.Time, base.TimeBasis = &t, it.basis
	}
	var rs []Record
	switch it.kind {
	case itemWhole:
		r := base
		r.Kind, r.Amount, r.Key, r.ID, r.Memo, r.Terms = it.txKind, it.amount, it.key, it.id, it.memo, it.terms
		rs = append(rs, r)
	default:
		base.Tick, base.LastTick, base.Rollup = it.first, it.last, it.kind == itemRollup
		for i, k := range perTickKinds {
			if it.counts[i] == 0 {
				continue
			}
			r := base
			r.Kind, r.Amount, r.Count = k, signed(i, it.amounts[i]), it.counts[i]
			if it.kind == itemRow {
				r.Key = Key(it.first, it.wallet, string(k))
			}
			rs = append(rs, r)
		}
	}
	if it.known && len(rs) > 0 {
		b := it.balance
		rs[len(rs)-1].Balance = &b
	}
	return rs
}

// walk visits the items f selects in the order of place, with balances
// and times, in one read snapshot.
func (l *Ledger) walk(ctx context.Context, f Filter, visit func(*item) error) error {
	if f.UntilTick != 0 && f.UntilTick < f.SinceTick {
		return fmt.Errorf("ledger: %w: ticks %d to %d: the end lies before the start", ErrInvalid, f.SinceTick, f.UntilTick)
	}
	if f.SinceTick > math.MaxInt64 || f.until() > math.MaxInt64 {
		return fmt.Errorf("ledger: %w: ticks %d to %d out of range", ErrInvalid, f.SinceTick, f.UntilTick)
	}
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("ledger: export: %w", classify(err))
	}
	defer tx.Rollback()
	w := walker{ctx: ctx, tx: tx, f: f, balances: map[string]units.Credits{}, unordered: map[string]bool{}}
	if err := w.start(l); err != nil {
		return fmt.Errorf("ledger: export: %w", classify(err))
	}
	defer w.close()
	if err := w.run(visit); err != nil {
		return fmt.Errorf("ledger: export: %w", classify(err))
	}
	return nil
}

// walker is the state of one walk.
type walker struct {
	ctx       context.Context
	tx        *sql.Tx
	f         Filter
	wallet    int64 // accounts.id of f.Cell
	balances  map[string]units.Credits
	unordered map[string]bool // wallets with a transaction of unknown place
	rollups   rollupSource
	rows      rowSource
	whole     wholeSource
	times     *timeline
}

// start reads what the walk starts from and opens its cursors.
func (w *walker) start(l *Ledger) error {
	f, ctx, tx := w.f, w.ctx, w.tx
	if f.Cell != "" {
		var kind string
		err := tx.QueryRowContext(ctx, `SELECT id, kind FROM accounts WHERE name = ?`, f.Cell).Scan(&w.wallet, &kind)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: %q", ErrNoAccount, f.Cell)
		case err != nil:
			return err
		case kind != "wallet":
			return fmt.Errorf("%w: %q is a system account, not a wallet", ErrInvalid, f.Cell)
		}
	}
	if err := w.startBalances(); err != nil {
		return err
	}
	since, until := int64(f.SinceTick), int64(f.until())
	var err error
	w.rollups.rows, err = tx.QueryContext(ctx, `SELECT r.bucket, r.account, a.name, r.first_tick, r.last_tick, `+
		columnsSQL("r.n_%[1]s, r.%[1]s", ", ", nil)+`
		FROM rollups r JOIN accounts a ON a.id = r.account
		WHERE r.last_tick >= ? AND r.first_tick <= ? AND (? = 0 OR r.account = ?)
		ORDER BY r.bucket, r.account`, since, until, w.wallet, w.wallet)
	if err != nil {
		return err
	}
	w.rows.rows, err = tx.QueryContext(ctx, `SELECT t.tick, t.account, a.name, `+columnsSQL("t.%s", ", ", nil)+`
		FROM ticks t JOIN accounts a ON a.id = t.account
		WHERE t.tick >= ? AND t.tick <= ? AND (? = 0 OR t.account = ?)
		ORDER BY t.tick, t.account`, since, until, w.wallet, w.wallet)
	if err != nil {
		return err
	}
	w.whole.cell = f.Cell
	w.whole.rows, err = tx.QueryContext(ctx, `SELECT t.id, t.key, t.kind, t.tick, t.after_tick, t.memo, e.account, e.amount,
			n.name, m.tap_rate, m.tap_cap, m.was_rate, m.was_cap
		FROM txs t LEFT JOIN entries e ON e.tx_id = t.id AND (?1 = '' OR e.account = ?1)
			LEFT JOIN terms m ON m.tx_id = t.id LEFT JOIN accounts n ON n.id = m.account
		WHERE `+placeSQL+` >= ?2
			AND (?1 = '' OR t.id IN (SELECT tx_id FROM entries WHERE account = ?1 UNION SELECT tx_id FROM terms WHERE account = ?3))
		ORDER BY `+placeSQL+`, COALESCE(t.after_tick >= t.tick, 0), t.id, e.seq`, f.Cell, since, w.wallet)
	if err != nil {
		return err
	}
	w.times, err = l.newTimeline(ctx, tx)
	return err
}

// placeSQL is the tick a transaction stored whole (txs t) is placed at.
const placeSQL = `MAX(t.tick, COALESCE(t.after_tick, t.tick))`

// startBalances reads the wallets' balances before f.SinceTick, and which
// wallets have a transaction whose place is not known.
func (w *walker) startBalances() error {
	f, ctx, tx := w.f, w.ctx, w.tx
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT e.account FROM entries e JOIN txs t ON t.id = e.tx_id
		WHERE t.after_tick IS NULL AND t.tick = 0 AND e.account NOT IN (?, ?) AND (?3 = '' OR e.account = ?3)
			AND e.tx_id > (SELECT MIN(f.tx_id) FROM entries f WHERE f.account = e.account)`, Mint, Burn, f.Cell)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		w.unordered[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if f.SinceTick == 0 {
		return nil
	}
	rows, err = tx.QueryContext(ctx, `SELECT name, SUM(v) FROM (
			SELECT a.name AS name, r.net AS v FROM rollups r JOIN accounts a ON a.id = r.account
				WHERE r.last_tick < ?1 AND (?2 = 0 OR r.account = ?2)
			UNION ALL
			SELECT a.name, `+netSQL("COALESCE(t.%s, 0)")+` FROM ticks t JOIN accounts a ON a.id = t.account
				WHERE t.tick < ?1 AND (?2 = 0 OR t.account = ?2)
			UNION ALL
			SELECT e.account, e.amount FROM entries e JOIN txs t ON t.id = e.tx_id
				WHERE `+placeSQL+` < ?1 AND (?3 = '' OR e.account = ?3)
		) GROUP BY name`, int64(f.SinceTick), w.wallet, f.Cell)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var b units.Credits
		if err := rows.Scan(&name, &b); err != nil {
			return err
		}
		w.balances[name] = b
	}
	return rows.Err()
}

func (w *walker) close() {
	for _, r := range []*sql.Rows{w.rollups.rows, w.rows.rows, w.whole.rows} {
		if r != nil {
			r.Close()
		}
	}
	if w.times != nil {
		w.times.close()
	}
}

// run walks the three cursors in the order of place.
func (w *walker) run(visit func(*item) error) error {
	until := w.f.until()
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		r, err := w.rollups.peek()
		if err != nil {
			return err
		}
		t, err := w.rows.peek()
		if err != nil {
			return err
		}
		h, err := w.whole.peek()
		if err != nil {
			return err
		}
		if r == nil && t == nil && (h == nil || h.at.tick > until) {
			// Only transactions past the end are left, and no rollup
			// that they may lie inside.
			return nil
		}
		it := h
		for _, c := range []*item{r, t} {
			if c != nil && (it == nil || c.at.compare(it.at) < 0) {
				it = c
			}
		}
		switch it {
		case r:
			w.rollups.pop()
		case t:
			w.rows.pop()
		default:
			w.whole.pop()
			it.inside = w.rollups.inside(it)
		}
		if !it.system {
			b := w.balances[it.wallet] + it.net()
			w.balances[it.wallet] = b
			it.balance = b
			// A transaction written before version 5 has a known place
			// only as its wallet's open (its first).
			it.known = !w.unordered[it.wallet] && !it.inside && !(it.legacy && (it.at.tick > 0 || it.txKind != KindEndow))
		}
		if it.kind == itemWhole && it.at.tick > until {
			continue // summed for a rollup it lies inside, not read
		}
		if it.time, it.basis, err = w.times.at(it.first); err != nil {
			return err
		}
		if err := visit(it); err != nil {
			return err
		}
	}
}

// next moves *rows to its next row, reporting false at the end, where it
// closes the rows and sets *rows to nil (as it finds it once closed).
func next(rows **sql.Rows) (bool, error) {
	if *rows == nil {
		return false, nil
	}
	if (*rows).Next() {
		return true, nil
	}
	err := (*rows).Err()
	(*rows).Close()
	*rows = nil
	return false, err
}

// rowSource reads the per-tick rows in the order of place.
type rowSource struct {
	rows *sql.Rows
	head *item
}

func (s *rowSource) peek() (*item, error) {
	if s.head != nil {
		return s.head, nil
	}
	if ok, err := next(&s.rows); !ok {
		return nil, err
	}
	var tick, account int64
	var name string
	var amts [len(perTickKinds)]sql.NullInt64
	dest := []any{&tick, &account, &name}
	for i := range amts {
		dest = append(dest, &amts[i])
	}
	if err := s.rows.Scan(dest...); err != nil {
		return nil, err
	}
	it := &item{kind: itemRow, at: place{tick: uint64(tick), phase: 1, sub: account}, wallet: name, first: uint64(tick), last: uint64(tick)}
	for i, a := range amts {
		if a.Valid {
			it.amounts[i], it.counts[i] = units.Credits(a.Int64), 1
		}
	}
	s.head = it
	return it, nil
}

func (s *rowSource) pop() { s.head = nil }

// rollupSource reads the rollups a bucket at a time, each bucket's rows
// in the order of place (the end of their span).
type rollupSource struct {
	rows     *sql.Rows
	look     *item // the first row of the next bucket, read ahead
	bucket   int64 // look's bucket
	group    []*item
	byWallet map[string]*item // the rows of group's bucket, taken or not
}

func (s *rollupSource) peek() (*item, error) {
	if len(s.group) > 0 {
		return s.group[0], nil
	}
	if s.look == nil {
		if err := s.read(); err != nil || s.look == nil {
			return nil, err
		}
	}
	bucket := s.bucket
	s.group, s.byWallet = []*item{s.look}, map[string]*item{s.look.wallet: s.look}
	for {
		if err := s.read(); err != nil {
			return nil, err
		}
		if s.look == nil || s.bucket != bucket {
			break
		}
		s.group = append(s.group, s.look)
		s.byWallet[s.look.wallet] = s.look
	}
	slices.SortFunc(s.group, func(a, b *item) int { return a.at.compare(b.at) })
	return s.group[0], nil
}

// read reads the next row into look (nil at the end).
func (s *rollupSource) read() error {
	s.look = nil
	if ok, err := next(&s.rows); !ok {
		return err
	}
	var bucket, account, first, last int64
	var name string
	var sums [2 * len(perTickKinds)]int64
	dest := []any{&bucket, &account, &name, &first, &last}
	for i := range sums {
		dest = append(dest, &sums[i])
	}
	if err := s.rows.Scan(dest...); err != nil {
		return err
	}
	it := &item{kind: itemRollup, at: place{tick: uint64(last), phase: 1, sub: account}, wallet: name, first: uint64(first), last: uint64(last)}
	for i := range perTickKinds {
		it.counts[i], it.amounts[i] = sums[2*i], units.Credits(sums[2*i+1])
	}
	s.look, s.bucket = it, bucket
	return nil
}

func (s *rollupSource) pop() { s.group = s.group[1:] }

// inside reports whether the transaction stored whole h lies inside the
// span of a rollup of its wallet: after the rollup's first postings and
// before its last. Such a rollup is in the bucket at hand or none is: the
// walk takes h before the rollups after it.
func (s *rollupSource) inside(h *item) bool {
	r := s.byWallet[h.wallet]
	return r != nil && (place{tick: r.first, phase: 1}).before(h.at) && h.at.before(r.at)
}

// wholeSource reads the transactions stored whole in the order of place,
// each as an item per account it moved (or a change of terms).
type wholeSource struct {
	rows  *sql.Rows
	cell  string
	look  *wholeRow // the first row of the next transaction, read ahead
	queue []*item
}

// wholeRow is a row of the query of transactions stored whole: a
// transaction and one of its entries (or none).
type wholeRow struct {
	id                             int64
	key, kind, memo                string
	tick                           int64
	after                          sql.NullInt64
	account, termsWallet           sql.NullString
	amount, rate, cap, wRate, wCap sql.NullInt64
}

func (s *wholeSource) read() error {
	s.look = nil
	if ok, err := next(&s.rows); !ok {
		return err
	}
	r := &wholeRow{}
	if err := s.rows.Scan(&r.id, &r.key, &r.kind, &r.tick, &r.after, &r.memo, &r.account, &r.amount,
		&r.termsWallet, &r.rate, &r.cap, &r.wRate, &r.wCap); err != nil {
		return err
	}
	s.look = r
	return nil
}

func (s *wholeSource) peek() (*item, error) {
	for len(s.queue) == 0 {
		if s.look == nil {
			if err := s.read(); err != nil || s.look == nil {
				return nil, err
			}
		}
		first := s.look
		type leg struct {
			account string
			amount  units.Credits
		}
		var legs []leg
		for s.look != nil && s.look.id == first.id {
			if a := s.look.account; a.Valid {
				i := slices.IndexFunc(legs, func(l leg) bool { return l.account == a.String })
				if i < 0 {
					legs = append(legs, leg{account: a.String})
					i = len(legs) - 1
				}
				legs[i].amount += units.Credits(s.look.amount.Int64)
			}
			if err := s.read(); err != nil {
				return nil, err
			}
		}
		at := place{tick: uint64(first.tick), sub: first.id}
		if first.after.Valid {
			at.tick = uint64(max(first.tick, first.after.Int64))
			if first.after.Int64 >= first.tick {
				at.phase = 2
			}
		}
		base := item{kind: itemWhole, at: at, id: first.id, key: first.key, txKind: Kind(first.kind), memo: first.memo,
			legacy: !first.after.Valid, first: at.tick, last: at.tick}
		var terms *TermsChange
		if first.termsWallet.Valid {
			terms = &TermsChange{Wallet: first.termsWallet.String, TapRate: units.Credits(first.rate.Int64), TapCap: units.Credits(first.cap.Int64),
				WasRate: units.Credits(first.wRate.Int64), WasCap: units.Credits(first.wCap.Int64)}
		}
		wallets := slices.ContainsFunc(legs, func(l leg) bool { return l.account != Mint && l.account != Burn })
		for _, l := range legs {
			system := l.account == Mint || l.account == Burn
			if wallets && system {
				continue
			}
			it := base
			it.wallet, it.amount, it.system = l.account, l.amount, system
			it.at.leg = len(s.queue)
			if terms != nil && terms.Wallet == l.account {
				it.terms, terms = terms, nil
			}
			s.queue = append(s.queue, &it)
		}
		if terms != nil && (s.cell == "" || s.cell == terms.Wallet) {
			it := base
			it.wallet, it.terms = terms.Wallet, terms
			it.at.leg = len(s.queue)
			s.queue = append(s.queue, &it)
		}
	}
	return s.queue[0], nil
}

func (s *wholeSource) pop() { s.queue = s.queue[1:] }
