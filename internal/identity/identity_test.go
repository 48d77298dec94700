package identity

import (
	"errors"
	"slices"
	"testing"
)

// The users every Debian host has: root (0) and nobody (65534, group
// nogroup 65534).
func TestLookup(t *testing.T) {
	for _, tt := range []struct {
		who        string
		name       string
		uid, gid   int
		wantGroups []int
	}{
		{"root", "root", 0, 0, []int{0}},
		{"0", "root", 0, 0, []int{0}},
		{"nobody", "nobody", 65534, 65534, []int{65534}},
		{"54321", "", 54321, 54321, []int{}}, // a UID the database lacks
	} {
		id, err := Lookup(tt.who)
		if err != nil {
			t.Errorf("Lookup(%q): %v", tt.who, err)
			continue
		}
		if id.Name != tt.name || id.UID != tt.uid || id.GID != tt.gid || !slices.Equal(id.Groups, tt.wantGroups) {
			t.Errorf("Lookup(%q) = %+v", tt.who, id)
		}
		c := id.Credential()
		if int(c.Uid) != tt.uid || int(c.Gid) != tt.gid || len(c.Groups) != len(tt.wantGroups) {
			t.Errorf("Credential of %q = %+v", tt.who, c)
		}
	}
	if _, err := Lookup("no-such-user-mx"); !errors.Is(err, ErrUnknown) {
		t.Errorf("an unknown name: %v, want ErrUnknown", err)
	}
	for _, bad := range []string{"", "-1"} {
		if _, err := Lookup(bad); err == nil {
			t.Errorf("Lookup(%q) succeeded", bad)
		}
	}
}

func TestLookupGroup(t *testing.T) {
	for who, want := range map[string]int{"root": 0, "nogroup": 65534, "4242": 4242} {
		if g, err := LookupGroup(who); err != nil || g != want {
			t.Errorf("LookupGroup(%q) = %d, %v; want %d", who, g, err, want)
		}
	}
	for _, bad := range []string{"", "-3", "no-such-group-mx"} {
		if _, err := LookupGroup(bad); err == nil {
			t.Errorf("LookupGroup(%q) succeeded", bad)
		}
	}
}
