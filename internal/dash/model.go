package dash

import (
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"

	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// Options configures a Model. The zero value is usable.
type Options struct {
	// ReadOnly disables every action; so does a nil Actions.
	ReadOnly bool
	// Renderer renders styles; nil means lipgloss's default renderer (the
	// terminal's colour profile). Tests pass one with a fixed profile.
	Renderer *lipgloss.Renderer
	// ActionTimeout bounds each call to Actions; 0 means 5 s.
	ActionTimeout time.Duration
	// GoneLinger is how long the daemon-gone banner stays before the
	// program quits; 0 quits at once (the banner is the final frame).
	GoneLinger time.Duration
	// LowBalance warns about a wallet that lasts less than this at its
	// burn rate; 0 means 30 s. An empty or negative wallet always warns.
	LowBalance time.Duration
	// Width and Height are the size assumed until the terminal reports
	// its own; 0 means 80×24.
	Width, Height int
	// LogPath, if set, is where the program's log goes while the
	// dashboard owns the terminal; the status line shows it.
	LogPath string
}

// Minimum terminal size the dashboard draws in.
const (
	MinWidth  = 60
	MinHeight = 18
)

// Table is which table the cursor, sorting and selection act on.
type Table int

// The tables.
const (
	WalletsTable Table = iota
	AuctionTable
)

// The columns of each table, in display order.
var (
	walletColumns  = []string{"AGENT", "STATE", "BALANCE", "BURN/s", "TAX PAID", "LEFT"}
	auctionColumns = []string{"AGENT", "BID", "WON", "SLOT", "WEIGHT", "PAYMENT"}
)

// mode is what the keyboard is doing.
type mode int

const (
	modeNormal mode = iota
	modeFilter
	modeConfirmKill
	modeFund
)

type sortSpec struct {
	col  int // -1: as delivered
	desc bool
}

// Model is the dashboard's bubbletea model.
type Model struct {
	ctx     context.Context
	src     Source
	actions Actions
	opts    Options
	st      styles

	width, height int
	snap          Snapshot
	haveSnap      bool
	gone          error

	focus    Table
	sorts    [2]sortSpec
	selected string // agent name, stable across snapshots and sorts
	filter   string
	mode     mode
	input    string // filter or fund amount being typed
	help     bool
	status   string
	statusOK bool
}

// New returns a model that reads snapshots from src until ctx is done and
// acts on agents through actions (nil: read-only).
func New(ctx context.Context, src Source, actions Actions, opts Options) Model {
	if opts.ActionTimeout <= 0 {
		opts.ActionTimeout = 5 * time.Second
	}
	if opts.LowBalance <= 0 {
		opts.LowBalance = 30 * time.Second
	}
	if opts.Width <= 0 || opts.Height <= 0 {
		opts.Width, opts.Height = 80, 24
	}
	if actions == nil {
		opts.ReadOnly = true
	}
	r := opts.Renderer
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	return Model{
		ctx: ctx, src: src, actions: actions, opts: opts, st: newStyles(r),
		width: opts.Width, height: opts.Height,
		sorts: [2]sortSpec{{col: -1}, {col: -1}},
	}
}

// Err returns why the daemon went away, or nil while it is there. The
// caller prints it after the program ends, as the terminal is restored.
func (m Model) Err() error { return m.gone }

// Init starts waiting for the first snapshot.
func (m Model) Init() tea.Cmd { return m.next() }

func (m Model) next() tea.Cmd {
	if m.src == nil {
		return nil
	}
	ctx, src := m.ctx, m.src
	return func() tea.Msg {
		s, err := src.Next(ctx)
		if err != nil {
			return DaemonGoneMsg{Err: err}
		}
		return SnapshotMsg{Snapshot: s}
	}
}

// Update handles a message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case SnapshotMsg:
		if m.gone != nil {
			return m, nil
		}
		m.snap, m.haveSnap = msg.Snapshot, true
		m.keepSelection()
		return m, m.next()
	case DaemonGoneMsg:
		m.gone = msg.Err
		if m.gone == nil {
			m.gone = errors.New("the daemon closed the connection")
		}
		if m.opts.GoneLinger <= 0 {
			return m, tea.Quit
		}
		return m, tea.Tick(m.opts.GoneLinger, func(time.Time) tea.Msg { return quitMsg{} })
	case quitMsg:
		return m, tea.Quit
	case actionDoneMsg:
		if msg.err != nil {
			m.setStatus(false, "%s: %v", msg.what, msg.err)
		} else {
			m.setStatus(true, "%s: done", msg.what)
		}
		return m, nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *Model) setStatus(ok bool, format string, args ...any) {
	m.status, m.statusOK = fmt.Sprintf(format, args...), ok
}

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if k.Type == tea.KeyCtrlC {
		return m, tea.Quit
	}
	if m.gone != nil {
		return m, tea.Quit // any key leaves the banner
	}
	switch m.mode {
	case modeFilter:
		return m.typing(k, func(m *Model) { m.filter = m.input; m.keepSelection() }, func(m *Model) {})
	case modeFund:
		return m.typing(k, func(m *Model) {}, func(m *Model) {})
	case modeConfirmKill:
		m.mode = modeNormal
		if s := k.String(); s == "y" || s == "Y" {
			agent := m.selected
			cmd := m.act("kill "+agent, func(ctx context.Context) error { return m.actions.Kill(ctx, agent) })
			return m, cmd
		}
		m.setStatus(true, "kill cancelled")
		return m, nil
	}

	switch s := k.String(); s {
	case "q":
		return m, tea.Quit
	case "?":
		m.help = !m.help
	case "esc":
		m.help = false
		m.filter = ""
	case "tab", "shift+tab":
		m.focus = 1 - m.focus
		m.keepSelection()
	case "up", "k":
		m.move(-1)
	case "down", "j":
		m.move(1)
	case "home", "g":
		m.move(-math.MaxInt32)
	case "end", "G":
		m.move(math.MaxInt32)
	case "/":
		m.mode, m.input = modeFilter, m.filter
	case "s":
		sp := &m.sorts[m.focus]
		sp.col = (sp.col+2)%(len(m.columns())+1) - 1
		sp.desc = false
	case "S":
		m.sorts[m.focus].desc = !m.sorts[m.focus].desc
	case "1", "2", "3", "4", "5", "6":
		col := int(s[0] - '1')
		sp := &m.sorts[m.focus]
		if sp.col == col {
			sp.desc = !sp.desc
		} else {
			sp.col, sp.desc = col, false
		}
	case "0":
		m.sorts[m.focus] = sortSpec{col: -1}
	case "p", "r", "x", "f":
		return m.action(s)
	}
	return m, nil
}

// typing handles a key while a line of text is being typed: apply is
// called as it changes (the filter narrows live), done on enter.
func (m Model) typing(k tea.KeyMsg, apply func(*Model), done func(*Model)) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyEsc:
		if m.mode == modeFilter {
			m.input = ""
			apply(&m)
		}
		m.mode = modeNormal
		return m, nil
	case tea.KeyEnter:
		if m.mode == modeFund {
			m.mode = modeNormal
			return m.fund()
		}
		m.mode = modeNormal
		done(&m)
		return m, nil
	case tea.KeyBackspace:
		if r := []rune(m.input); len(r) > 0 {
			m.input = string(r[:len(r)-1])
		}
	case tea.KeyRunes, tea.KeySpace:
		if len(m.input) < 64 {
			m.input += string(k.Runes)
		}
	default:
		return m, nil
	}
	apply(&m)
	return m, nil
}

// action starts pause (p), resume (r), kill (x, after a confirmation) or
// fund (f, after an amount) on the selected agent.
func (m Model) action(key string) (tea.Model, tea.Cmd) {
	if m.opts.ReadOnly {
		m.setStatus(false, "read-only: actions are disabled")
		return m, nil
	}
	agent := m.selected
	w, ok := m.wallet(agent)
	if agent == "" || !ok {
		m.setStatus(false, "select an agent first (↑/↓)")
		return m, nil
	}
	if w.State == life.Dead {
		m.setStatus(false, "%s is dead", agent)
		return m, nil
	}
	switch key {
	case "p":
		if w.State != life.Running {
			m.setStatus(false, "%s is %s, not running", agent, w.State)
			return m, nil
		}
		cmd := m.act("pause "+agent, func(ctx context.Context) error { return m.actions.Pause(ctx, agent) })
		return m, cmd
	case "r":
		if w.State == life.Running {
			m.setStatus(false, "%s is already running", agent)
			return m, nil
		}
		cmd := m.act("resume "+agent, func(ctx context.Context) error { return m.actions.Resume(ctx, agent) })
		return m, cmd
	case "x":
		m.mode = modeConfirmKill
	case "f":
		m.mode, m.input = modeFund, ""
	}
	return m, nil
}

func (m Model) fund() (tea.Model, tea.Cmd) {
	agent := m.selected
	n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(m.input), "_", ""), 10, 64)
	if err != nil || n <= 0 {
		m.setStatus(false, "fund %s: %q is not a whole positive number of credits", agent, m.input)
		return m, nil
	}
	amount := units.Credits(n)
	what := fmt.Sprintf("fund %s %s", agent, money(amount))
	cmd := m.act(what, func(ctx context.Context) error { return m.actions.Fund(ctx, agent, amount) })
	return m, cmd
}

// act runs f in the background, bounded by the action timeout.
func (m *Model) act(what string, f func(ctx context.Context) error) tea.Cmd {
	m.setStatus(true, "%s…", what)
	parent, timeout := m.ctx, m.opts.ActionTimeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(parent, timeout)
		defer cancel()
		return actionDoneMsg{what: what, err: f(ctx)}
	}
}

func (m Model) wallet(agent string) (WalletRow, bool) {
	for _, w := range m.snap.Wallets {
		if w.Agent == agent {
			return w, true
		}
	}
	return WalletRow{}, false
}

func (m Model) columns() []string {
	if m.focus == AuctionTable {
		return auctionColumns
	}
	return walletColumns
}

// agents returns the focused table's agents in display order.
func (m Model) agents() []string {
	var out []string
	if m.focus == AuctionTable {
		for _, b := range m.auctionRows() {
			out = append(out, b.Agent)
		}
		return out
	}
	for _, w := range m.walletRows() {
		out = append(out, w.Agent)
	}
	return out
}

// move moves the selection by d rows in the focused table.
func (m *Model) move(d int) {
	agents := m.agents()
	if len(agents) == 0 {
		return
	}
	i := slices.Index(agents, m.selected)
	if i < 0 {
		i = 0
	} else {
		i = min(max(i+d, 0), len(agents)-1)
	}
	m.selected = agents[i]
}

// keepSelection selects the first visible agent when the selected one is
// no longer shown.
func (m *Model) keepSelection() {
	agents := m.agents()
	if !slices.Contains(agents, m.selected) {
		m.selected = ""
		if len(agents) > 0 {
			m.selected = agents[0]
		}
	}
}

func (m Model) visible(agent string) bool {
	return m.filter == "" || strings.Contains(strings.ToLower(agent), strings.ToLower(m.filter))
}

// walletRows returns the wallets to show: filtered, then sorted.
func (m Model) walletRows() []WalletRow {
	var rows []WalletRow
	for _, w := range m.snap.Wallets {
		if m.visible(w.Agent) {
			rows = append(rows, w)
		}
	}
	sp := m.sorts[WalletsTable]
	if sp.col < 0 {
		return rows
	}
	slices.SortStableFunc(rows, func(a, b WalletRow) int {
		var c int
		switch sp.col {
		case 0:
			c = cmp.Compare(a.Agent, b.Agent)
		case 1:
			c = cmp.Compare(a.State.Rank(), b.State.Rank())
		case 2:
			c = cmp.Compare(a.Balance, b.Balance)
		case 3:
			c = cmp.Compare(a.BurnRate, b.BurnRate)
		case 4:
			c = cmp.Compare(a.TaxPaid, b.TaxPaid)
		case 5:
			c = cmp.Compare(timeLeft(a), timeLeft(b))
		}
		if sp.desc {
			c = -c
		}
		return c
	})
	return rows
}

// auctionRows returns the bids to show: filtered, then sorted.
func (m Model) auctionRows() []BidRow {
	var rows []BidRow
	for _, b := range m.snap.Auction {
		if m.visible(b.Agent) {
			rows = append(rows, b)
		}
	}
	sp := m.sorts[AuctionTable]
	if sp.col < 0 {
		return rows
	}
	slices.SortStableFunc(rows, func(a, b BidRow) int {
		var c int
		switch sp.col {
		case 0:
			c = cmp.Compare(a.Agent, b.Agent)
		case 1:
			c = cmp.Compare(a.Bid, b.Bid)
		case 2:
			c = cmp.Compare(boolInt(a.Won), boolInt(b.Won))
		case 3:
			c = cmp.Compare(a.Slot, b.Slot)
		case 4:
			c = cmp.Compare(a.Weight, b.Weight)
		case 5:
			c = cmp.Compare(a.Payment, b.Payment)
		}
		if sp.desc {
			c = -c
		}
		return c
	})
	return rows
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// timeLeft is how long w lasts at its burn rate, in seconds; +Inf when it
// burns nothing.
func timeLeft(w WalletRow) float64 {
	if w.BurnRate <= 0 {
		return math.Inf(1)
	}
	return math.Max(float64(w.Balance), 0) / w.BurnRate
}

// low reports whether w deserves a low-balance warning.
func (m Model) low(w WalletRow) bool {
	if w.State == life.Dead {
		return false
	}
	return w.Balance <= 0 || timeLeft(w) < m.opts.LowBalance.Seconds()
}
