package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrAccess: the user may not read the ledger (or its directory), or
// SQLite cannot open it read-only for them. The message names the file,
// its mode and owners, and who may read it.
var ErrAccess = errors.New("permission denied")

// canRead fails with ErrAccess, saying why and who may, when the user
// cannot read the database file at path.
func canRead(path string) error {
	f, err := os.Open(path)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("ledger: open %s: %w", path, err)
	}
	fi, serr := os.Stat(path)
	if serr != nil {
		return fmt.Errorf("ledger: %w: %s: %w", ErrAccess, path, err)
	}
	return fmt.Errorf("ledger: %w: cannot read %s: it is %s; %s", ErrAccess, path, owners(fi), whoMayRead(fi))
}

// readOnlyShm explains a read-only open that SQLite refused: a reader of
// a database in WAL mode needs its shared-memory index (-shm); with no
// writer holding the ledger open there is none, and SQLite must create
// it in the ledger's directory, which this user may not write.
func readOnlyShm(path string, err error) error {
	if !errors.Is(err, ErrReadOnly) && !isCantOpen(err) {
		return err
	}
	if _, serr := os.Stat(path + "-shm"); serr == nil {
		return err
	}
	dir := filepath.Dir(path)
	if unix.Access(dir, unix.W_OK) == nil {
		return err
	}
	fi, serr := os.Stat(dir)
	if serr != nil {
		return err
	}
	return fmt.Errorf("ledger: %w: cannot read %s while no writer has it open: SQLite must then create %s-shm beside it, and the directory %s (%s) is not writable to you; read it while the daemon runs, or %s: %w",
		ErrAccess, path, filepath.Base(path), dir, owners(fi), whoMayWrite(fi), err)
}

func isCantOpen(err error) bool {
	var code interface{ Code() int }
	return errors.As(err, &code) && code.Code()&0xff == 14 // SQLITE_CANTOPEN
}

// owners renders a file's mode and owners: "-rw-r----- (0640), owner
// root, group maxwell".
func owners(fi fs.FileInfo) string {
	u, g := ids(fi)
	return fmt.Sprintf("%s (%#o), owner %s, group %s", fi.Mode(), fi.Mode().Perm(), userName(u), groupName(g))
}

// whoMayRead says who may read the file fi.
func whoMayRead(fi fs.FileInfo) string {
	u, g := ids(fi)
	switch m := fi.Mode().Perm(); {
	case m&0o004 != 0:
		return "anyone may read it: a directory above it keeps you out"
	case m&0o040 != 0:
		return fmt.Sprintf("read it %s or as a member of group %s", asOwner(u), groupName(g))
	case m&0o400 != 0:
		return "read it " + asOwner(u)
	}
	return "read it as root"
}

// whoMayWrite says who may write the directory fi.
func whoMayWrite(fi fs.FileInfo) string {
	u, g := ids(fi)
	if fi.Mode().Perm()&0o020 != 0 {
		return fmt.Sprintf("%s or as a member of group %s, who may write it", asOwner(u), groupName(g))
	}
	return asOwner(u) + ", who may write it"
}

// asOwner is "as root", or "as root or as NAME" for the owner uid.
func asOwner(uid uint32) string {
	if uid == 0 {
		return "as root"
	}
	return "as root or as " + userName(uid)
}

func ids(fi fs.FileInfo) (uid, gid uint32) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid
	}
	return unknownID, unknownID
}

// unknownID stands for an owner the file system does not tell.
const unknownID = 1<<32 - 1

func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return "uid " + id
}

func groupName(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil {
		return g.Name
	}
	return "gid " + id
}
