// Package dash is the terminal dashboard of `maxwell top`: a bubbletea
// model and its view. The daemon's side produces a Snapshot per tick
// through a Source; the model draws the thermal state (temperature against
// the setpoint with a sparkline, power, and the tier and source of each
// figure), the reserve and clearing prices, this tick's auction board, the
// agents' wallets (balance, burn rate, tax paid, state, a low-balance
// warning) and the event log. It sorts, filters and selects agents and
// pauses, resumes, kills or funds the selected one through an Actions
// implementation, unless it is read-only.
//
// When the Source fails the daemon is gone: the model shows a banner and
// quits; Model.Err says why, for the caller to print once bubbletea has
// restored the terminal.
//
// # Why bubbletea v1
//
// The package uses github.com/charmbracelet/bubbletea v1.3.10 and lipgloss
// v1.1.0 rather than charm.land/bubbletea/v2 v2.1.1, deliberately:
//
//   - Stability: v1 is the long-maintained line with a settled API; v2 is
//     weeks past its first release.
//   - Tests: the only teatest for v2 (github.com/charmbracelet/x/exp/teatest/v2,
//     pseudo-versions only) is built against bubbletea v2.0.0-rc.1, not the
//     release; the v1 teatest is built against bubbletea v1.3.x and
//     lipgloss v1.1.0, the versions used here.
//   - Colour profile in tests: lipgloss v1 renders through a
//     *lipgloss.Renderer whose profile is set per renderer
//     (Options.Renderer), so tests pin termenv.Ascii without touching
//     global state and View returns plain text; in v2 downsampling happens
//     in the program's output, so View's string carries whatever colours
//     the styles name.
//   - Resizes: both deliver tea.WindowSizeMsg; v1 needs nothing more.
//
// Moving to v2 later touches only this package: the model is plain data
// plus Update and View.
package dash
