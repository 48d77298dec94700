// Package identity says who a local user is: UID, primary GID,
// supplementary groups and home, by name or by number, as the host's user
// database (os/user: /etc/passwd and /etc/group, or NSS where built with
// cgo) knows them. A cell runs as an Identity.
package identity

import (
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"syscall"
)

// ErrUnknown is the error for a user the host does not know.
var ErrUnknown = errors.New("no such user")

// Identity is a local user as the host knows it.
type Identity struct {
	Name string
	UID  int
	GID  int
	// Groups are the supplementary groups, the primary one included, in
	// ascending order.
	Groups []int
	Home   string
}

// Lookup resolves a user name or a numeric UID. A UID the user database
// does not hold resolves to a nameless identity with that UID as its GID
// and no groups, as a container runtime would run it; a name it does not
// hold is an error wrapping ErrUnknown.
func Lookup(who string) (Identity, error) {
	if who == "" {
		return Identity{}, fmt.Errorf("identity: empty user")
	}
	if uid, err := strconv.Atoi(who); err == nil {
		return LookupUID(uid)
	}
	u, err := user.Lookup(who)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return Identity{}, fmt.Errorf("identity: user %q: %w", who, ErrUnknown)
		}
		return Identity{}, fmt.Errorf("identity: user %q: %w", who, err)
	}
	return fromUser(u)
}

// LookupUID resolves a UID; see Lookup for one the database lacks.
func LookupUID(uid int) (Identity, error) {
	if uid < 0 || uid > 1<<32-2 {
		return Identity{}, fmt.Errorf("identity: UID %d out of range", uid)
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		var unknown user.UnknownUserIdError
		if errors.As(err, &unknown) {
			return Identity{UID: uid, GID: uid, Groups: []int{}, Home: "/"}, nil
		}
		return Identity{}, fmt.Errorf("identity: UID %d: %w", uid, err)
	}
	return fromUser(u)
}

func fromUser(u *user.User) (Identity, error) {
	id := Identity{Name: u.Username, Home: u.HomeDir}
	var err error
	if id.UID, err = strconv.Atoi(u.Uid); err != nil {
		return Identity{}, fmt.Errorf("identity: user %s has UID %q", u.Username, u.Uid)
	}
	if id.GID, err = strconv.Atoi(u.Gid); err != nil {
		return Identity{}, fmt.Errorf("identity: user %s has GID %q", u.Username, u.Gid)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return Identity{}, fmt.Errorf("identity: groups of %s: %w", u.Username, err)
	}
	id.Groups = []int{id.GID}
	for _, g := range gids {
		n, err := strconv.Atoi(g)
		if err != nil {
			return Identity{}, fmt.Errorf("identity: user %s in group %q", u.Username, g)
		}
		id.Groups = append(id.Groups, n)
	}
	slices.Sort(id.Groups)
	id.Groups = slices.Compact(id.Groups)
	return id, nil
}

// InGroup reports whether gid is one of the user's groups.
func (id Identity) InGroup(gid int) bool { return slices.Contains(id.Groups, gid) }

// String names the user: "alice (uid 1001)".
func (id Identity) String() string {
	if id.Name == "" {
		return fmt.Sprintf("uid %d", id.UID)
	}
	return fmt.Sprintf("%s (uid %d)", id.Name, id.UID)
}

// Credential is what a process must take on to run as the user.
func (id Identity) Credential() *syscall.Credential {
	c := &syscall.Credential{Uid: uint32(id.UID), Gid: uint32(id.GID), Groups: make([]uint32, len(id.Groups))}
	for i, g := range id.Groups {
		c.Groups[i] = uint32(g)
	}
	return c
}

// LookupGroup resolves a group name or a numeric GID to its GID.
func LookupGroup(group string) (int, error) {
	if group == "" {
		return 0, fmt.Errorf("identity: empty group")
	}
	if gid, err := strconv.Atoi(group); err == nil {
		if gid < 0 {
			return 0, fmt.Errorf("identity: group %q: negative GID", group)
		}
		return gid, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("identity: group %q: %w", group, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("identity: group %q has GID %q", group, g.Gid)
	}
	return gid, nil
}
