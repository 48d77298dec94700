package ledger

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// crashEnv, when set in the environment, makes the test binary a crash
// child: "<db path> <seed> <first batch>".
const crashEnv = "MAXWELL_LEDGER_CRASH_CHILD"

func TestMain(m *testing.M) {
	if arg := os.Getenv(crashEnv); arg != "" {
		os.Exit(crashChild(arg))
	}
	if arg := os.Getenv(rollupCrashEnv); arg != "" {
		os.Exit(rollupChild(arg))
	}
	if arg := os.Getenv(readChildEnv); arg != "" {
		os.Exit(readChild(arg))
	}
	os.Exit(m.Run())
}

// crashLife is how many batches a wallet of the crash test lives.
const crashLife = 5

// crashBatch returns batch n of the crash test's engine: deterministic in
// (seed, n), so that a restarted child replays exactly what its killed
// predecessor may or may not have committed. Batch n opens wallet w<n>,
// moves money in the wallets opened by the batches before it, and closes
// the wallet opened crashLife batches ago.
func crashBatch(seed uint64, n int) []Tx {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	w := func(j int) string { return "w" + strconv.Itoa(j) }
	tick := uint64(n)
	txs := []Tx{{Key: fmt.Sprintf("b%d/open", n), Kind: KindEndow, Tick: tick,
		Open: &WalletSpec{Name: w(n), Endowment: units.Credits(1 + r.IntN(100_000)), TapRate: units.Credits(1 + r.IntN(5000)), TapCap: math.MaxInt64}}}
	for j := max(0, n-crashLife+1); j < n; j++ {
		key := func(what string) string { return fmt.Sprintf("b%d/%s/%s", n, w(j), what) }
		a := units.Credits(1 + r.IntN(40_000))
		switch r.IntN(6) {
		case 0:
			txs = append(txs, Tx{Key: key("pay"), Kind: KindPayment, Tick: tick, Wallet: w(j), Entries: []Entry{{w(j), -a}, {Burn, a}}})
		case 1:
			txs = append(txs, Tx{Key: key("energy"), Kind: KindEnergy, Tick: tick, Wallet: w(j), Entries: []Entry{{w(j), -a}, {Burn, a}}})
		case 2:
			txs = append(txs, Tx{Key: key("refund"), Kind: KindRefund, Tick: tick, Wallet: w(j), Entries: []Entry{{Burn, -a / 4}, {w(j), a / 4}}})
		case 3:
			txs = append(txs, Tx{Key: key("tap"), Kind: KindTap, Tick: tick, Wallet: w(j), Entries: []Entry{{Mint, -a}, {w(j), a}}})
		case 4:
			txs = append(txs, Tx{Key: key("fund"), Kind: KindFund, Tick: tick, Wallet: w(j), Entries: []Entry{{Mint, -a}, {w(j), a}}})
		default:
			// A tax split between two wallets in one transaction.
			o := w(max(0, n-crashLife+1))
			if o == w(j) || a < 2 {
				continue
			}
			txs = append(txs, Tx{Key: key("tax"), Kind: KindTax, Tick: tick, Wallet: w(j), Entries: []Entry{{w(j), -a / 2}, {o, -(a - a/2)}, {Burn, a}}})
		}
	}
	if j := n - crashLife; j >= 0 {
		txs = append(txs, Tx{Key: fmt.Sprintf("b%d/close", n), Kind: KindClose, Tick: tick, Wallet: w(j)})
	}
	return txs
}

// crashChild is the engine the crash test kills: it applies batches from
// the first one on, forever, and reports on stdout "try N" before applying
// batch N and "ack N <minted> <burned> <duplicates>" once Apply returned.
// Each line is one write(2) to a pipe, so the parent sees it whole or not
// at all even when the child is killed right after.
func crashChild(arg string) int {
	ctx := context.Background()
	// Checkpoint often, so that kills land in checkpoints too.
	l, seed, n, err := childLedger(ctx, arg, Options{walAutocheckpoint: 16})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	fmt.Fprintln(os.Stdout, "ready")
	for ; ; n++ {
		fmt.Fprintf(os.Stdout, "try %d\n", n)
		rs, err := l.Apply(ctx, crashBatch(seed, n)...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			return 2
		}
		minted, burned, dups := batchFigures(rs)
		fmt.Fprintf(os.Stdout, "ack %d %d %d %d\n", n, minted, burned, dups)
	}
}

// killChild runs the test binary as a crash child with env added to its
// environment, kills it with SIGKILL at a random instant (mostly once it
// said "ready", sometimes before it could open the ledger) and returns the
// lines it printed but "ready".
func killChild(t *testing.T, rng *rand.Rand, env string, round int) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var delay time.Duration
	if rng.IntN(6) == 0 {
		delay = time.Duration(rng.IntN(15_000)) * time.Microsecond
	} else {
		select {
		case l, ok := <-lines:
			if !ok || l != "ready" {
				cmd.Wait()
				t.Fatalf("round %d: child said %q instead of ready; stderr: %s", round, l, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: child not ready after 10 s", round)
		}
		delay = time.Duration(rng.IntN(40_000)) * time.Microsecond
	}
	time.Sleep(delay)
	cmd.Process.Signal(syscall.SIGKILL)
	var got []string
	for l := range lines {
		if l != "ready" {
			got = append(got, l)
		}
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("round %d: child ended with %v before the kill; stderr: %s", round, err, stderr.String())
	}
	return got
}

// childLedger parses a crash child's argument, "<db path> <seed> <first
// batch>", and opens its ledger with opts.
func childLedger(ctx context.Context, arg string, opts Options) (l *Ledger, seed uint64, first int, err error) {
	var path string
	if _, err := fmt.Sscan(arg, &path, &seed, &first); err != nil {
		return nil, 0, 0, err
	}
	l, err = Open(ctx, path, opts)
	return l, seed, first, err
}

// ack is what a child reported for one committed batch.
type ack struct {
	minted, burned units.Credits
	dups           int
}

// TestKill9 kills an engine applying batches at random instants, many times
// over, and checks after each kill that the ledger lost and duplicated
// nothing: every acknowledged batch is there exactly once, the batch in
// flight is there entirely or not at all, and minted and burned equal what
// the child acknowledged (plus the batch in flight if it made it). Each
// restarted child replays the batch in flight, which must then come back as
// all duplicates if it had committed and as all new if it had not.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const seed, rounds = 20240607, 30
	rng := rand.New(rand.NewPCG(seed, 0))
	path := filepath.Join(t.TempDir(), "ledger.db")
	acked := map[int]ack{}    // batch → its acknowledgement
	inflight := map[int]ack{} // batch → its figures, for a batch in flight found committed
	next := 0                 // first batch not known to be committed
	var sumMinted, sumBurned units.Credits
	killedMidBatch, foundCommitted := 0, 0

	for round := range rounds {
		got := killChild(t, rng, fmt.Sprintf("%s=%s %d %d", crashEnv, path, uint64(seed), next), round)

		// What the child acknowledged, and what it had in flight.
		tried := -1
		for _, l := range got {
			f := strings.Fields(l)
			switch {
			case len(f) == 2 && f[0] == "try":
				tried, _ = strconv.Atoi(f[1])
			case len(f) == 5 && f[0] == "ack":
				var b int
				var a ack
				fmt.Sscan(strings.Join(f[1:], " "), &b, &a.minted, &a.burned, &a.dups)
				if b != next {
					t.Fatalf("round %d: ack of batch %d, want %d", round, b, next)
				}
				want := 0
				if prev, ok := inflight[b]; ok {
					// Committed before the last kill and replayed now:
					// all duplicates, with the same figures.
					want = len(crashBatch(seed, b))
					if a.minted != prev.minted || a.burned != prev.burned {
						t.Errorf("batch %d replayed with minted %d burned %d, committed with %d %d", b, a.minted, a.burned, prev.minted, prev.burned)
					}
					delete(inflight, b)
				}
				if a.dups != want {
					t.Errorf("batch %d: %d duplicates, want %d", b, a.dups, want)
				}
				acked[b] = a
				sumMinted += a.minted
				sumBurned += a.burned
				next++
				tried = -1
			default:
				t.Fatalf("round %d: child said %q", round, l)
			}
		}
		if tried >= 0 && tried != next {
			t.Fatalf("round %d: in flight batch %d, want %d", round, tried, next)
		}

		// Reopen: the kernel dropped the dead child's lock.
		l, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		rep := mustVerify(t, l)
		keys := map[string]int{}
		rows, err := l.db.QueryContext(t.Context(), `SELECT key FROM txs`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			rows.Scan(&k)
			keys[k]++
		}
		rows.Close()
		want := 0
		for b := range next {
			for _, tx := range crashBatch(seed, b) {
				if keys[tx.Key] != 1 {
					t.Fatalf("round %d: acknowledged key %q is there %d times", round, tx.Key, keys[tx.Key])
				}
				want++
			}
		}
		// Batch next may be in the ledger: if this child tried it, or if an
		// earlier child committed it and this one was killed before it could
		// replay it.
		var minted, burned units.Credits
		_, committedBefore := inflight[next]
		if tried >= 0 {
			killedMidBatch++
		}
		if tried >= 0 || committedBefore {
			tried = next
			present := 0
			fly := crashBatch(seed, tried)
			var ids []any
			for _, tx := range fly {
				present += keys[tx.Key]
			}
			switch {
			case present == 0 && committedBefore:
				t.Fatalf("round %d: batch %d, committed before, has vanished", round, tried)
			case present == 0:
			case present == len(fly):
				if !committedBefore {
					foundCommitted++
				}
				want += present
				for _, tx := range fly {
					ids = append(ids, tx.Key)
				}
				q := `SELECT COALESCE(SUM(CASE account WHEN 'mint' THEN -amount ELSE 0 END), 0),
					COALESCE(SUM(CASE account WHEN 'burn' THEN amount ELSE 0 END), 0)
					FROM entries JOIN txs ON txs.id = entries.tx_id WHERE txs.key IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
				if err := l.db.QueryRowContext(t.Context(), q, ids...).Scan(&minted, &burned); err != nil {
					t.Fatal(err)
				}
				inflight[tried] = ack{minted: minted, burned: burned}
			default:
				t.Fatalf("round %d: batch %d in flight is there in part: %d of %d keys", round, tried, present, len(fly))
			}
		}
		if len(keys) != want {
			t.Fatalf("round %d: %d keys, want %d", round, len(keys), want)
		}
		if rep.Minted != sumMinted+minted || rep.Burned != sumBurned+burned {
			t.Fatalf("round %d: minted %d burned %d; acknowledged %d %d, in flight %d %d",
				round, rep.Minted, rep.Burned, sumMinted, sumBurned, minted, burned)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d rounds, %d batches acknowledged, %d kills with a batch in flight, %d of them found committed",
		rounds, len(acked), killedMidBatch, foundCommitted)
	if len(acked) == 0 || killedMidBatch == 0 {
		t.Errorf("the test exercised nothing: %d batches, %d kills mid-batch", len(acked), killedMidBatch)
	}
}

// rollupCrashEnv, when set in the environment, makes the test binary a
// crash child that rolls up: "<db path> <seed> <first batch>".
const rollupCrashEnv = "MAXWELL_LEDGER_ROLLUP_CRASH_CHILD"

// rollupCrashOpts keeps 4 ticks of per-tick postings and rolls them up in
// buckets of 2, in steps of 4 rows, so that a rollup takes about as long as
// a batch and kills land in both.
var rollupCrashOpts = Options{Tick: time.Second, Keep: 4 * time.Second, Bucket: 2 * time.Second, stepRows: 4, walAutocheckpoint: 16}

const rollupCrashWallets = 8

// rollupBatch returns batch n of the rollup crash test's engine, the
// postings of tick n+1: deterministic in (seed, n). Batch 0 opens the
// wallets; every batch charges each a payment and a tax, pays the even
// ones their tap, some of the odd ones income, and charges some for
// energy.
func rollupBatch(seed uint64, n int) []Tx {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	tick := uint64(n) + 1
	var txs []Tx
	for j := range rollupCrashWallets {
		w := "r" + strconv.Itoa(j)
		if n == 0 {
			spec := WalletSpec{Name: w, Endowment: 1 << 40}
			if j%2 == 0 {
				spec.TapRate, spec.TapCap = 1, 1<<50
			}
			txs = append(txs, Tx{Key: "open/cell:" + w, Kind: KindEndow, Open: &spec})
		}
		charge := func(k Kind, a units.Credits) {
			txs = append(txs, Tx{Key: Key(tick, w, string(k)), Kind: k, Tick: tick, Wallet: w, Entries: []Entry{{w, -a}, {Burn, a}}})
		}
		if j%2 == 0 {
			a := units.Credits(1 + r.IntN(1000))
			txs = append(txs, Tx{Key: Key(tick, w, string(KindTap)), Kind: KindTap, Tick: tick, Wallet: w, Entries: []Entry{{Mint, -a}, {w, a}}})
		} else if r.IntN(2) == 0 {
			a := units.Credits(1 + r.IntN(30_000))
			txs = append(txs, Tx{Key: Key(tick, w, string(KindIncome)), Kind: KindIncome, Tick: tick, Wallet: w, Entries: []Entry{{Mint, -a}, {w, a}}})
		}
		charge(KindPayment, units.Credits(1+r.IntN(50_000)))
		charge(KindTax, units.Credits(1+r.IntN(500)))
		if r.IntN(3) == 0 {
			charge(KindEnergy, units.Credits(1+r.IntN(100)))
		}
	}
	return txs
}

// rollupChild is the engine the rollup crash test kills: from the first
// batch on, forever, it reports "try N", applies batch N, reports
// "ack N <minted> <burned> <duplicates>", reports "roll N", rolls up at
// tick N+1 and reports "rolled N <watermark>".
func rollupChild(arg string) int {
	ctx := context.Background()
	l, seed, n, err := childLedger(ctx, arg, rollupCrashOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rollup child:", err)
		return 2
	}
	fmt.Fprintln(os.Stdout, "ready")
	for ; ; n++ {
		fmt.Fprintf(os.Stdout, "try %d\n", n)
		rs, err := l.Apply(ctx, rollupBatch(seed, n)...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rollup child:", err)
			return 2
		}
		minted, burned, dups := batchFigures(rs)
		fmt.Fprintf(os.Stdout, "ack %d %d %d %d\n", n, minted, burned, dups)
		fmt.Fprintf(os.Stdout, "roll %d\n", n)
		r, err := l.Rollup(ctx, uint64(n)+1)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rollup child:", err)
			return 2
		}
		fmt.Fprintf(os.Stdout, "rolled %d %d\n", n, r.Below)
	}
}

// batchFigures returns what a batch's results minted and burned, and how
// many of them were duplicates.
func batchFigures(rs []Result) (minted, burned units.Credits, dups int) {
	for _, r := range rs {
		for _, e := range r.Entries {
			switch e.Account {
			case Mint:
				minted -= e.Amount
			case Burn:
				burned += e.Amount
			}
		}
		if r.Duplicate {
			dups++
		}
	}
	return minted, burned, dups
}

// TestKill9Rollup kills an engine that posts per-tick batches and rolls
// them up after each, at random instants, until enough kills have landed
// inside a rollup, and checks after each kill that nothing was lost or
// counted twice: every committed batch is in the ledger once, in per-tick
// rows or in rollups (the counts of both add up to its postings), every
// balance, minted and burned equal what the committed batches move, and
// Verify passes. Each restarted child replays the batch in flight, which
// must come back as all duplicates if it had committed: the window always
// covers it.
func TestKill9Rollup(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const seed = 20260101
	rng := rand.New(rand.NewPCG(seed, 1))
	path := filepath.Join(t.TempDir(), "ledger.db")
	next := 0                // first batch not acknowledged
	committedBefore := false // batch next committed under an earlier child
	midRollup, midBatch, replayed, round := 0, 0, 0, 0
	for ; round < 80 && (round < 20 || midRollup < 3); round++ {
		got := killChild(t, rng, fmt.Sprintf("%s=%s %d %d", rollupCrashEnv, path, uint64(seed), next), round)
		tried, rolling := -1, false
		for _, l := range got {
			f := strings.Fields(l)
			var b int
			if len(f) >= 2 {
				b, _ = strconv.Atoi(f[1])
			}
			switch {
			case len(f) == 2 && f[0] == "try":
				tried = b
			case len(f) == 5 && f[0] == "ack":
				var minted, burned units.Credits
				var dups int
				fmt.Sscan(strings.Join(f[2:], " "), &minted, &burned, &dups)
				batch := rollupBatch(seed, b)
				if b != next {
					t.Fatalf("round %d: ack of batch %d, want %d", round, b, next)
				}
				want := 0
				if committedBefore {
					want = len(batch) // replayed after its commit: all duplicates
					replayed++
				}
				if dups != want {
					t.Errorf("round %d: batch %d had %d duplicates, want %d", round, b, dups, want)
				}
				if m, bu := batchMoves(batch); minted != m || burned != bu {
					t.Errorf("round %d: batch %d minted %d burned %d, want %d %d", round, b, minted, burned, m, bu)
				}
				next++
				committedBefore, tried = false, -1
			case len(f) == 2 && f[0] == "roll":
				rolling = true
			case len(f) == 3 && f[0] == "rolled":
				rolling = false
			default:
				t.Fatalf("round %d: child said %q", round, l)
			}
		}
		if rolling {
			midRollup++
		}
		if tried >= 0 {
			midBatch++
		}

		l, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		rep := mustVerify(t, l)
		// Is batch next in the ledger? All of it or none.
		var rows int
		if err := l.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM ticks WHERE tick = ?`, next+1).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		switch {
		case rows == rollupCrashWallets:
			committedBefore = true
		case rows == 0 && committedBefore:
			t.Fatalf("round %d: batch %d, committed before, has vanished", round, next)
		case rows != 0:
			t.Fatalf("round %d: batch %d is there in part: %d of %d rows", round, next, rows, rollupCrashWallets)
		}
		committed := next
		if committedBefore {
			committed++
		}
		// What the committed batches move.
		want := map[string]units.Credits{}
		var postings int64
		for b := range committed {
			for _, tx := range rollupBatch(seed, b) {
				if tx.Open != nil {
					want[tx.Open.Name] += tx.Open.Endowment
					want[Mint] -= tx.Open.Endowment
					continue
				}
				postings++
				for _, e := range tx.Entries {
					want[e.Account] += e.Amount
				}
			}
		}
		if got := balances(t, l); committed > 0 && !maps.Equal(got, want) {
			t.Fatalf("round %d: balances %v, want %v", round, got, want)
		}
		if rep.Postings+rep.RolledUp != postings || rep.Minted != -want[Mint] || rep.Burned != want[Burn] {
			t.Fatalf("round %d: %d per-tick postings + %d rolled up, want %d; minted %d burned %d, want %d %d",
				round, rep.Postings, rep.RolledUp, postings, rep.Minted, rep.Burned, -want[Mint], want[Burn])
		}
		if keep := uint64(4); rep.RolledBelow+keep > uint64(committed)+1 && rep.RolledBelow > 0 {
			t.Fatalf("round %d: rolled up below tick %d with %d ticks committed: the window of %d ticks was not kept", round, rep.RolledBelow, committed, keep)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Open(t.Context(), path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, l)
	l.Close()
	t.Logf("%d rounds, %d batches acknowledged, %d kills mid-batch (%d batches found committed and replayed as duplicates), %d mid-rollup; %d postings rolled up into %d rows below tick %d, %d kept",
		round, next, midBatch, replayed, midRollup, rep.RolledUp, rep.Rollups, rep.RolledBelow, rep.Postings)
	if midRollup == 0 || midBatch == 0 || rep.RolledUp == 0 {
		t.Errorf("the test exercised too little: %d kills mid-rollup, %d mid-batch, %d postings rolled up", midRollup, midBatch, rep.RolledUp)
	}
}

// batchMoves returns what a batch mints and burns.
func batchMoves(txs []Tx) (minted, burned units.Credits) {
	for _, tx := range txs {
		if tx.Open != nil {
			minted += tx.Open.Endowment
		}
		for _, e := range tx.Entries {
			switch e.Account {
			case Mint:
				minted -= e.Amount
			case Burn:
				burned += e.Amount
			}
		}
	}
	return minted, burned
}
