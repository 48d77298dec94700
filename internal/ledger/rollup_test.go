package ledger

import (
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// rollupOpts keeps 10 ticks of per-tick postings and rolls them up in
// buckets of 5, in steps of at most 3 rows.
var rollupOpts = Options{Tick: time.Second, Keep: 10 * time.Second, Bucket: 5 * time.Second, stepRows: 3}

// openWith opens a fresh ledger with opts, closed at cleanup.
func openWith(t *testing.T, opts Options) (*Ledger, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(t.Context(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

// bucketSum is what a rollup row should hold for one kind.
type bucketSum struct {
	n   int64
	sum units.Credits
}

// postRollupFixture posts ticks 1..40 to wallets a (with a tap), b and c
// (closed at tick 30), b and a earning income too, and returns, per
// wallet, bucket (of 5 ticks) and kind, what was posted per tick.
func postRollupFixture(t *testing.T, l *Ledger) map[string]map[uint64]map[Kind]bucketSum {
	t.Helper()
	return postRollupTicks(t, l, true)
}

// postRollupTicks is postRollupFixture, without income unless income: then
// it posts exactly what the code of schema version 2 posted to make
// testdata/ledger-v2.db (see TestMigrateV2).
func postRollupTicks(t *testing.T, l *Ledger, income bool) map[string]map[uint64]map[Kind]bucketSum {
	t.Helper()
	ctx := t.Context()
	for _, w := range []WalletSpec{
		{Name: "a", Endowment: 1_000_000, TapRate: 10, TapCap: 10_000_000},
		{Name: "b", Endowment: 1_000_000},
		{Name: "c", Endowment: 1_000},
	} {
		if _, err := l.OpenWallet(ctx, "open/cell:"+w.Name, 0, w); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]map[uint64]map[Kind]bucketSum{}
	note := func(w string, tick uint64, k Kind, a units.Credits) {
		if want[w] == nil {
			want[w] = map[uint64]map[Kind]bucketSum{}
		}
		b := tick / 5 * 5
		if want[w][b] == nil {
			want[w][b] = map[Kind]bucketSum{}
		}
		s := want[w][b][k]
		s.n++
		s.sum += a
		want[w][b][k] = s
	}
	for tick := uint64(1); tick <= 40; tick++ {
		var txs []Tx
		charge := func(w string, k Kind, a units.Credits) {
			txs = append(txs, Tx{Key: Key(tick, w, string(k)), Kind: k, Tick: tick, Wallet: w, Entries: []Entry{{w, -a}, {Burn, a}}})
			note(w, tick, k, a)
		}
		tap := units.Credits(tick)
		txs = append(txs, Tx{Key: Key(tick, "a", string(KindTap)), Kind: KindTap, Tick: tick, Wallet: "a", Entries: []Entry{{Mint, -tap}, {"a", tap}}})
		note("a", tick, KindTap, tap)
		charge("a", KindPayment, units.Credits(100+tick))
		charge("a", KindTax, 3)
		if tick%3 != 0 {
			charge("b", KindPayment, units.Credits(200+tick))
		}
		if tick%4 == 0 {
			charge("b", KindEnergy, 7)
			charge("b", KindRent, 1)
		}
		if tick < 30 && tick%2 == 0 {
			charge("c", KindPayment, 2)
		}
		earn := func(w string, a units.Credits) {
			txs = append(txs, Tx{Key: Key(tick, w, string(KindIncome)), Kind: KindIncome, Tick: tick, Wallet: w, Entries: []Entry{{Mint, -a}, {w, a}}})
			note(w, tick, KindIncome, a)
		}
		if income && tick%5 != 1 {
			earn("b", units.Credits(1000+tick))
		}
		if income && tick%10 == 0 {
			// Beside a's tap, in the same row.
			earn("a", 50)
		}
		if tick == 30 {
			txs = append(txs, Tx{Key: Key(tick, "c", "close"), Kind: KindClose, Tick: tick, Wallet: "c"})
		}
		if tick == 7 {
			// Whole transactions among the per-tick postings.
			txs = append(txs, Tx{Key: "fund/cell:b/1", Kind: KindFund, Tick: 0, Wallet: "b", Entries: []Entry{{Mint, -500}, {"b", 500}}},
				Tx{Key: "refund/7/b", Kind: KindRefund, Tick: tick, Wallet: "b", Entries: []Entry{{Burn, -9}, {"b", 9}}})
			if income {
				txs = append(txs, Tx{Key: "income/cell:b/bonus", Kind: KindIncome, Tick: tick, Wallet: "b", Memo: "a bonus, stored whole",
					Entries: []Entry{{Mint, -300}, {"b", 300}}})
			}
		}
		if _, err := l.Apply(ctx, txs...); err != nil {
			t.Fatalf("tick %d: %v", tick, err)
		}
	}
	return want
}

// balances returns every account's stored balance.
func balances(t *testing.T, l *Ledger) map[string]units.Credits {
	t.Helper()
	as, err := l.Accounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]units.Credits{}
	for _, a := range as {
		m[a.Name] = a.Balance
	}
	return m
}

func TestRollup(t *testing.T) {
	ctx := t.Context()
	l, _ := openWith(t, rollupOpts)
	want := postRollupFixture(t, l)
	before := mustVerify(t, l)
	bals := balances(t, l)
	if before.Postings == 0 || before.RolledUp != 0 || before.Txs != before.Postings+7 {
		t.Fatalf("before the rollup: %+v", before)
	}

	for _, step := range []struct {
		now       uint64
		below     uint64
		postings  bool // whether this rollup folds anything
		wantSteps int
	}{
		{now: 8, below: 0}, // the window is not full yet
		{now: 40, below: 30, postings: true},
		{now: 40, below: 30}, // again: nothing to do
		{now: 43, below: 30}, // 43+1−10 = 34: bucket 30..34 not whole yet
		{now: 44, below: 35, postings: true},
	} {
		r, err := l.Rollup(ctx, step.now)
		if err != nil {
			t.Fatalf("rollup at %d: %v", step.now, err)
		}
		if r.Below != step.below || (r.Postings > 0) != step.postings || (r.Steps > 0) != step.postings {
			t.Errorf("rollup at %d: %+v, want below %d, folding %t", step.now, r, step.below, step.postings)
		}
		rep := mustVerify(t, l)
		if rep.Minted != before.Minted || rep.Burned != before.Burned || rep.Balances != before.Balances {
			t.Errorf("rollup at %d moved money: %+v, before %+v", step.now, rep, before)
		}
		if rep.Postings+rep.RolledUp != before.Postings || rep.RolledBelow != step.below {
			t.Errorf("rollup at %d: %d postings kept + %d rolled up, want %d; watermark %d", step.now, rep.Postings, rep.RolledUp, before.Postings, rep.RolledBelow)
		}
		if got := balances(t, l); !maps.Equal(got, bals) {
			t.Errorf("rollup at %d changed balances: %v, want %v", step.now, got, bals)
		}
	}
	// Steps of 3 rows: more steps than buckets.
	if r, err := l.Rollup(ctx, 1000); err != nil || r.Steps < 2 || r.Below != 990 {
		t.Errorf("rollup of the rest: %+v, %v", r, err)
	}
	rep := mustVerify(t, l)
	if rep.Postings != 0 || rep.RolledUp != before.Postings || rep.Balances != before.Balances {
		t.Errorf("all rolled up: %+v", rep)
	}

	// Every rollup row holds what was posted in its bucket.
	rows, err := l.db.QueryContext(ctx, `SELECT a.name, r.bucket, r.first_tick, r.last_tick,
		r.n_tap, r.tap, r.n_income, r.income, r.n_payment, r.payment, r.n_energy, r.energy, r.n_tax, r.tax, r.n_rent, r.rent, r.net
		FROM rollups r JOIN accounts a ON a.id = r.account ORDER BY a.name, r.bucket`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]map[uint64]map[Kind]bucketSum{}
	kinds := []Kind{KindTap, KindIncome, KindPayment, KindEnergy, KindTax, KindRent} // as selected
	for rows.Next() {
		var name string
		var bucket, first, last uint64
		c := make([]bucketSum, len(kinds))
		var net units.Credits
		if err := rows.Scan(&name, &bucket, &first, &last, &c[0].n, &c[0].sum, &c[1].n, &c[1].sum, &c[2].n, &c[2].sum,
			&c[3].n, &c[3].sum, &c[4].n, &c[4].sum, &c[5].n, &c[5].sum, &net); err != nil {
			t.Fatal(err)
		}
		if first < bucket || last >= bucket+5 || last < first {
			t.Errorf("%s bucket %d spans ticks %d to %d", name, bucket, first, last)
		}
		if got[name] == nil {
			got[name] = map[uint64]map[Kind]bucketSum{}
		}
		got[name][bucket] = map[Kind]bucketSum{}
		var wantNet units.Credits
		for i, k := range kinds {
			if c[i].n > 0 {
				got[name][bucket][k] = c[i]
			}
			if k == KindTap || k == KindIncome {
				wantNet += c[i].sum
			} else {
				wantNet -= c[i].sum
			}
		}
		if net != wantNet {
			t.Errorf("%s bucket %d: net %d, want %d", name, bucket, net, wantNet)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rollups\n%v\nwant\n%v", got, want)
	}

	var text strings.Builder
	if err := rep.WriteText(&text, "x"); err != nil {
		t.Fatal(err)
	}
	if line := fmt.Sprintf("0 of the transactions are per-tick postings; %d rollups replace %d per-tick postings of the ticks below 990", rep.Rollups, rep.RolledUp); !strings.Contains(text.String(), line) {
		t.Errorf("report lacks %q:\n%s", line, text.String())
	}
	if last, err := l.LastTick(ctx); err != nil || last != 989 {
		t.Errorf("last tick %d, %v; want 989, the tick below the watermark", last, err)
	}
}

// TestMaintainSteps: Maintain does one rollup step a call, says when more
// is due, and gets there in as many calls as Rollup takes steps.
func TestMaintainSteps(t *testing.T) {
	ctx := t.Context()
	l, _ := openWith(t, rollupOpts)
	postRollupFixture(t, l)
	calls, due := 0, true
	for ; due; calls++ {
		if calls > 100 {
			t.Fatal("Maintain never caught up")
		}
		m, err := l.Maintain(ctx, 40)
		if err != nil {
			t.Fatal(err)
		}
		if m.Rollup.Steps > 1 || m.Checkpoint.Mode != CheckpointPassive {
			t.Fatalf("call %d: %+v, want one rollup step at most and a passive checkpoint", calls, m)
		}
		due = m.Rollup.Due
	}
	rep := mustVerify(t, l)
	// The same ledger rolled up at once.
	l2, _ := openWith(t, rollupOpts)
	postRollupFixture(t, l2)
	r, err := l2.Rollup(ctx, 40)
	if err != nil {
		t.Fatal(err)
	}
	if rep.RolledBelow != 30 || calls != r.Steps || r.Steps < 2 || r.Due {
		t.Errorf("%d calls to roll up below %d; Rollup took %d steps (%+v)", calls, rep.RolledBelow, r.Steps, r)
	}
	if m, err := l.Maintain(ctx, 40); err != nil || m.Rollup.Steps != 0 || m.Rollup.Due {
		t.Errorf("nothing due: %+v, %v", m, err)
	}
}

// TestRollupReplays: within the window a replayed per-tick posting is a
// duplicate; below the watermark it is refused, as is a new one; whole
// transactions are never rolled up.
func TestRollupReplays(t *testing.T) {
	ctx := t.Context()
	l, _ := openWith(t, rollupOpts)
	postRollupFixture(t, l)
	if _, err := l.Rollup(ctx, 40); err != nil {
		t.Fatal(err)
	}
	before := mustVerify(t, l)
	pay := func(tick uint64, w string, a units.Credits) Tx {
		return Tx{Key: Key(tick, w, string(KindPayment)), Kind: KindPayment, Tick: tick, Wallet: w, Entries: []Entry{{w, -a}, {Burn, a}}}
	}
	earn := func(tick uint64, w string, a units.Credits) Tx {
		return Tx{Key: Key(tick, w, string(KindIncome)), Kind: KindIncome, Tick: tick, Wallet: w, Entries: []Entry{{Mint, -a}, {w, a}}}
	}
	for _, tc := range []struct {
		name string
		tx   Tx
		err  error
		dup  bool
	}{
		{"replay in the window", pay(38, "a", 138), nil, true},
		{"replay in the window, other amount", pay(38, "a", 139), ErrKeyConflict, false},
		{"replay at the window's first tick", pay(30, "a", 130), nil, true},
		{"replay of a rolled-up tick", pay(29, "a", 129), ErrRolledUp, false},
		{"rolled-up tick, other amount", pay(29, "a", 1), ErrRolledUp, false},
		{"new posting at a rolled-up tick", pay(12, "b", 5), ErrRolledUp, false},
		{"new posting at tick 0", pay(0, "b", 5), ErrRolledUp, false},
		{"income replayed in the window", earn(32, "b", 1032), nil, true},
		{"income replayed in the window, other amount", earn(32, "b", 1), ErrKeyConflict, false},
		{"income replayed at a rolled-up tick", earn(12, "b", 1012), ErrRolledUp, false},
		{"new income at a rolled-up tick", earn(11, "b", 5), ErrRolledUp, false},
		{"a whole transaction under a rolled-up per-tick key", Tx{Key: Key(12, "b", string(KindPayment)), Kind: KindPayment, Tick: 12, Wallet: "b", Memo: "m",
			Entries: []Entry{{"b", -5}, {Burn, 5}}}, ErrRolledUp, false},
		{"replay of a whole transaction", Tx{Key: "fund/cell:b/1", Kind: KindFund, Tick: 0, Wallet: "b", Entries: []Entry{{Mint, -500}, {"b", 500}}}, nil, true},
		{"replay of a whole transaction at a rolled-up tick", Tx{Key: "refund/7/b", Kind: KindRefund, Tick: 7, Wallet: "b", Entries: []Entry{{Burn, -9}, {"b", 9}}}, nil, true},
		{"replay of a close at a rolled-up tick", Tx{Key: Key(30, "c", "close"), Kind: KindClose, Tick: 30, Wallet: "c"}, nil, true},
	} {
		rs, err := l.Apply(ctx, tc.tx)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err == nil && rs[0].Duplicate != tc.dup {
			t.Errorf("%s: %+v, want duplicate %t", tc.name, rs[0], tc.dup)
		}
		if errors.Is(err, ErrRolledUp) && !strings.Contains(err.Error(), "below the rollup watermark 30") {
			t.Errorf("%s: error %q does not say why", tc.name, err)
		}
	}
	// New whole transactions go in at any tick.
	if _, err := l.Fund(ctx, "fund/cell:b/2", 0, "b", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Charge(ctx, "kill/cell:b", 0, "b", 1, KindTax); err != nil {
		t.Fatal(err)
	}
	after := mustVerify(t, l)
	if after.Minted != before.Minted+1 || after.Burned != before.Burned+1 {
		t.Errorf("after the replays: %+v, before %+v", after, before)
	}
	// The engine continues past the watermark.
	if last, err := l.LastTick(ctx); err != nil || last != 40 {
		t.Errorf("last tick %d, %v", last, err)
	}
	if _, err := l.Apply(ctx, pay(41, "a", 1)); err != nil {
		t.Error(err)
	}
}

// TestRollupOptions: the window in ticks, and settings Open refuses.
func TestRollupOptions(t *testing.T) {
	for _, tc := range []struct {
		name         string
		opts         Options
		keep, bucket uint64
		err          bool
	}{
		{"defaults: 10 Hz, an hour, a minute", Options{}, 36_000, 600, false},
		{"1 Hz", Options{Tick: time.Second}, 3600, 60, false},
		{"keep rounds up to whole ticks", Options{Tick: 300 * time.Millisecond, Keep: time.Second, Bucket: time.Second}, 4, 3, false},
		{"keep for ever", Options{Keep: -1}, 0, 600, false},
		{"keep shorter than a bucket", Options{Keep: time.Second, Bucket: time.Minute}, 0, 0, true},
		{"bucket shorter than a tick", Options{Tick: time.Second, Bucket: time.Millisecond}, 0, 0, true},
		{"negative tick", Options{Tick: -time.Second}, 0, 0, true},
	} {
		r, err := tc.opts.retention()
		if (err != nil) != tc.err || (err == nil && (r.keep != tc.keep || r.bucket != tc.bucket)) {
			t.Errorf("%s: %+v, %v; want keep %d, bucket %d, error %t", tc.name, r, err, tc.keep, tc.bucket, tc.err)
		}
		if tc.err {
			if _, err := Open(t.Context(), filepath.Join(t.TempDir(), "l.db"), tc.opts); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: open: %v, want ErrInvalid", tc.name, err)
			}
		}
	}
	// Kept for ever: Rollup folds nothing.
	l, _ := openWith(t, Options{Tick: time.Second, Keep: -1, Bucket: time.Second})
	postRollupFixture(t, l)
	if r, err := l.Rollup(t.Context(), 1<<40); err != nil || r.Postings != 0 || r.Below != 0 {
		t.Errorf("rollup with no window: %+v, %v", r, err)
	}
}

// TestVerifyTamperedRollup edits a rolled-up ledger behind its back.
func TestVerifyTamperedRollup(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		want      []string
	}{
		{"rollup sum", `UPDATE rollups SET payment = payment + 5 WHERE bucket = 10 AND account = (SELECT id FROM accounts WHERE name = 'a')`,
			[]string{`rollup of "a" (account id 3) at bucket 10, ticks 10 to 14: does not balance: the wallet's net change is`, `account "burn": stored balance`, "invariant broken"}},
		{"rollup and its net", `UPDATE rollups SET payment = payment + 5, net = net - 5 WHERE bucket = 10 AND account = (SELECT id FROM accounts WHERE name = 'a')`,
			[]string{`account "a": stored balance`, `account "burn": stored balance`}},
		{"rollup, its net and the balances", `UPDATE rollups SET tax = tax + 5, net = net - 5 WHERE bucket = 10 AND account = (SELECT id FROM accounts WHERE name = 'b');
			UPDATE accounts SET balance = balance - 5 WHERE name = 'b'; UPDATE accounts SET balance = balance + 5 WHERE name = 'burn'`,
			[]string{`0 tax postings cannot sum to 5`}},
		{"count without postings", `UPDATE rollups SET n_tax = 0 WHERE bucket = 10 AND account = (SELECT id FROM accounts WHERE name = 'a')`,
			[]string{`0 tax postings cannot sum to 15`}},
		{"more postings than ticks", `UPDATE rollups SET n_payment = 6 WHERE bucket = 10 AND account = (SELECT id FROM accounts WHERE name = 'a')`,
			[]string{`6 payment postings in 5 ticks`}},
		{"rolled-up postings still kept", `UPDATE rollup_state SET below = 35`,
			[]string{`per-tick row of tick 30, account id 3: lies below the rollup watermark 35: rolled up and kept at once`}},
		{"rollup above the watermark", `UPDATE rollup_state SET below = 20`,
			[]string{`at bucket 25, ticks 25 to 29: at or above the rollup watermark 20`}},
		{"overlapping rollups", `INSERT INTO rollups SELECT account, bucket + 1, first_tick + 1, last_tick, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, -1 FROM rollups WHERE bucket = 10 AND account = 3`,
			[]string{`at bucket 11, ticks 11 to 14: overlaps the wallet's rollup that ends at tick 14`}},
		{"per-tick posting", `UPDATE ticks SET tax = tax + 1 WHERE tick = 33 AND account = 3`,
			[]string{`account "a": stored balance`}},
		{"rollup income", `UPDATE rollups SET income = income + 5 WHERE bucket = 10 AND account = (SELECT id FROM accounts WHERE name = 'b')`,
			[]string{`rollup of "b" (account id 4) at bucket 10, ticks 10 to 14: does not balance: the wallet's net change is`, `account "mint": stored balance`, "invariant broken"}},
		{"income and its net", `UPDATE rollups SET income = income + 5, net = net + 5 WHERE bucket = 10 AND account = (SELECT id FROM accounts WHERE name = 'b')`,
			[]string{`account "b": stored balance`, `account "mint": stored balance`}},
		{"more income than ticks", `UPDATE rollups SET n_income = 6 WHERE bucket = 10 AND account = (SELECT id FROM accounts WHERE name = 'b')`,
			[]string{`6 income postings in 5 ticks`}},
		{"income sum without postings", `UPDATE rollups SET n_income = 0 WHERE bucket = 10 AND account = (SELECT id FROM accounts WHERE name = 'b')`,
			[]string{`0 income postings cannot sum to 4049`}},
		{"per-tick income", `UPDATE ticks SET income = income + 1 WHERE tick = 33 AND account = 4`,
			[]string{`account "b": stored balance`, `account "mint": stored balance`}},
		{"per-tick income of nothing", `PRAGMA ignore_check_constraints = ON; UPDATE ticks SET income = 0 WHERE tick = 40 AND account = 3`,
			[]string{`per-tick row of tick 40, account id 3: holds no posting, or one of no credits or fewer`}},
		{"whole income paid to burn", `UPDATE entries SET account = 'burn' WHERE account = 'b' AND tx_id = (SELECT id FROM txs WHERE key = 'income/cell:b/bonus')`,
			[]string{`: an income, but not money minted for a wallet (mint -300, burn 300)`}},
		{"refund posing as income", `UPDATE txs SET kind = 'income' WHERE key = 'refund/7/b'`,
			[]string{`'refund/7/b': an income, but not money minted for a wallet (burn -9, b 9)`}},
		{"key held twice", `INSERT INTO txs (key, kind, tick, memo, digest) VALUES ('tick:33/cell:a/payment', 'payment', 33, '', x'00')`,
			[]string{`key "tick:33/cell:a/payment" appears twice: stored whole and as a per-tick posting`}},
		{"rollup of a system account", `UPDATE rollups SET account = 1 WHERE bucket = 10 AND account = 3`,
			[]string{`rollup of "mint" (account id 1) at bucket 10, ticks 10 to 14: no such wallet`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "ledger.db")
			l, err := Open(ctx, path, rollupOpts)
			if err != nil {
				t.Fatal(err)
			}
			postRollupFixture(t, l)
			if _, err := l.Rollup(ctx, 40); err != nil {
				t.Fatal(err)
			}
			mustVerify(t, l)
			l.Close()
			tamper(t, path, tc.sql, tc.want...)
		})
	}
}

// TestPerTickKeys: which transactions are stored per tick, and how their
// keys meet those of transactions stored whole.
func TestPerTickKeys(t *testing.T) {
	ctx := t.Context()
	l := open(t)
	if _, err := l.OpenWallet(ctx, "open/a", 0, WalletSpec{Name: "a", Endowment: 1000, TapRate: 1, TapCap: 1100}); err != nil {
		t.Fatal(err)
	}
	charge := func(key string, tick uint64, a units.Credits, memo string) Tx {
		return Tx{Key: key, Kind: KindPayment, Tick: tick, Wallet: "a", Memo: memo, Entries: []Entry{{"a", -a}, {Burn, a}}}
	}
	reversed := Tx{Key: Key(5, "a", "tax"), Kind: KindTax, Tick: 5, Wallet: "a", Entries: []Entry{{Burn, 4}, {"a", -4}}}
	canonical := Tx{Key: Key(5, "a", "tax"), Kind: KindTax, Tick: 5, Wallet: "a", Entries: []Entry{{"a", -4}, {Burn, 4}}}
	for _, s := range []struct {
		name     string
		tx       Tx
		err      error
		dup      bool
		perTick  bool // stored per tick (Result.ID 0)
		postings int64
	}{
		{"per-tick payment", charge(Key(1, "a", "payment"), 1, 10, ""), nil, false, true, 1},
		{"replayed", charge(Key(1, "a", "payment"), 1, 10, ""), nil, true, true, 1},
		{"replayed with another amount", charge(Key(1, "a", "payment"), 1, 11, ""), ErrKeyConflict, false, false, 1},
		{"same key with a memo", charge(Key(1, "a", "payment"), 1, 10, "m"), ErrKeyConflict, false, false, 1},
		{"same key, another tick in the content", charge(Key(1, "a", "payment"), 2, 10, ""), ErrKeyConflict, false, false, 1},
		{"the key of another kind", charge(Key(1, "a", "tax"), 1, 10, ""), nil, false, false, 1},
		{"a key of its own", charge("mine", 1, 10, ""), nil, false, false, 1},
		{"entries in another order: whole", reversed, nil, false, false, 1},
		{"replayed whole", reversed, nil, true, false, 1},
		{"in Charge's order under that key", canonical, ErrKeyConflict, false, false, 1},
		{"tap", Tx{Key: Key(2, "a", "tap"), Kind: KindTap, Tick: 2, Wallet: "a", Entries: []Entry{{Mint, -50}, {"a", 50}}}, nil, false, true, 2},
		{"tap past the cap", Tx{Key: Key(3, "a", "tap"), Kind: KindTap, Tick: 3, Wallet: "a", Entries: []Entry{{Mint, -500}, {"a", 500}}}, ErrInvalid, false, false, 2},
		{"energy", Tx{Key: Key(2, "a", "energy"), Kind: KindEnergy, Tick: 2, Wallet: "a", Entries: []Entry{{"a", -1}, {Burn, 1}}}, nil, false, true, 3},
		{"rent of a system account", Tx{Key: Key(2, Burn, "rent"), Kind: KindRent, Tick: 2, Wallet: Burn, Entries: []Entry{{Burn, -1}, {Burn, 1}}}, nil, false, false, 3},
		{"income, the wallet's entry first: whole", Tx{Key: Key(3, "a", "income"), Kind: KindIncome, Tick: 3, Wallet: "a", Entries: []Entry{{"a", 5}, {Mint, -5}}}, nil, false, false, 3},
		{"income past the tap cap", Tx{Key: Key(4, "a", "income"), Kind: KindIncome, Tick: 4, Wallet: "a", Entries: []Entry{{Mint, -5000}, {"a", 5000}}}, nil, false, true, 4},
		{"income replayed", Tx{Key: Key(4, "a", "income"), Kind: KindIncome, Tick: 4, Wallet: "a", Entries: []Entry{{Mint, -5000}, {"a", 5000}}}, nil, true, true, 4},
		{"income replayed with another amount", Tx{Key: Key(4, "a", "income"), Kind: KindIncome, Tick: 4, Wallet: "a", Entries: []Entry{{Mint, -1}, {"a", 1}}}, ErrKeyConflict, false, false, 4},
		{"a fund under the income's key", Tx{Key: Key(4, "a", "income"), Kind: KindFund, Tick: 4, Wallet: "a", Entries: []Entry{{Mint, -5000}, {"a", 5000}}}, ErrKeyConflict, false, false, 4},
	} {
		rs, err := l.Apply(ctx, s.tx)
		if !errors.Is(err, s.err) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.err)
		}
		if err == nil && (rs[0].Duplicate != s.dup || (rs[0].ID == 0) != s.perTick) {
			t.Errorf("%s: %+v, want duplicate %t, per tick %t", s.name, rs[0], s.dup, s.perTick)
		}
		if rep := mustVerify(t, l); rep.Postings != s.postings {
			t.Errorf("%s: %d per-tick postings, want %d", s.name, rep.Postings, s.postings)
		}
	}
	// A batch with the same per-tick posting twice, and a close between.
	rs, err := l.Apply(ctx, charge(Key(9, "a", "payment"), 9, 1, ""), charge(Key(9, "a", "payment"), 9, 1, ""),
		Tx{Key: "close/a", Kind: KindClose, Tick: 9, Wallet: "a"})
	if err != nil || rs[0].Duplicate || !rs[1].Duplicate || rs[2].ID == 0 {
		t.Fatalf("batch: %+v, %v", rs, err)
	}
	// Closed: replays are still duplicates, new postings are refused.
	if rs, err := l.Apply(ctx, charge(Key(9, "a", "payment"), 9, 1, "")); err != nil || !rs[0].Duplicate {
		t.Errorf("replay after close: %+v, %v", rs, err)
	}
	if _, err := l.Apply(ctx, charge(Key(10, "a", "payment"), 10, 1, "")); !errors.Is(err, ErrClosed) {
		t.Errorf("posting after close: %v, want ErrClosed", err)
	}
	// Recent: whole and per-tick transactions in the order written (a
	// per-tick posting after the whole transaction that was the last when
	// its row was written).
	ps, err := l.Recent(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range ps {
		keys = append(keys, p.Key)
	}
	if want := []string{"close/a", Key(9, "a", "payment"), Key(4, "a", "income"), Key(3, "a", "income"), Key(2, Burn, "rent"),
		Key(2, "a", "energy"), Key(2, "a", "tap"), Key(5, "a", "tax")}; !slices.Equal(keys, want) {
		t.Fatalf("recent %q, want %q", keys, want)
	}
	if !slices.Equal(ps[1].Entries, []Entry{{"a", -1}, {Burn, 1}}) || ps[1].Kind != KindPayment || ps[1].Tick != 9 || ps[1].ID != 0 ||
		!slices.Equal(ps[2].Entries, []Entry{{Mint, -5000}, {"a", 5000}}) || ps[2].Kind != KindIncome || ps[2].Tick != 4 || ps[2].ID != 0 ||
		!slices.Equal(ps[3].Entries, []Entry{{"a", 5}, {Mint, -5}}) || ps[3].ID == 0 ||
		!slices.Equal(ps[6].Entries, []Entry{{Mint, -50}, {"a", 50}}) || ps[4].ID == 0 {
		t.Errorf("recent per-tick postings: %+v", ps)
	}
}

// TestMigrateV1 opens a ledger of schema version 1, whose per-tick
// postings are all stored whole.
func TestMigrateV1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	old := Tx{Key: Key(3, "a", "payment"), Kind: KindPayment, Tick: 3, Wallet: "a", Entries: []Entry{{"a", -30}, {Burn, 30}}}
	open := Tx{Key: "open/a", Kind: KindEndow, Tick: 0, Wallet: "a", Open: &WalletSpec{Name: "a", Endowment: 100}}
	if _, err := db.Exec(migrations[0].sql+`
		INSERT INTO accounts (name, kind, state, balance, endowment) VALUES ('a', 'wallet', 'open', 70, 100);
		UPDATE accounts SET balance = -100 WHERE name = 'mint'; UPDATE accounts SET balance = 30 WHERE name = 'burn';
		INSERT INTO txs (id, key, kind, tick, memo, digest) VALUES (1, 'open/a', 'endow', 0, '', ?), (2, ?, 'payment', 3, '', ?);
		INSERT INTO entries VALUES (1, 0, 'mint', -100), (1, 1, 'a', 100), (2, 0, 'a', -30), (2, 1, 'burn', 30);
		PRAGMA user_version = 1;`, open.digest(), old.Key, old.digest()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep := mustVerify(t, l)
	if rep.SchemaVersion != SchemaVersion || rep.Txs != 2 || rep.Postings != 0 || rep.Minted != 100 || rep.Burned != 30 {
		t.Fatalf("migrated: %+v", rep)
	}
	// The old payment, replayed, is found whole; a new tick goes per tick.
	if rs, err := l.Apply(ctx, old); err != nil || !rs[0].Duplicate || rs[0].ID != 2 {
		t.Errorf("replay of a version 1 posting: %+v, %v", rs, err)
	}
	changed := old
	changed.Entries = []Entry{{"a", -31}, {Burn, 31}}
	if _, err := l.Apply(ctx, changed); !errors.Is(err, ErrKeyConflict) {
		t.Errorf("version 1 key with other content: %v", err)
	}
	if rs, err := l.Charge(ctx, Key(4, "a", "payment"), 4, "a", 5, KindPayment); err != nil || rs.ID != 0 {
		t.Errorf("new posting: %+v, %v", rs, err)
	}
	if rep := mustVerify(t, l); rep.Txs != 3 || rep.Postings != 1 || rep.Balances != 65 {
		t.Errorf("after a new posting: %+v", rep)
	}
}

// TestFileModes: the ledger's files are created 0640, and an existing one
// open to others is closed to them.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.db")
	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenWallet(ctx, "o", 0, WalletSpec{Name: "a", Endowment: 1}); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm", ".lock"} {
		if m := mode(t, path+suffix); m != 0o640 {
			t.Errorf("%s%s: mode %v, want 0640", path, suffix, m)
		}
	}
	l.Close()
	for _, suffix := range []string{"", ".lock"} {
		if err := os.Chmod(path+suffix, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	l, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, suffix := range []string{"", ".lock"} {
		if m := mode(t, path+suffix); m != 0o660 {
			t.Errorf("%s%s: mode %v after reopening, want 0660 (others' bits taken away)", path, suffix, m)
		}
	}
}

// mode returns the permissions of the file name.
func mode(t *testing.T, name string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
