package ledger

import (
	"os"
	"path/filepath"
)

// DefaultPath returns where a ledger lives unless told otherwise:
// /var/lib/maxwell/ledger.db for root; else $XDG_STATE_HOME/maxwell/ledger.db,
// with $XDG_STATE_HOME defaulting to ~/.local/state; else, with no home
// either, ledger.db in the current directory.
func DefaultPath() string {
	home, _ := os.UserHomeDir()
	return defaultPath(os.Geteuid(), os.Getenv("XDG_STATE_HOME"), home)
}

func defaultPath(euid int, stateHome, home string) string {
	switch {
	case euid == 0:
		return "/var/lib/maxwell/ledger.db"
	case filepath.IsAbs(stateHome):
		return filepath.Join(stateHome, "maxwell", "ledger.db")
	case home != "":
		return filepath.Join(home, ".local", "state", "maxwell", "ledger.db")
	}
	return "ledger.db"
}
