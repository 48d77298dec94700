package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/api/apitest"
	"github.com/maxwellhq/maxwell/internal/life"
)

func dial(t *testing.T, path string) *api.Client {
	t.Helper()
	c, err := api.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawClient speaks HTTP to the socket directly, to send what api.Client
// never would.
func rawClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}, Timeout: 10 * time.Second}
}

func TestEndpoints(t *testing.T) {
	b := &apitest.Backend{}
	c := dial(t, apitest.Serve(t, b))
	ctx := context.Background()

	p, err := c.Ping(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.API != "v1" || p.PID <= 0 {
		t.Errorf("ping = %+v", p)
	}

	info, err := c.Spawn(ctx, api.SpawnRequest{Name: "miner", Argv: []string{"/bin/sleep", "60"}, Env: []string{"A=1"}, Wallet: 5000, TapRate: 10, MaxBid: 700})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "miner" || info.PID <= 0 || info.Backend != "hybrid" {
		t.Errorf("spawn = %+v", info)
	}
	auto, err := c.Spawn(ctx, api.SpawnRequest{Argv: []string{"true"}, Wallet: 1})
	if err != nil {
		t.Fatal(err)
	}
	if auto.Name != "cell-2" {
		t.Errorf("daemon-chosen name = %q, want cell-2", auto.Name)
	}
	// The server fills in the documented defaults before the backend
	// sees the request.
	got := b.Spawned()[0]
	want := api.SpawnRequest{Name: "miner", Argv: []string{"/bin/sleep", "60"}, Env: []string{"A=1"}, Wallet: 5000, TapRate: 10, TapCap: 5000, MaxBid: 700, Units: 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("backend saw %+v\nwant %+v", got, want)
	}

	if err := c.Fund(ctx, "miner", 250); err != nil {
		t.Fatal(err)
	}
	if err := c.Resume(ctx, "miner"); err != nil {
		t.Fatal(err)
	}
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tick != 9 || st.Temperature.Source.Model != "R=0.4 K/W" || !st.Temperature.Source.Estimated || st.Power.Watts != 42.25 || len(st.History) != 2 || len(st.Events) != 1 {
		t.Errorf("state = %+v", st)
	}
	if len(st.Cells) != 2 {
		t.Fatalf("cells = %+v", st.Cells)
	}
	if m := st.Cells[0]; m.Name != "miner" || m.Balance != 5250 || m.Endowment != 5000 || m.State != life.Running || !m.Standing || m.BidUnits != 1 {
		t.Errorf("miner = %+v", m)
	}
	if err := c.Pause(ctx, "miner"); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctx, "cell-2"); err != nil {
		t.Fatal(err)
	}
	st, err = c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cells[0].State != life.Paused || st.Cells[1].State != life.Dead {
		t.Errorf("states after pause and kill: %s, %s", st.Cells[0].State, st.Cells[1].State)
	}
}

func TestNextState(t *testing.T) {
	b := &apitest.Backend{}
	c := dial(t, apitest.Serve(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan api.State, 1)
	go func() {
		st, err := c.NextState(ctx, 7, time.Millisecond)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	// The tick is 7 until something is spawned.
	if _, err := c.Spawn(ctx, api.SpawnRequest{Argv: []string{"true"}, Wallet: 1}); err != nil {
		t.Fatal(err)
	}
	if st := <-done; st.Tick != 8 {
		t.Errorf("NextState after 7 gave tick %d", st.Tick)
	}
	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, err := c.NextState(short, 100, time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NextState past its context = %v, want deadline exceeded", err)
	}
}

// TestErrors sends every kind of bad request and checks the status, the
// code and that the message says what is wrong.
func TestErrors(t *testing.T) {
	b := &apitest.Backend{}
	path := apitest.Serve(t, b)
	c := dial(t, path)
	ctx := context.Background()
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "a", Argv: []string{"true"}, Wallet: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "gone", Argv: []string{"true"}, Wallet: 10}); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	huge := `{"argv":["x"],"wallet_credits":1,"env":["A=` + strings.Repeat("x", api.MaxBodyBytes) + `"]}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     api.Code
		msg                      string
	}{
		{"negative wallet", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":-5}`, 400, api.CodeBadRequest, "wallet_credits -5"},
		{"NaN wallet", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":NaN}`, 400, api.CodeBadRequest, "invalid character"},
		{"fractional wallet", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":1.5}`, 400, api.CodeBadRequest, "wallet_credits"},
		{"wallet overflows int64", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":9223372036854775808}`, 400, api.CodeBadRequest, "wallet_credits"},
		{"no argv", "POST", "/v1/cells", `{"wallet_credits":5}`, 400, api.CodeBadRequest, "a command is required"},
		{"empty argv", "POST", "/v1/cells", `{"argv":[],"wallet_credits":5}`, 400, api.CodeBadRequest, "a command is required"},
		{"empty command", "POST", "/v1/cells", `{"argv":[""],"wallet_credits":5}`, 400, api.CodeBadRequest, "a command is required"},
		{"unknown field", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":5,"walet":1}`, 400, api.CodeBadRequest, `unknown field "walet"`},
		{"trailing data", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":5} {}`, 400, api.CodeBadRequest, "trailing data"},
		{"empty body", "POST", "/v1/cells", ``, 400, api.CodeBadRequest, "empty"},
		{"not an object", "POST", "/v1/cells", `[1]`, 400, api.CodeBadRequest, "request body"},
		{"oversized body", "POST", "/v1/cells", huge, 400, api.CodeBadRequest, "larger than 1048576 bytes"},
		{"no money at all", "POST", "/v1/cells", `{"argv":["x"]}`, 400, api.CodeBadRequest, "could never pay"},
		{"negative tap", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":1,"tap_credits_per_second":-1}`, 400, api.CodeBadRequest, "tap_credits_per_second -1"},
		{"units without a bid", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":1,"units":2}`, 400, api.CodeBadRequest, "units 2 without max_bid_credits"},
		{"bad env", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":1,"env":["NOEQUALS"]}`, 400, api.CodeBadRequest, `env[0] "NOEQUALS"`},
		{"bad cpu", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":1,"cpus":[-1]}`, 400, api.CodeBadRequest, "CPU -1"},
		{"bad name", "POST", "/v1/cells", `{"name":"a/b","argv":["x"],"wallet_credits":1}`, 400, api.CodeBadRequest, `"a/b" holds '/'`},
		{"existing name", "POST", "/v1/cells", `{"name":"a","argv":["x"],"wallet_credits":1}`, 409, api.CodeExists, "cell already exists: a"},
		{"oci unsupported", "POST", "/v1/cells", `{"argv":["x"],"wallet_credits":1,"oci_rootfs":"/srv/rootfs"}`, 501, api.CodeUnsupported, "OCI cells"},
		{"backend failure", "POST", "/v1/cells", `{"argv":["/nonexistent"],"wallet_credits":1}`, 500, api.CodeInternal, "no such file or directory"},
		{"fund zero", "POST", "/v1/cells/a/fund", `{"credits":0}`, 400, api.CodeBadRequest, "credits 0: must be positive"},
		{"fund negative", "POST", "/v1/cells/a/fund", `{"credits":-3}`, 400, api.CodeBadRequest, "credits -3"},
		{"fund string", "POST", "/v1/cells/a/fund", `{"credits":"3"}`, 400, api.CodeBadRequest, "credits"},
		{"fund unknown", "POST", "/v1/cells/nobody/fund", `{"credits":3}`, 404, api.CodeNotFound, "no such cell: nobody"},
		{"fund dead", "POST", "/v1/cells/gone/fund", `{"credits":3}`, 409, api.CodeConflict, "gone is dead"},
		{"kill unknown", "POST", "/v1/cells/nobody/kill", ``, 404, api.CodeNotFound, "nobody"},
		{"kill dead", "POST", "/v1/cells/gone/kill", ``, 409, api.CodeConflict, "already dead"},
		{"pause unknown", "POST", "/v1/cells/nobody/pause", ``, 404, api.CodeNotFound, "nobody"},
		{"resume dead", "POST", "/v1/cells/gone/resume", ``, 409, api.CodeConflict, "dead"},
		{"kill with a body", "POST", "/v1/cells/a/kill", `{"force":true}`, 400, api.CodeBadRequest, "takes none"},
		{"escaped slash in name, an adopted cell's", "POST", "/v1/cells/a%2Fb/kill", ``, 404, api.CodeNotFound, "no such cell: a/b"},
		{"escaped slashes around dot dot", "POST", "/v1/cells/a%2F..%2Fb/kill", ``, 400, api.CodeBadRequest, "bad segment"},
		{"dotdot name", "POST", "/v1/cells/../kill", ``, 404, api.CodeNotFound, "no such endpoint"},
		{"unknown path", "GET", "/v1/nothing", ``, 404, api.CodeNotFound, "no such endpoint: GET /v1/nothing"},
		{"old version", "GET", "/v0/state", ``, 404, api.CodeNotFound, "no such endpoint"},
		{"wrong method", "POST", "/v1/state", `{}`, 405, api.CodeBadRequest, "method not allowed, want GET"},
		{"wrong method on a cell", "GET", "/v1/cells/a/kill", ``, 405, api.CodeBadRequest, "want POST"},
	}
	hc := rawClient(path)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://maxwell"+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d (body %s)", resp.StatusCode, tt.status, raw)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var e struct {
				Error string   `json:"error"`
				Code  api.Code `json:"code"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("error body %q: %v", raw, err)
			}
			if e.Code != tt.code || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("got %q %q, want code %q and a message with %q", e.Code, e.Error, tt.code, tt.msg)
			}
		})
	}
	// Nothing bad reached the backend: only the two good spawns did.
	if n := len(b.Spawned()); n != 2 {
		t.Errorf("backend saw %d spawns, want 2", n)
	}
}

func TestStateErrors(t *testing.T) {
	tests := []struct {
		name    string
		backend *apitest.Backend
		want    error
		msg     string
	}{
		{"unavailable", &apitest.Backend{StateErr: errors.Join(api.ErrUnavailable, errors.New("engine starting"))}, api.ErrUnavailable, "engine starting"},
		{"internal", &apitest.Backend{StateErr: errors.New("disk on fire")}, api.ErrInternal, "disk on fire"},
		{"not encodable", &apitest.Backend{NaNState: true}, api.ErrInternal, "unsupported value: NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, apitest.Serve(t, tt.backend))
			_, err := c.State(context.Background())
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("State() = %v, want %v with %q", err, tt.want, tt.msg)
			}
		})
	}
}

// TestClientErrorsMatchSentinels checks that errors cross the socket with
// their class.
func TestClientErrorsMatchSentinels(t *testing.T) {
	c := dial(t, apitest.Serve(t, &apitest.Backend{}))
	ctx := context.Background()
	if _, err := c.Spawn(ctx, api.SpawnRequest{Name: "x", Argv: []string{"true"}, Wallet: 3}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"fund unknown", c.Fund(ctx, "y", 1), api.ErrNotFound},
		{"fund zero", c.Fund(ctx, "x", 0), api.ErrBadRequest},
		{"bad name", c.Kill(ctx, "a b"), api.ErrBadRequest},
		{"spawn twice", func() error {
			_, err := c.Spawn(ctx, api.SpawnRequest{Name: "x", Argv: []string{"true"}, Wallet: 3})
			return err
		}(), api.ErrExists},
		{"oci", func() error {
			_, err := c.Spawn(ctx, api.SpawnRequest{Argv: []string{"true"}, Wallet: 3, OCIRootfs: "/r"})
			return err
		}(), api.ErrUnsupported},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
		for _, other := range []error{api.ErrNotFound, api.ErrBadRequest, api.ErrExists, api.ErrUnsupported, api.ErrNotRunning} {
			if other != tt.want && errors.Is(tt.err, other) {
				t.Errorf("%s: %v also matches %v", tt.name, tt.err, other)
			}
		}
	}
}

func TestClientTimeout(t *testing.T) {
	b := &apitest.Backend{Block: make(chan struct{}), CtxErr: make(chan error, 1)}
	defer close(b.Block)
	c := dial(t, apitest.Serve(t, b))
	c.Timeout = 50 * time.Millisecond
	err := c.Kill(context.Background(), "x")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer within 50ms") {
		t.Errorf("Kill on a stuck daemon = %v", err)
	}
	// The server notices the client gave up and cancels the backend call.
	select {
	case err := <-b.CtxErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("backend context ended with %v, want canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend call not cancelled after the client gave up")
	}
}

func TestServerCallTimeout(t *testing.T) {
	b := &apitest.Backend{Block: make(chan struct{})}
	defer close(b.Block)
	path := filepath.Join(t.TempDir(), "c.sock")
	ln, err := api.Listen(path, api.Access{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.NewServer(b, api.Options{CallTimeout: 20 * time.Millisecond}).Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	err = dial(t, path).Pause(context.Background(), "x")
	if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("Pause on a stuck backend = %v, want unavailable", err)
	}
}
