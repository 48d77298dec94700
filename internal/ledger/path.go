package ledger

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// DefaultPath returns where a ledger lives unless told otherwise:
// /var/lib/maxwell/ledger.db for root; else $XDG_STATE_HOME/maxwell/ledger.db,
// with $XDG_STATE_HOME defaulting to ~/.local/state; else, with no home
// either, ledger.db in the current directory. The home is the user's own
// (see userHome), not a $HOME inherited from whoever started the process.
func DefaultPath() string {
	euid := os.Geteuid()
	return defaultPath(euid, os.Getenv("XDG_STATE_HOME"), userHome(euid, os.Getenv("HOME")))
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

// userHome returns the home directory of the user euid: env (the process's
// $HOME) where it is a directory euid owns, else the one the password
// database gives euid, else env. A process started with sudo -u, runuser
// or setpriv keeps its caller's $HOME (often /root), which it may not
// write.
func userHome(euid int, env string) string {
	if env != "" {
		if fi, err := os.Stat(env); err == nil && fi.IsDir() {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == euid {
				return env
			}
		}
	}
	if u, err := user.LookupId(strconv.Itoa(euid)); err == nil && u.HomeDir != "" {
		return u.HomeDir
	}
	return env
}
