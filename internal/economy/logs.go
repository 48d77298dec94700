package economy

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/celllog"
)

// logOptions bound each cell's log files.
func (e *Economy) logOptions() celllog.Options {
	cl := e.config().CellLogs
	return celllog.Options{MaxBytes: cl.MaxBytes, Keep: cl.Keep}
}

// Logs copies a cell's standard output and error, oldest first, to w;
// with follow, it goes on with what the cell writes until ctx ends.
func (e *Economy) Logs(ctx context.Context, name string, follow bool, w io.Writer) error {
	if _, err := e.cell(name); err != nil {
		return err
	}
	if e.opts.LogDir == "" {
		return fmt.Errorf("%w: this economy keeps no cell logs", api.ErrUnsupported)
	}
	var err error
	if follow {
		err = celllog.Follow(ctx, e.opts.LogDir, name, e.logOptions(), 0, w)
	} else {
		err = celllog.Read(e.opts.LogDir, name, e.logOptions(), w)
	}
	if errors.Is(err, celllog.ErrNoLog) {
		return api.Classify(api.ErrNotFound, err)
	}
	return err
}
