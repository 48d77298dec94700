package dash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"
	"github.com/muesli/termenv"
)

func testSnapshot() Snapshot {
	var prices []PricePoint
	for i := range 30 {
		cl := units.Credits(1_500_000 + 500_000*math.Sin(float64(i)/4))
		prices = append(prices, PricePoint{Tick: uint64(100 + i), Reserve: units.Credits(1_000_000 + 10_000*i), Clearing: cl, Sold: i != 20})
	}
	var hist []float64
	for i := range 40 {
		hist = append(hist, 65+float64(i%10)*0.7)
	}
	return Snapshot{
		Tick:   129,
		Uptime: 2*time.Minute + 9*time.Second,
		Thermal: Thermal{
			Temperature: Reading{Value: 71.3, Tier: "sensor", Source: `thermal_zone "x86_pkg_temp"`},
			Setpoint:    70,
			Power:       Reading{Value: 12.4, Tier: "model", Source: "linear-utilisation"},
			History:     hist,
		},
		Prices: prices,
		Auction: []BidRow{
			{Agent: "scientist", Bid: 2_400_000, Won: true, Slot: 1, Weight: 0.6, Payment: 1_900_000},
			{Agent: "miner", Bid: 1_900_000, Won: true, Slot: 2, Weight: 0.4, Payment: 1_200_000},
			{Agent: "crawler", Bid: 500_000},
		},
		Wallets: []WalletRow{
			{Agent: "scientist", Balance: 120_000_000, BurnRate: 1_900_000, TaxPaid: 400_000, State: life.Running},
			{Agent: "miner", Balance: 14_000_000, BurnRate: 1_200_000, TaxPaid: 7_500_000, State: life.Running},
			{Agent: "crawler", Balance: 55_000_000, BurnRate: 0, TaxPaid: 0, State: life.Paused},
			{Agent: "zombie", Balance: -3_000_000, BurnRate: 0, TaxPaid: 2_000_000, State: life.Dead},
		},
		Events: []Event{
			{At: 10 * time.Second, Kind: event.SensorRecovered, Detail: "thermal zone found"},
			{At: 64 * time.Second, Kind: event.Apoptosis, Agent: "zombie", Detail: "balance below zero"},
			{At: 99 * time.Second, Kind: event.FailSafe, Detail: "temperature above limit, all paused"},
		},
	}
}

func asciiRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	return r
}

// fakeActions records calls and fails those on agents in fail.
type fakeActions struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]bool
}

func (f *fakeActions) do(call, agent string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if f.fail[agent] {
		return errors.New("permission denied")
	}
	return nil
}

func (f *fakeActions) Pause(_ context.Context, a string) error  { return f.do("pause "+a, a) }
func (f *fakeActions) Resume(_ context.Context, a string) error { return f.do("resume "+a, a) }
func (f *fakeActions) Kill(_ context.Context, a string) error   { return f.do("kill "+a, a) }
func (f *fakeActions) Fund(_ context.Context, a string, x units.Credits) error {
	return f.do(fmt.Sprintf("fund %s %d", a, x), a)
}

func newModel(t *testing.T, acts Actions, opts Options) Model {
	t.Helper()
	opts.Renderer = asciiRenderer()
	m := New(t.Context(), nil, acts, opts)
	return update(t, m, SnapshotMsg{testSnapshot()})
}

func update(t *testing.T, m Model, msgs ...tea.Msg) Model {
	t.Helper()
	for _, msg := range msgs {
		nm, _ := m.Update(msg)
		m = nm.(Model)
	}
	return m
}

// key turns "down", "enter", "esc", "tab" or text into key messages.
func keys(ks ...string) []tea.Msg {
	var out []tea.Msg
	for _, k := range ks {
		switch k {
		case "down":
			out = append(out, tea.KeyMsg{Type: tea.KeyDown})
		case "up":
			out = append(out, tea.KeyMsg{Type: tea.KeyUp})
		case "enter":
			out = append(out, tea.KeyMsg{Type: tea.KeyEnter})
		case "esc":
			out = append(out, tea.KeyMsg{Type: tea.KeyEsc})
		case "tab":
			out = append(out, tea.KeyMsg{Type: tea.KeyTab})
		case "backspace":
			out = append(out, tea.KeyMsg{Type: tea.KeyBackspace})
		default:
			for _, r := range k {
				out = append(out, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
			}
		}
	}
	return out
}

func checkSize(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d columns wide, want <= %d: %q", i, n, w, l)
		}
	}
}

func TestView(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {MinWidth, MinHeight}, {200, 60}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			m := update(t, newModel(t, nil, Options{}), tea.WindowSizeMsg{Width: size[0], Height: size[1]})
			v := m.View()
			checkSize(t, v, size[0], size[1])
			if strings.Contains(v, "\x1b[") {
				t.Errorf("escape sequences in an Ascii view: %q", v)
			}
			for _, want := range []string{"THERMAL", "PRICE", "WALLETS", "AUCTION tick 129", "EVENTS", "[read-only]"} {
				if !strings.Contains(v, want) {
					t.Errorf("no %q in\n%s", want, v)
				}
			}
		})
	}

	m := update(t, newModel(t, nil, Options{}), tea.WindowSizeMsg{Width: 100, Height: 30})
	v := m.View()
	for _, want := range []string{
		"temp  71.3°C set 70.0 +1.3 [sensor]",
		"power 12.4 W [estimated]",
		`from  thermal_zone "x86_pkg_temp"; linear-utilis…`,
		"reserve  1.29M",
		"clearing 1.91M", // 1.5+0.5 sin(29/4) million credits
		" ! miner",       // 14 / 1.2 = 11.7 s left < 30 s
		"›  scientist",   // selected
		"   scientist ",  // in the auction table, not focused
		"paused", "dead", "1m03s", "∞",
		"1m04s apoptosis        zombie: balance below zero",
		"1m39s fail_safe        temperature above limit, all paused",
		"60%",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("no %q in\n%s", want, v)
		}
	}
	wide := update(t, m, tea.WindowSizeMsg{Width: 140, Height: 30}).View()
	if want := `from  thermal_zone "x86_pkg_temp"; linear-utilisation`; !strings.Contains(wide, want) {
		t.Errorf("no %q in\n%s", want, wide)
	}
	if strings.Contains(v, "! zombie") || strings.Contains(v, "! crawler") || strings.Contains(v, "! scientist") {
		t.Errorf("low-balance warning on a dead agent or one that burns nothing:\n%s", v)
	}
	if !strings.Contains(v, "▁") || !strings.Contains(v, "█") {
		t.Errorf("no sparkline:\n%s", v)
	}
}

func TestWaitingAndTooSmall(t *testing.T) {
	m := New(t.Context(), nil, nil, Options{Renderer: asciiRenderer()})
	if v := m.View(); !strings.Contains(v, "waiting for the daemon") {
		t.Errorf("before a snapshot:\n%s", v)
	} else {
		checkSize(t, v, 80, 24)
	}
	for _, size := range [][2]int{{40, 10}, {MinWidth - 1, 24}, {80, MinHeight - 1}, {1, 1}, {0, 0}} {
		m := update(t, newModel(t, nil, Options{}), tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		v := m.View()
		if size[0] >= 20 && !strings.Contains(v, "terminal too small") {
			t.Errorf("%v: no too-small message:\n%s", size, v)
		}
		checkSize(t, v, max(size[0], 1), max(size[1], 1))
	}
}

func TestSortFilterSelect(t *testing.T) {
	tests := []struct {
		keys    []string
		table   Table
		want    []string
		sel     string
		heading string
	}{
		{nil, WalletsTable, []string{"scientist", "miner", "crawler", "zombie"}, "scientist", ""},
		{[]string{"1"}, WalletsTable, []string{"crawler", "miner", "scientist", "zombie"}, "scientist", "sort AGENT ↑"},
		{[]string{"3"}, WalletsTable, []string{"zombie", "miner", "crawler", "scientist"}, "scientist", "sort BALANCE ↑"},
		{[]string{"3", "3"}, WalletsTable, []string{"scientist", "crawler", "miner", "zombie"}, "scientist", "sort BALANCE ↓"},
		{[]string{"3", "S"}, WalletsTable, []string{"scientist", "crawler", "miner", "zombie"}, "scientist", "sort BALANCE ↓"},
		{[]string{"2"}, WalletsTable, []string{"scientist", "miner", "crawler", "zombie"}, "scientist", "sort STATE ↑"},
		{[]string{"5", "5"}, WalletsTable, []string{"miner", "zombie", "scientist", "crawler"}, "scientist", "sort TAX PAID ↓"},
		// Time left: miner 11.7 s, scientist 63 s, then those burning nothing.
		{[]string{"6"}, WalletsTable, []string{"miner", "scientist", "crawler", "zombie"}, "scientist", "sort LEFT ↑"},
		{[]string{"s", "s"}, WalletsTable, []string{"scientist", "miner", "crawler", "zombie"}, "scientist", "sort STATE ↑"},
		{[]string{"3", "0"}, WalletsTable, []string{"scientist", "miner", "crawler", "zombie"}, "scientist", ""},
		{[]string{"down", "down"}, WalletsTable, []string{"scientist", "miner", "crawler", "zombie"}, "crawler", ""},
		{[]string{"down", "down", "down", "down", "down"}, WalletsTable, []string{"scientist", "miner", "crawler", "zombie"}, "zombie", ""},
		{[]string{"G", "up"}, WalletsTable, []string{"scientist", "miner", "crawler", "zombie"}, "crawler", ""},
		// Selection follows the agent through a re-sort.
		{[]string{"down", "3"}, WalletsTable, []string{"zombie", "miner", "crawler", "scientist"}, "miner", ""},
		{[]string{"/", "er", "enter"}, WalletsTable, []string{"miner", "crawler"}, "miner", ""},
		{[]string{"/", "MIN", "enter"}, WalletsTable, []string{"miner"}, "miner", ""},
		{[]string{"/", "zz", "backspace", "enter"}, WalletsTable, []string{"zombie"}, "zombie", ""},
		{[]string{"/", "er", "enter", "esc"}, WalletsTable, []string{"scientist", "miner", "crawler", "zombie"}, "miner", ""},
		{[]string{"/", "er", "esc"}, WalletsTable, []string{"scientist", "miner", "crawler", "zombie"}, "miner", ""},
		{[]string{"tab"}, AuctionTable, []string{"scientist", "miner", "crawler"}, "scientist", ""},
		{[]string{"tab", "2"}, AuctionTable, []string{"crawler", "miner", "scientist"}, "scientist", "sort BID ↑"},
		{[]string{"tab", "3", "3"}, AuctionTable, []string{"scientist", "miner", "crawler"}, "scientist", "sort WON ↓"},
		{[]string{"tab", "6"}, AuctionTable, []string{"crawler", "miner", "scientist"}, "scientist", "sort PAYMENT ↑"},
		{[]string{"tab", "down", "down"}, AuctionTable, []string{"scientist", "miner", "crawler"}, "crawler", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.keys, " "), func(t *testing.T) {
			m := update(t, newModel(t, nil, Options{Width: 100, Height: 30}), keys(tt.keys...)...)
			if m.focus != tt.table {
				t.Fatalf("focus %v, want %v", m.focus, tt.table)
			}
			if got := m.agents(); !slices.Equal(got, tt.want) {
				t.Errorf("order %q, want %q", got, tt.want)
			}
			if m.selected != tt.sel {
				t.Errorf("selected %q, want %q", m.selected, tt.sel)
			}
			v := m.View()
			if tt.heading != "" && !strings.Contains(v, tt.heading) {
				t.Errorf("no %q in\n%s", tt.heading, v)
			}
			// The selected row is marked in the focused table, and the
			// rows are drawn in the order computed.
			var order []string
			for _, l := range strings.Split(v, "\n") {
				for _, a := range []string{"scientist", "miner", "crawler", "zombie"} {
					if strings.HasPrefix(strings.TrimLeft(l, "›! "), a+" ") {
						order = append(order, a)
					}
				}
			}
			wantOrder := m.walletAgents()
			wantOrder = append(wantOrder, m.auctionAgents()...)
			if marked := strings.Count(v, "›"); marked != 1 {
				t.Errorf("%d rows marked selected, want 1", marked)
			}
			if !slices.Equal(order, wantOrder) {
				t.Errorf("drawn order %q, want %q", order, wantOrder)
			}
		})
	}
}

func (m Model) walletAgents() (out []string) {
	for _, w := range m.walletRows() {
		out = append(out, w.Agent)
	}
	return out
}

func (m Model) auctionAgents() (out []string) {
	for _, b := range m.auctionRows() {
		out = append(out, b.Agent)
	}
	return out
}

// press sends keys and runs the command the last one returned, feeding its
// message back, as the program would.
func press(t *testing.T, m Model, ks ...string) Model {
	t.Helper()
	var cmd tea.Cmd
	for _, k := range keys(ks...) {
		var nm tea.Model
		nm, cmd = m.Update(k)
		m = nm.(Model)
	}
	if cmd != nil {
		if msg := cmd(); msg != nil {
			if _, quit := msg.(tea.QuitMsg); !quit {
				m = update(t, m, msg)
			}
		}
	}
	return m
}

func TestActions(t *testing.T) {
	tests := []struct {
		keys   []string
		calls  []string
		status string
	}{
		{[]string{"down", "p"}, []string{"pause miner"}, "pause miner: done"},
		{[]string{"p"}, []string{"pause scientist"}, "pause scientist: permission denied"},
		{[]string{"down", "down", "r"}, []string{"resume crawler"}, "resume crawler: done"},
		{[]string{"down", "down", "p"}, nil, "crawler is paused, not running"},
		{[]string{"r"}, nil, "scientist is already running"},
		{[]string{"G", "p"}, nil, "zombie is dead"},
		{[]string{"down", "x"}, nil, ""},
		{[]string{"down", "x", "y"}, []string{"kill miner"}, "kill miner: done"},
		{[]string{"down", "x", "n"}, nil, "kill cancelled"},
		{[]string{"down", "f", "12_500_000", "enter"}, []string{"fund miner 12500000"}, "fund miner 12.5M: done"},
		{[]string{"down", "f", "-3", "enter"}, nil, `fund miner: "-3" is not a whole positive number of credits`},
		{[]string{"down", "f", "12.5", "enter"}, nil, `fund miner: "12.5" is not a whole positive number of credits`},
		{[]string{"down", "f", "12", "esc", "p"}, []string{"pause miner"}, "pause miner: done"},
		{[]string{"/", "nobody", "enter", "p"}, nil, "select an agent first (↑/↓)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.keys, " "), func(t *testing.T) {
			acts := &fakeActions{fail: map[string]bool{"scientist": true}}
			m := press(t, newModel(t, acts, Options{Width: 100, Height: 30}), tt.keys...)
			if !slices.Equal(acts.calls, tt.calls) {
				t.Errorf("calls %q, want %q", acts.calls, tt.calls)
			}
			if m.status != tt.status {
				t.Errorf("status %q, want %q", m.status, tt.status)
			}
			if tt.status != "" && !strings.Contains(m.View(), tt.status) {
				t.Errorf("status not shown:\n%s", m.View())
			}
		})
	}

	// The kill prompt and the fund prompt are shown.
	m := update(t, newModel(t, &fakeActions{}, Options{}), keys("down", "x")...)
	if !strings.Contains(m.View(), "kill miner? y/n") {
		t.Errorf("no kill prompt:\n%s", m.View())
	}
	m = update(t, newModel(t, &fakeActions{}, Options{}), keys("down", "f", "7")...)
	if !strings.Contains(m.View(), "fund miner, amount: 7") {
		t.Errorf("no fund prompt:\n%s", m.View())
	}

	// Read-only: explicit, or no Actions at all.
	for _, acts := range []Actions{&fakeActions{}, nil} {
		m := press(t, newModel(t, acts, Options{ReadOnly: true}), "down", "x", "y", "p", "f")
		if f, ok := acts.(*fakeActions); ok && len(f.calls) > 0 {
			t.Errorf("read-only model called %q", f.calls)
		}
		if m.mode != modeNormal || m.status != "read-only: actions are disabled" {
			t.Errorf("read-only: mode %v, status %q", m.mode, m.status)
		}
		if !strings.Contains(m.View(), "[read-only]") {
			t.Error("read-only mode not shown")
		}
	}
}

// blockingActions waits for ctx: an action must not outlive its timeout.
type blockingActions struct{ fakeActions }

func (b *blockingActions) Pause(ctx context.Context, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestActionTimeout(t *testing.T) {
	m := press(t, newModel(t, &blockingActions{}, Options{ActionTimeout: time.Millisecond}), "p")
	if !strings.Contains(m.status, "deadline exceeded") {
		t.Errorf("status %q, want a deadline error", m.status)
	}
}

func TestHelpAndQuit(t *testing.T) {
	m := update(t, newModel(t, nil, Options{}), keys("?")...)
	v := m.View()
	checkSize(t, v, 80, 24)
	for _, want := range []string{"KEYS", "kill it (asks first)", "read-only: p r x f are disabled"} {
		if !strings.Contains(v, want) {
			t.Errorf("no %q in help:\n%s", want, v)
		}
	}
	if strings.Contains(v, "WALLETS") {
		t.Error("help and tables shown together")
	}
	if m = update(t, m, keys("?")...); strings.Contains(m.View(), "KEYS") {
		t.Error("? does not close the help")
	}
	for _, k := range []tea.KeyMsg{{Type: tea.KeyRunes, Runes: []rune{'q'}}, {Type: tea.KeyCtrlC}} {
		_, cmd := m.Update(k)
		if cmd == nil {
			t.Fatalf("%v: no command", k)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Errorf("%v does not quit", k)
		}
	}
	// q while typing a filter is text, not quit.
	m = update(t, m, keys("/", "q")...)
	if m.input != "q" || m.mode != modeFilter {
		t.Errorf("typing q in the filter: input %q, mode %v", m.input, m.mode)
	}
}

// listSource returns its snapshots, then err.
type listSource struct {
	snaps []Snapshot
	err   error
}

func (l *listSource) Next(ctx context.Context) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	if len(l.snaps) == 0 {
		return Snapshot{}, l.err
	}
	s := l.snaps[0]
	l.snaps = l.snaps[1:]
	return s, nil
}

func TestSourceAndDaemonGone(t *testing.T) {
	s2 := testSnapshot()
	s2.Tick = 130
	src := &listSource{snaps: []Snapshot{testSnapshot(), s2}, err: errors.New("connection refused")}
	m := New(t.Context(), src, nil, Options{Renderer: asciiRenderer()})
	cmd := m.Init()
	var ticks []uint64
	for range 3 {
		msg := cmd()
		var nm tea.Model
		nm, cmd = m.Update(msg)
		m = nm.(Model)
		if sm, ok := msg.(SnapshotMsg); ok {
			ticks = append(ticks, sm.Snapshot.Tick)
		}
	}
	if !slices.Equal(ticks, []uint64{129, 130}) {
		t.Errorf("ticks %v, want [129 130]", ticks)
	}
	if m.Err() == nil || m.Err().Error() != "connection refused" {
		t.Fatalf("Err() = %v", m.Err())
	}
	v := m.View()
	checkSize(t, v, 80, 24)
	if !strings.HasPrefix(v, "daemon gone: connection refused") && !strings.Contains(v, " daemon gone: connection refused — press any key to exit") {
		t.Errorf("no banner:\n%s", v)
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("daemon gone does not quit")
	}
	// A late snapshot does not revive it.
	if m = update(t, m, SnapshotMsg{testSnapshot()}); m.Err() == nil {
		t.Error("snapshot after the daemon went away cleared the error")
	}
	// The banner survives a too-small terminal.
	if v := update(t, m, tea.WindowSizeMsg{Width: 40, Height: 10}).View(); !strings.Contains(v, "daemon gone") {
		t.Errorf("no banner when too small:\n%s", v)
	}

	// With a linger, it quits after the banner has been shown.
	m = New(t.Context(), nil, nil, Options{Renderer: asciiRenderer(), GoneLinger: time.Millisecond})
	nm, cmd := m.Update(DaemonGoneMsg{})
	m = nm.(Model)
	if m.Err() == nil {
		t.Error("DaemonGoneMsg without an error: Err() = nil")
	}
	msg := cmd()
	if _, ok := msg.(quitMsg); !ok {
		t.Fatalf("linger command returned %T", msg)
	}
	if _, cmd = m.Update(msg); cmd == nil {
		t.Fatal("no quit after the linger")
	} else if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("no quit after the linger")
	}
}

func TestSparklineAndFormat(t *testing.T) {
	tests := []struct {
		vs    []float64
		width int
		want  string
	}{
		{[]float64{0, 1, 2, 3, 4, 5, 6, 7}, 8, "▁▂▃▄▅▆▇█"},
		{[]float64{0, 1, 2, 3, 4, 5, 6, 7}, 3, "▁▅█"},
		{[]float64{5, 5}, 4, "▅▅"},
		{[]float64{1, math.NaN(), 2}, 4, "▁ █"},
		{nil, 4, ""},
		{[]float64{1}, 0, ""},
	}
	for _, tt := range tests {
		if got := sparkline(tt.vs, tt.width); got != tt.want {
			t.Errorf("sparkline(%v, %d) = %q, want %q", tt.vs, tt.width, got, tt.want)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m01s", 3*time.Hour + 5*time.Minute: "3h05m",
		200 * time.Hour: "8d", -time.Second: "0s",
	} {
		if got := dur(d); got != want {
			t.Errorf("dur(%v) = %q, want %q", d, got, want)
		}
	}
	for x, want := range map[float64]string{1.234: "1.23", -3: "-3", 2.5e7: "25M", 759375: "759k", -45_600_000: "-45.6M", 1e18: "1000P", 999: "999", math.Inf(1): "∞", math.NaN(): "-"} {
		if got := rate(x); got != want {
			t.Errorf("rate(%v) = %q, want %q", x, got, want)
		}
	}
	if got := money(1_500_000_000); got != "1.5G" {
		t.Errorf("money(1.5e9) = %q", got)
	}
}

func TestScrollKeepsSelectionVisible(t *testing.T) {
	s := testSnapshot()
	s.Wallets = nil
	for i := range 30 {
		s.Wallets = append(s.Wallets, WalletRow{Agent: fmt.Sprintf("agent%02d", i), Balance: units.Credits(100 + i), BurnRate: 1})
	}
	m := New(t.Context(), nil, nil, Options{Renderer: asciiRenderer()})
	m = update(t, m, SnapshotMsg{s})
	for _, tt := range []struct {
		keys []string
		sel  string
	}{{nil, "agent00"}, {[]string{"G"}, "agent29"}, {[]string{"G", "up", "up"}, "agent27"}, {[]string{"G", "g"}, "agent00"}} {
		mm := update(t, m, keys(tt.keys...)...)
		v := mm.View()
		checkSize(t, v, 80, 24)
		if !strings.Contains(v, "›  "+tt.sel) {
			t.Errorf("%v: selected %s not drawn:\n%s", tt.keys, tt.sel, v)
		}
		if !strings.Contains(v, " of 30)") {
			t.Errorf("%v: no row count in the heading:\n%s", tt.keys, v)
		}
	}
}
