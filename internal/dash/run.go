package dash

import (
	"context"
	"errors"

	tea "github.com/charmbracelet/bubbletea"
)

// Run shows the dashboard of b on the terminal (the alternate screen, so
// the terminal is as it was once it returns) until the user quits, ctx
// ends, or b's state can no longer be read; then it returns. With
// opts.ReadOnly, or b nil for actions, nothing can be changed.
func Run(ctx context.Context, b Backend, opts Options) error {
	feed := &Feed{B: b}
	var acts Actions = feed
	if opts.ReadOnly {
		acts = nil
	}
	m := New(ctx, feed, acts, opts)
	final, err := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx)).Run()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil {
		return err
	}
	if fm, ok := final.(Model); ok && fm.Err() != nil && ctx.Err() == nil {
		return fm.Err()
	}
	return nil
}
