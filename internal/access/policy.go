// Package access decides who may do what through the control API. The
// daemon takes the caller from the kernel (SO_PEERCRED on the control
// socket: api.PeerOf), never from anything the caller sends, and Control
// applies a Policy to every call before the economy sees it:
//
//   - A process inside a cell may only read its own row of the state.
//   - Root may do anything; its cells run as root unless the request names
//     a user or the policy names a default one.
//   - Anyone else needs a rule of the policy, by user or by group. They
//     act on their own cells only, and their cells run as themselves (or
//     as a user the rule lets them pick), never as root, within the rule's
//     limits on wallets, taps, funding, cell count and containers.
//
// A policy is a YAML file (docs/SECURITY.md); with none, the socket's
// group, if any, gets a rule without limits.
package access

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/maxwellhq/maxwell/internal/identity"
	"github.com/maxwellhq/maxwell/internal/units"
)

// DefaultPolicyPath is where the daemon looks for its policy.
const DefaultPolicyPath = "/etc/maxwell/policy.yaml"

// ErrInvalid is the error for a policy file that cannot be used.
var ErrInvalid = errors.New("invalid policy")

// Policy is who besides root may use the control API, and how much.
type Policy struct {
	// DefaultUser is who root's cells run as when a request names no
	// user; nil keeps root.
	DefaultUser *identity.Identity
	// Rules are tried in order; the first that matches a caller is
	// theirs.
	Rules []Rule
	// File is the policy file it was read from; "" for Default.
	File string
}

// Rule is what the users it matches may do.
type Rule struct {
	// Exactly one of User and Group is set: a rule for a user by UID, or
	// for every member of a group by GID.
	User  *int
	Group *int
	// Name is the user's or group's name as the file gave it, for
	// messages.
	Name string
	// MaxWallet caps each cell's endowment: the wallet at spawn plus
	// every later fund. 0 means no cap.
	MaxWallet units.Credits
	// MaxCells caps the caller's cells alive at once; 0 means no cap.
	MaxCells int
	// MaxTap caps a cell's tap, in credits per second; 0 forbids taps
	// (income without end is no spend cap) unless Unlimited.
	MaxTap units.Credits
	// Fund lets the caller add credits to their own cells, within
	// MaxWallet.
	Fund bool
	// OCI lets the caller run cells in OCI containers.
	OCI bool
	// RunAs are users, besides themselves, the caller may run cells as
	// (never root).
	RunAs []identity.Identity
	// Unlimited is the implicit rule of the socket group when there is
	// no policy file: no caps at all.
	Unlimited bool
}

func (r Rule) String() string {
	if r.User != nil {
		return "the rule for user " + r.Name
	}
	return "the rule for group " + r.Name
}

// fileRule is a rule as the YAML file spells it.
type fileRule struct {
	User      string   `yaml:"user"`
	Group     string   `yaml:"group"`
	MaxWallet *int64   `yaml:"max_wallet_credits"`
	MaxCells  *int     `yaml:"max_cells"`
	MaxTap    int64    `yaml:"max_tap_credits_per_second"`
	Fund      bool     `yaml:"fund"`
	OCI       bool     `yaml:"oci"`
	RunAs     []string `yaml:"run_as"`
}

type file struct {
	DefaultUser string     `yaml:"default_user"`
	Rules       []fileRule `yaml:"rules"`
}

// Load reads the policy at path. A missing file is not an error: it gives
// Default(socketGID) (socketGID < 0: no group). Every user and group the
// file names must exist now: a policy is resolved once, when loaded.
func Load(path string, socketGID int) (Policy, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(socketGID), nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("access: policy: %w", err)
	}
	p, err := Parse(b)
	if err != nil {
		return Policy{}, fmt.Errorf("%s: %w", path, err)
	}
	p.File = path
	return p, nil
}

// Default is the policy without a file: root only, plus, for socketGID
// >= 0, that group's members with no limits (but never as root).
func Default(socketGID int) Policy {
	var p Policy
	if socketGID >= 0 {
		g := socketGID
		p.Rules = []Rule{{Group: &g, Name: fmt.Sprintf("gid %d (the socket's group)", g), Fund: true, OCI: true, Unlimited: true}}
	}
	return p
}

// Parse reads a policy file's contents. Unknown keys are errors, so a
// misspelt limit is not silently no limit.
func Parse(b []byte) (Policy, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return Policy{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	bad := func(format string, a ...any) (Policy, error) {
		return Policy{}, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	var p Policy
	if f.DefaultUser != "" {
		id, err := identity.Lookup(f.DefaultUser)
		if err != nil {
			return bad("default_user: %v", err)
		}
		p.DefaultUser = &id
	}
	for i, fr := range f.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		var r Rule
		switch {
		case (fr.User == "") == (fr.Group == ""):
			return bad("%s: give exactly one of user and group", at)
		case fr.User != "":
			id, err := identity.Lookup(fr.User)
			if err != nil {
				return bad("%s: %v", at, err)
			}
			if id.UID == 0 {
				return bad("%s: root needs no rule", at)
			}
			r.User, r.Name = &id.UID, fr.User
		default:
			gid, err := identity.LookupGroup(fr.Group)
			if err != nil {
				return bad("%s: %v", at, err)
			}
			r.Group, r.Name = &gid, fr.Group
		}
		at += " (" + r.Name + ")"
		if fr.MaxWallet == nil || *fr.MaxWallet <= 0 {
			return bad("%s: max_wallet_credits must be given, > 0: a delegated user's spend cap", at)
		}
		if fr.MaxCells == nil || *fr.MaxCells <= 0 {
			return bad("%s: max_cells must be given, > 0", at)
		}
		if fr.MaxTap < 0 {
			return bad("%s: max_tap_credits_per_second must not be negative", at)
		}
		r.MaxWallet, r.MaxCells, r.MaxTap = units.Credits(*fr.MaxWallet), *fr.MaxCells, units.Credits(fr.MaxTap)
		r.Fund, r.OCI = fr.Fund, fr.OCI
		for _, u := range fr.RunAs {
			id, err := identity.Lookup(u)
			if err != nil {
				return bad("%s: run_as: %v", at, err)
			}
			if id.UID == 0 {
				return bad("%s: run_as %s: no rule may run cells as root", at, u)
			}
			r.RunAs = append(r.RunAs, id)
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

// Delegates reports whether a policy file gives anyone but root a rule:
// then anyone may connect to the control socket, and the policy decides.
func (p Policy) Delegates() bool { return p.File != "" && len(p.Rules) > 0 }

// Match returns the first rule that applies to id.
func (p Policy) Match(id identity.Identity) (Rule, bool) {
	for _, r := range p.Rules {
		if r.User != nil && *r.User == id.UID || r.Group != nil && id.InGroup(*r.Group) {
			return r, true
		}
	}
	return Rule{}, false
}

// Describe is one line about the policy for the daemon's log.
func (p Policy) Describe() string {
	var b strings.Builder
	src := p.File
	if src == "" {
		src = "no policy file"
	}
	fmt.Fprintf(&b, "%s: %d rule(s)", src, len(p.Rules))
	if p.DefaultUser != nil {
		fmt.Fprintf(&b, ", root's cells run as %s", p.DefaultUser)
	}
	return b.String()
}
