package dash

import (
	"github.com/maxwellhq/maxwell/internal/event"

	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"

	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

type styles struct {
	title, heading, dim, warn, bad, good, selected, banner lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	return styles{
		title:    r.NewStyle().Bold(true).Foreground(lipgloss.Color("12")),
		heading:  r.NewStyle().Bold(true),
		dim:      r.NewStyle().Faint(true),
		warn:     r.NewStyle().Foreground(lipgloss.Color("11")),
		bad:      r.NewStyle().Foreground(lipgloss.Color("9")).Bold(true),
		good:     r.NewStyle().Foreground(lipgloss.Color("10")),
		selected: r.NewStyle().Reverse(true),
		banner:   r.NewStyle().Bold(true).Foreground(lipgloss.Color("15")).Background(lipgloss.Color("1")),
	}
}

// View renders the dashboard: exactly m.height lines, none wider than
// m.width.
func (m Model) View() string {
	w, h := m.width, m.height
	if w < MinWidth || h < MinHeight {
		return m.tooSmall()
	}
	var lines []string
	if m.gone != nil {
		lines = append(lines, m.st.banner.Render(pad(" daemon gone: "+m.gone.Error()+" — press any key to exit", w)))
	}
	lines = append(lines, m.header())
	if !m.haveSnap {
		lines = append(lines, "", "  waiting for the daemon's first snapshot…")
		return fit(lines, w, h)
	}
	top := lipgloss.JoinHorizontal(lipgloss.Top,
		box(m.thermal(w/2-1), w/2-1, 5), " ", box(m.price(w-w/2), w-w/2, 5))
	lines = append(lines, strings.Split(top, "\n")...)

	rest := h - len(lines) - 1 // the footer
	if m.help {
		lines = append(lines, m.helpLines(rest)...)
	} else {
		lines = append(lines, m.tables(w, rest)...)
	}
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	lines = append(lines[:h-1], m.footer(w))
	return fit(lines, w, h)
}

func (m Model) tooSmall() string {
	msg := fmt.Sprintf("terminal too small: %d×%d, need at least %d×%d", m.width, m.height, MinWidth, MinHeight)
	if m.gone != nil {
		msg = "daemon gone: " + m.gone.Error() + "\n" + msg
	}
	w, h := max(m.width, 1), max(m.height, 1)
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		// Wrap rather than cut: the message is the whole view.
		for len(l) > 0 {
			r := []rune(l)
			n := min(len(r), w)
			lines = append(lines, string(r[:n]))
			l = string(r[n:])
		}
	}
	return fit(lines, w, h)
}

func (m Model) header() string {
	s := m.st.title.Render("maxwell")
	if m.haveSnap {
		s += fmt.Sprintf("  tick %d  up %s  %d agents", m.snap.Tick, dur(m.snap.Uptime), len(m.snap.Wallets))
	}
	if m.opts.ReadOnly {
		s += "  " + m.st.warn.Render("[read-only]")
	}
	if m.filter != "" {
		s += "  filter: " + m.filter
	}
	return s
}

// thermal renders the thermal panel's lines: each figure with its tier,
// then where the figures come from.
func (m Model) thermal(width int) []string {
	t := m.snap.Thermal
	diff := t.Temperature.Value - t.Setpoint
	temp := fmt.Sprintf("%.1f°C set %.1f %+.1f", t.Temperature.Value, t.Setpoint, diff)
	if diff > 0 {
		temp = m.st.warn.Render(temp)
	}
	return []string{
		m.st.heading.Render("THERMAL"),
		"temp  " + temp + " " + m.tier(t.Temperature),
		"      " + sparkline(t.History, width-6),
		fmt.Sprintf("power %.1f W ", t.Power.Value) + m.tier(t.Power),
		m.st.dim.Render("from  " + orUnknown(t.Temperature.Source) + "; " + orUnknown(t.Power.Source)),
	}
}

// tier labels a figure with its tier; an estimate says so.
func (m Model) tier(r Reading) string {
	switch {
	case r.Tier == "":
		return m.st.dim.Render("[source unknown]")
	case r.Estimated():
		return m.st.warn.Render("[estimated]")
	}
	return m.st.dim.Render("[" + r.Tier + "]")
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// price renders the price panel's lines.
func (m Model) price(width int) []string {
	ps := m.snap.Prices
	lines := []string{m.st.heading.Render("PRICE") + m.st.dim.Render(" credits/slot, 1 credit = 1 µJ")}
	if len(ps) == 0 {
		return append(lines, m.st.dim.Render("no auction yet"))
	}
	last := ps[len(ps)-1]
	reserve := make([]float64, len(ps))
	clearing := make([]float64, len(ps))
	for i, p := range ps {
		reserve[i], clearing[i] = float64(p.Reserve), math.NaN()
		if p.Sold {
			clearing[i] = float64(p.Clearing)
		}
	}
	cl := "unsold"
	if last.Sold {
		cl = money(last.Clearing)
	}
	const label = 18
	return append(lines,
		fmt.Sprintf("reserve  %-9s", money(last.Reserve))+sparkline(reserve, width-label),
		fmt.Sprintf("clearing %-9s", cl)+sparkline(clearing, width-label),
		m.st.dim.Render(fmt.Sprintf("tick %d, %d ticks shown", last.Tick, len(ps))),
	)
}

// tables renders the wallets, auction and event sections in height lines.
func (m Model) tables(width, height int) []string {
	wallets := m.walletRows()
	bids := m.auctionRows()
	evs := m.snap.Events

	// The events get at least four lines (one on a small terminal), the
	// tables what they need of the rest, and the events what the tables
	// leave.
	minEv := min(len(evs), 4)
	if height < 15 {
		minEv = min(len(evs), 1)
	}
	// Rows for the two tables, after two headings and two column rows:
	// half each, then what one leaves to the other, wallets first.
	budget := max(height-(1+max(minEv, 1))-4, 2)
	nW := min(len(wallets), max(budget/2, 1))
	nB := min(len(bids), max(budget-nW, 1))
	nW = min(len(wallets), max(budget-nB, 1))
	nEv := min(len(evs), max(height-4-max(nW, 1)-max(nB, 1)-1, minEv))

	var lines []string
	lines = append(lines, m.walletTable(wallets, nW, width)...)
	lines = append(lines, m.auctionTable(bids, nB, width)...)
	lines = append(lines, m.st.heading.Render("  EVENTS"))
	if len(evs) == 0 {
		lines = append(lines, m.st.dim.Render("  none yet"))
	}
	shown := evs[len(evs)-nEv:]
	kw := 0
	for _, e := range shown {
		kw = max(kw, min(len(e.Kind), 18))
	}
	for _, e := range shown {
		s := fmt.Sprintf("  %6s %-*s", dur(e.At), kw, e.Kind)
		if e.Agent != "" {
			s += " " + e.Agent + ":"
		}
		if e.Detail != "" {
			s += " " + e.Detail
		}
		if e.Kind == event.Apoptosis || e.Kind == event.FailSafe || e.Kind == event.LedgerUnavailable {
			s = m.st.bad.Render(s)
		}
		lines = append(lines, s)
	}
	return lines
}

func (m Model) heading(t Table, name string, shown, total int) string {
	s := name
	if m.focus == t {
		s = "▸ " + s
	} else {
		s = "  " + s
	}
	sp := m.sorts[t]
	cols := walletColumns
	if t == AuctionTable {
		cols = auctionColumns
	}
	if sp.col >= 0 {
		dir := "↑"
		if sp.desc {
			dir = "↓"
		}
		s += fmt.Sprintf("  sort %s %s", cols[sp.col], dir)
	}
	if shown < total {
		s += fmt.Sprintf("  (%d of %d)", shown, total)
	}
	return m.st.heading.Render(s)
}

// window returns the start of the n rows to show out of total so that row
// sel (or -1) is visible.
func window(sel, n, total int) int {
	if sel < n || n <= 0 {
		return 0
	}
	return min(sel-n+1, total-n)
}

func (m Model) walletTable(rows []WalletRow, n, width int) []string {
	aw := agentWidth(width)
	lines := []string{
		m.heading(WalletsTable, "WALLETS", n, len(rows)),
		m.st.dim.Render(fmt.Sprintf("   %-*s %-11s %9s %8s %8s %7s", aw, walletColumns[0], walletColumns[1],
			walletColumns[2], walletColumns[3], walletColumns[4], walletColumns[5])),
	}
	if len(rows) == 0 {
		return append(lines, m.st.dim.Render("  no agents"+m.filtered()))
	}
	sel := -1
	for i, w := range rows {
		if w.Agent == m.selected {
			sel = i
		}
	}
	start := window(sel, n, len(rows))
	for i := start; i < start+n; i++ {
		w := rows[i]
		warn := m.marker(w.Agent, WalletsTable)
		if m.low(w) {
			warn += "!"
		} else {
			warn += " "
		}
		left := "∞"
		if tl := timeLeft(w); !math.IsInf(tl, 1) {
			left = dur(time.Duration(tl * float64(time.Second)))
		}
		s := fmt.Sprintf("%s %-*s %-11s %9s %8s %8s %7s", warn, aw, ansi.Truncate(w.Agent, aw, "…"), w.State,
			money(w.Balance), rate(w.BurnRate), money(w.TaxPaid), left)
		lines = append(lines, m.rowStyle(w.Agent, m.focus == WalletsTable, m.low(w), w.State == life.Dead).Render(s))
	}
	return lines
}

func (m Model) auctionTable(rows []BidRow, n, width int) []string {
	aw := agentWidth(width)
	lines := []string{
		m.heading(AuctionTable, fmt.Sprintf("AUCTION tick %d", m.snap.Tick), n, len(rows)),
		m.st.dim.Render(fmt.Sprintf("   %-*s %9s %-4s %4s %7s %9s", aw, auctionColumns[0], auctionColumns[1],
			auctionColumns[2], auctionColumns[3], auctionColumns[4], auctionColumns[5])),
	}
	if len(rows) == 0 {
		return append(lines, m.st.dim.Render("  no bids"+m.filtered()))
	}
	sel := -1
	for i, b := range rows {
		if b.Agent == m.selected {
			sel = i
		}
	}
	start := window(sel, n, len(rows))
	for i := start; i < start+n; i++ {
		b := rows[i]
		won, slot, weight, pay := "no", "-", "-", "-"
		if b.Won {
			won, slot = "yes", fmt.Sprint(b.Slot)
			weight = fmt.Sprintf("%.0f%%", 100*b.Weight)
			pay = money(b.Payment)
		}
		s := fmt.Sprintf("%s  %-*s %9s %-4s %4s %7s %9s", m.marker(b.Agent, AuctionTable), aw, ansi.Truncate(b.Agent, aw, "…"),
			money(b.Bid), won, slot, weight, pay)
		lines = append(lines, m.rowStyle(b.Agent, m.focus == AuctionTable, false, false).Render(s))
	}
	return lines
}

// marker marks the selected row of the focused table in text, for
// terminals without colour or reverse video.
func (m Model) marker(agent string, t Table) string {
	if agent == m.selected && m.focus == t {
		return "›"
	}
	return " "
}

func (m Model) rowStyle(agent string, focused, low, dead bool) lipgloss.Style {
	switch {
	case agent == m.selected && focused:
		return m.st.selected
	case dead:
		return m.st.dim
	case low:
		return m.st.warn
	}
	return lipgloss.Style{}
}

func (m Model) filtered() string {
	if m.filter == "" {
		return ""
	}
	return " match " + fmt.Sprintf("%q", m.filter)
}

// agentWidth is the width of the agent column: what the other columns leave,
// within [8, 24].
func agentWidth(width int) int { return min(max(width-53, 8), 24) }

func (m Model) footer(width int) string {
	switch m.mode {
	case modeFilter:
		return "filter: " + m.input + "█  (enter keep, esc clear)"
	case modeFund:
		return fmt.Sprintf("fund %s, amount: %s█  (enter send, esc cancel)", m.selected, m.input)
	case modeConfirmKill:
		return m.st.bad.Render(fmt.Sprintf("kill %s? y/n", m.selected))
	}
	if m.status != "" {
		if m.statusOK {
			return m.st.good.Render(m.status)
		}
		return m.st.bad.Render(m.status)
	}
	keys := "? help  q quit  tab table  ↑↓ select  / filter  1-6 sort"
	if !m.opts.ReadOnly {
		keys += "  p r x f act"
	}
	if m.opts.LogPath != "" {
		log := "  log " + m.opts.LogPath
		if ansi.StringWidth(keys+log) > width {
			keys = "? help  q quit" // the rest is in the help
		}
		keys += log
	}
	return m.st.dim.Render(ansi.Truncate(keys, width, "…"))
}

var helpText = [][2]string{
	{"?", "show or hide this help"},
	{"q, ctrl+c", "quit"},
	{"tab", "switch between the wallets and auction tables"},
	{"↑/k ↓/j g G", "select an agent"},
	{"1-6", "sort the table by that column; again to reverse"},
	{"s / S / 0", "next sort column / reverse / as delivered"},
	{"/", "filter agents by name; esc clears"},
	{"p", "pause the selected agent"},
	{"r", "resume it"},
	{"x", "kill it (asks first)"},
	{"f", "fund it (asks the amount)"},
}

func (m Model) helpLines(height int) []string {
	lines := []string{m.st.heading.Render("KEYS")}
	for _, h := range helpText {
		lines = append(lines, fmt.Sprintf("  %-12s %s", h[0], h[1]))
	}
	if m.opts.ReadOnly {
		lines = append(lines, m.st.warn.Render("  read-only: p r x f are disabled"))
	}
	if len(lines) > height {
		lines = lines[:height]
	}
	return lines
}

// box pads lines to exactly width columns and n rows.
func box(lines []string, width, n int) string {
	out := make([]string, n)
	for i := range out {
		if i < len(lines) {
			out[i] = pad(ansi.Truncate(lines[i], width, "…"), width)
		} else {
			out[i] = strings.Repeat(" ", width)
		}
	}
	return strings.Join(out, "\n")
}

func pad(s string, width int) string {
	if n := ansi.StringWidth(s); n < width {
		return s + strings.Repeat(" ", width-n)
	}
	return s
}

// fit cuts lines to width columns and pads or cuts them to height rows.
func fit(lines []string, width, height int) string {
	out := make([]string, 0, height)
	for _, l := range lines {
		for _, sub := range strings.Split(l, "\n") {
			if len(out) == height {
				break
			}
			out = append(out, ansi.Truncate(sub, width, "…"))
		}
	}
	for len(out) < height {
		out = append(out, "")
	}
	return strings.Join(out, "\n")
}

var sparkChars = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last width values of vs, scaled between their
// minimum and maximum; NaN is a blank.
func sparkline(vs []float64, width int) string {
	if width <= 0 || len(vs) == 0 {
		return ""
	}
	if len(vs) > width {
		vs = vs[len(vs)-width:]
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	var b strings.Builder
	for _, v := range vs {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			b.WriteRune(' ')
		case hi == lo:
			b.WriteRune(sparkChars[len(sparkChars)/2])
		default:
			i := int(math.Round((v - lo) / (hi - lo) * float64(len(sparkChars)-1)))
			b.WriteRune(sparkChars[i])
		}
	}
	return b.String()
}

// money formats credits compactly with an SI prefix: 759k is 759,000
// credits (0.759 J), 45.6M is 45.6 J.
func money(c units.Credits) string { return rate(float64(c)) }

// rate formats an amount of credits (per second, say) compactly.
func rate(x float64) string {
	switch {
	case math.IsNaN(x):
		return "-"
	case math.IsInf(x, 0):
		return "∞"
	}
	a := math.Abs(x)
	for _, p := range []struct {
		div    float64
		prefix string
	}{{1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if a >= p.div {
			v := x / p.div
			if math.Abs(v) >= 100 {
				return fmt.Sprintf("%.0f%s", v, p.prefix)
			}
			return fmt.Sprintf("%.3g%s", v, p.prefix)
		}
	}
	if a >= 100 || x == math.Trunc(x) {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.3g", x)
}

// dur formats a duration to the second: 45s, 3m05s, 2h03m.
func dur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 100*3600:
		return fmt.Sprintf("%dh%02dm", s/3600, s/60%60)
	}
	return fmt.Sprintf("%dd", s/86400)
}
