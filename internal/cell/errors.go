package cell

import (
	"errors"

	"github.com/maxwellhq/maxwell/internal/cgroupfs"
)

// Errors returned by this package. Callers test for them with errors.Is.
var (
	// ErrInvalidName means a cell (or parent) name is empty, too long,
	// "." or "..", or holds a byte other than ASCII letters, digits,
	// '.', '_' and '-' (so never a '/').
	ErrInvalidName = errors.New("invalid cell name")
	// ErrExists means a cell of that name already exists, in this
	// manager or as a cgroup directory left behind (see Manager.Sweep).
	ErrExists = errors.New("cell already exists")
	// ErrInvalidCPU means a Spec names a CPU the cell may not run on.
	ErrInvalidCPU = errors.New("invalid CPU")
	// ErrFreezerUnavailable means the requested freezer does not exist
	// on this host or for this cell.
	ErrFreezerUnavailable = errors.New("freezer unavailable")
	// ErrClosed means the manager or cell has been closed.
	ErrClosed = errors.New("closed")
	// ErrExited means the cell has no process left to act on.
	ErrExited = errors.New("cell has no processes left")
	// ErrMountinfo means a mountinfo file could not be parsed.
	ErrMountinfo = errors.New("malformed mountinfo")
	// ErrGarbage means a kernel file held something other than its
	// documented format.
	ErrGarbage = cgroupfs.ErrGarbage
	// ErrGuard means the guard process that thaws and kills cells when
	// the host dies is not running, so no cell may start.
	ErrGuard = errors.New("cell guard not running")
	// ErrParentBusy: another manager (another Maxwell) holds the Parent
	// cgroup: two economies must never share one, since each sweeps its
	// parent at start.
	ErrParentBusy = errors.New("cgroup parent in use by another manager")
)
