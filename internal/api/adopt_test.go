package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/api/apitest"
	"github.com/maxwellhq/maxwell/internal/life"
)

// adopter is apitest's Backend that also adopts: it records the requests
// and lists each as a cell.
type adopter struct {
	*apitest.Backend
	mu  sync.Mutex
	got []api.AdoptRequest
}

func (a *adopter) Adopt(_ context.Context, req api.AdoptRequest) (api.CellInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, req)
	a.SetCells(api.Cell{Name: req.Name, State: life.Paused, OwnerUID: -1, Cgroup: req.Cgroup, Balance: req.Wallet})
	return api.CellInfo{Name: req.Name, PID: 42, Backend: "adopted-hybrid"}, nil
}

// TestAdoptEndpoint: an Adopter backend gets the validated request with
// its defaults; a name with '/' (a pod's) travels as one path segment to
// fund, kill, pause and resume; a backend that does not adopt answers
// unsupported.
func TestAdoptEndpoint(t *testing.T) {
	ctx := context.Background()
	b := &adopter{Backend: &apitest.Backend{}}
	c := dial(t, apitest.Serve(t, b))
	info, err := c.Adopt(ctx, api.AdoptRequest{Cgroup: "/system.slice/web.service", Wallet: 900, TapRate: 5, MaxBid: 10})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "web.service" || info.Backend != "adopted-hybrid" {
		t.Errorf("adopt = %+v", info)
	}
	want := api.AdoptRequest{Name: "web.service", Cgroup: "/system.slice/web.service", Wallet: 900, TapRate: 5, TapCap: 900, MaxBid: 10, Units: 1, OnInsolvency: api.InsolvencyFreeze}
	if len(b.got) != 1 || !equalAdopt(b.got[0], want) {
		t.Errorf("backend got %+v; want %+v", b.got, want)
	}

	if _, err := c.Adopt(ctx, api.AdoptRequest{Name: "default/web-0", Cgroup: "/kubepods/podx", Wallet: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Fund(ctx, "default/web-0", 50); err != nil {
		t.Fatalf("fund default/web-0: %v", err)
	}
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Cells) != 1 || st.Cells[0].Name != "default/web-0" || st.Cells[0].Balance != 51 || st.Cells[0].Cgroup != "/kubepods/podx" {
		t.Errorf("cells after funding default/web-0: %+v", st.Cells)
	}
	for _, act := range []struct {
		verb string
		f    func(context.Context, string) error
	}{{"pause", c.Pause}, {"resume", c.Resume}, {"kill", c.Kill}} {
		if err := act.f(ctx, "default/web-0"); err != nil {
			t.Errorf("%s default/web-0: %v", act.verb, err)
		}
	}
	if err := c.Fund(ctx, "default/nobody", 1); !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "default/nobody") {
		t.Errorf("fund of an unknown pod: %v; want not found, naming it", err)
	}

	plain := dial(t, apitest.Serve(t, &apitest.Backend{}))
	if _, err := plain.Adopt(ctx, api.AdoptRequest{Cgroup: "/x", Wallet: 1}); !errors.Is(err, api.ErrUnsupported) || !strings.Contains(err.Error(), "--adopt") {
		t.Errorf("adopt on a daemon that does not adopt: %v; want unsupported, naming --adopt", err)
	}
}

func equalAdopt(a, b api.AdoptRequest) bool {
	return a.Name == b.Name && a.Cgroup == b.Cgroup && a.Wallet == b.Wallet && a.TapRate == b.TapRate && a.TapCap == b.TapCap &&
		a.MaxBid == b.MaxBid && a.Units == b.Units && a.OnInsolvency == b.OnInsolvency && strings.Join(a.StopArgv, " ") == strings.Join(b.StopArgv, " ")
}

// TestValidateAdoptRequest: what every daemon refuses, with a message
// that says what is wrong.
func TestValidateAdoptRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  api.AdoptRequest
		want string // in the error; "" for valid
	}{
		{"valid", api.AdoptRequest{Name: "ns/pod", Cgroup: "/kubepods/pod1", Wallet: 1}, ""},
		{"stop with a command", api.AdoptRequest{Cgroup: "/system.slice/a.service", Wallet: 1, OnInsolvency: api.InsolvencyStop, StopArgv: []string{"systemctl", "stop", "a.service"}}, ""},
		{"tap only", api.AdoptRequest{Cgroup: "/a", TapRate: 3}, ""},
		{"no cgroup", api.AdoptRequest{Wallet: 1}, "cgroup"},
		{"relative cgroup", api.AdoptRequest{Cgroup: "kubepods/pod1", Wallet: 1}, "clean absolute path"},
		{"unclean cgroup", api.AdoptRequest{Cgroup: "/kubepods/../etc", Wallet: 1}, "clean absolute path"},
		{"root cgroup", api.AdoptRequest{Cgroup: "/", Wallet: 1}, "clean absolute path"},
		{"name from a bad element", api.AdoptRequest{Cgroup: "/a b", Wallet: 1}, "give one"},
		{"bad name", api.AdoptRequest{Name: "ns//pod", Cgroup: "/a", Wallet: 1}, "bad segment"},
		{"unknown policy", api.AdoptRequest{Cgroup: "/a", Wallet: 1, OnInsolvency: "explode"}, "want freeze or stop"},
		{"stop without a command", api.AdoptRequest{Cgroup: "/a", Wallet: 1, OnInsolvency: api.InsolvencyStop}, "needs stop_argv"},
		{"no money", api.AdoptRequest{Cgroup: "/a"}, "could never pay"},
		{"negative wallet", api.AdoptRequest{Cgroup: "/a", Wallet: -1}, "negative"},
		{"units without bid", api.AdoptRequest{Cgroup: "/a", Wallet: 1, Units: 2}, "without max_bid"},
		{"NUL in command", api.AdoptRequest{Cgroup: "/a", Wallet: 1, OnInsolvency: api.InsolvencyStop, StopArgv: []string{"a\x00"}}, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			err := req.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate(%+v) = %v; want valid", tc.req, err)
			case tc.want != "" && (err == nil || !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate(%+v) = %v; want a bad request saying %q", tc.req, err, tc.want)
			}
		})
	}
}

// TestCellNames: spawned names have no '/', adopted ones are segments of
// the same characters joined by '/'.
func TestCellNames(t *testing.T) {
	for _, tc := range []struct {
		name        string
		spawn, cell bool
	}{
		{"miner", true, true},
		{"default/web-0", false, true},
		{"default/web-0/2", false, true},
		{"a b", false, false},
		{"ns/", false, false},
		{"/pod", false, false},
		{"..", false, false},
		{strings.Repeat("x", 65), false, false},
		{"ns/" + strings.Repeat("x", 200), false, true},
	} {
		if got := api.ValidName(tc.name) == nil; got != tc.spawn {
			t.Errorf("ValidName(%q) ok = %t; want %t", tc.name, got, tc.spawn)
		}
		err := api.ValidCellName(tc.name)
		if got := err == nil; got != tc.cell || err != nil && !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("ValidCellName(%q) = %v; want ok %t", tc.name, err, tc.cell)
		}
	}
	// A name the client would never send reaches the server as one
	// escaped segment and is refused there too.
	sock := apitest.Serve(t, &apitest.Backend{})
	resp, err := rawClient(sock).Post("http://maxwell/v1/cells/ns%2F..%2Fx/kill", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("kill ns/../x: %s; want 400", resp.Status)
	}
}
