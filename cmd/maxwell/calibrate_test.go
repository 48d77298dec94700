package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/maxwellhq/maxwell/internal/control"
	"github.com/maxwellhq/maxwell/internal/identity"
)

// TestCalibrate runs maxwell calibrate as a user would: root storing the
// profile where it is told, a user with a home of their own started with
// root's $HOME (as sudo -u and runuser leave it), who gets the profile in
// their own home, and nobody, whose home does not exist, who is told
// before the load step where the profile cannot go and how to choose.
func TestCalibrate(t *testing.T) {
	h := newHostUsers(t)
	bin, dir := publicCopy(t)
	rootHome := []string{"HOME=/root"} // as sudo -u and runuser leave it
	short := []string{"calibrate", "--idle", "1s", "--step", "7s", "--threads", "1"}

	rootProfile := filepath.Join(dir, "root", "profile.json")
	out, err := asUserEnv(t, nil, rootHome, bin, dir, append(short, "--profile", rootProfile)...)
	if err != nil {
		t.Fatalf("calibrate as root: %v\n%s", err, out)
	}
	for _, want := range []string{"τ", "SIMC Kc", "profile", rootProfile} {
		if !strings.Contains(out, want) {
			t.Errorf("calibrate as root does not print %q:\n%s", want, out)
		}
	}
	if _, err := control.Load(rootProfile); err != nil {
		t.Errorf("the profile root stored does not load: %v", err)
	}

	// A user with a home, run with root's $HOME.
	name := "mxcal" + h.suffix
	home := filepath.Join(dir, "home-"+name)
	h.run("useradd", "--create-home", "--home-dir", home, "--shell", "/usr/sbin/nologin", name)
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := identity.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	out, err = asUserEnv(t, &u, rootHome, bin, dir, short...)
	if err != nil {
		t.Fatalf("calibrate as %s with HOME=/root: %v\n%s", name, err, out)
	}
	own := filepath.Join(home, ".local", "state", "maxwell", "profile.json")
	if !strings.Contains(out, own) {
		t.Errorf("calibrate as %s does not say it stored the profile at %s:\n%s", name, own, out)
	}
	fi, err := os.Stat(own)
	if err != nil {
		t.Fatalf("calibrate as %s: %v", name, err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != u.UID {
		t.Errorf("%s is owned by uid %d; want %s's %d", own, st.Uid, name, u.UID)
	}

	// nobody: no home to store it in; told so before the step.
	nobody, err := identity.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	if _, err := os.Stat(nobody.Home); err == nil {
		t.Skipf("nobody's home %s exists here", nobody.Home)
	}
	out, err = asUserEnv(t, &nobody, rootHome, bin, dir, short...)
	if err == nil {
		t.Fatalf("calibrate as nobody (home %s, which does not exist) succeeded:\n%s", nobody.Home, out)
	}
	for _, want := range []string{"cannot store the host profile at " + filepath.Join(nobody.Home, ".local", "state", "maxwell", "profile.json"), `--profile ""`} {
		if !strings.Contains(out, want) {
			t.Errorf("calibrate as nobody does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "busy threads for") {
		t.Errorf("calibrate as nobody ran the load step before refusing:\n%s", out)
	}
	if out, err := asUserEnv(t, &nobody, rootHome, bin, dir, append(short, "--profile", "")...); err != nil || strings.Contains(out, "\nprofile") {
		t.Errorf(`calibrate --profile "" as nobody: %v; want a fit and no profile:\n%s`, err, out)
	}
}
