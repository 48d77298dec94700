// Package apitest provides a Backend test double and a helper that serves
// it on a real Unix socket, for tests of the control API's clients.
package apitest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/maxwellhq/maxwell/internal/api"
	"github.com/maxwellhq/maxwell/internal/event"
	"github.com/maxwellhq/maxwell/internal/life"
	"github.com/maxwellhq/maxwell/internal/units"
)

// Backend is a test double for the daemon's engine with just enough logic
// to observe: spawned cells appear paused with their wallet as balance,
// Fund adds to the balance, Kill, Pause and Resume change the state, and
// dead cells refuse all three with ErrConflict. A spawn of "/nonexistent"
// fails with an internal error, and one with an OCI rootfs with
// ErrUnsupported. Its State is fixed apart from the cells and Tick (7 +
// the number of spawns). Set the exported fields before serving.
type Backend struct {
	// StateErr, if set, is State's answer.
	StateErr error
	// NaNState makes State answer a figure JSON cannot carry.
	NaNState bool
	// Block, if set, makes every call wait for it or for its context.
	Block chan struct{}
	// CtxErr, if set, receives the context error of a blocked call.
	CtxErr chan error

	mu      sync.Mutex
	cells   []api.Cell
	spawned []api.SpawnRequest
	sets    []api.SetRequest
	hosts   []api.HostRequest
	nextPID int
}

// Spawned returns the requests Spawn accepted, as the backend saw them.
func (f *Backend) Spawned() []api.SpawnRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.SpawnRequest(nil), f.spawned...)
}

// SetCells replaces the cells.
func (f *Backend) SetCells(cells ...api.Cell) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cells = append([]api.Cell(nil), cells...)
}

// Serve serves b on a Unix socket in a temporary directory until the test
// ends, and returns the socket's path.
func Serve(t testing.TB, b api.Backend) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := api.Listen(path, api.Access{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.NewServer(b, api.Options{}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("api server: %v", err)
		}
	})
	return path
}

func (f *Backend) wait(ctx context.Context) error {
	if f.Block == nil {
		return nil
	}
	select {
	case <-f.Block:
		return nil
	case <-ctx.Done():
		if f.CtxErr != nil {
			f.CtxErr <- ctx.Err()
		}
		return fmt.Errorf("backend: %w", ctx.Err())
	}
}

func (f *Backend) find(name string) (*api.Cell, error) {
	for i := range f.cells {
		if f.cells[i].Name == name {
			return &f.cells[i], nil
		}
	}
	return nil, fmt.Errorf("%w: %s", api.ErrNotFound, name)
}

func (f *Backend) State(ctx context.Context) (api.State, error) {
	if err := f.wait(ctx); err != nil {
		return api.State{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.StateErr != nil {
		return api.State{}, f.StateErr
	}
	st := api.State{
		Time:        time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Started:     time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC),
		Tick:        uint64(len(f.spawned)) + 7,
		TickSeconds: 0.1,
		Slots:       2,
		Temperature: api.Temperature{Celsius: 61.5, Setpoint: 70, Source: api.Source{Kind: "model", Name: "rc-twin", Tier: 3, Estimated: true, Model: "R=0.4 K/W"}},
		Power:       api.Power{Watts: 42.25, Source: api.Source{Kind: "rapl", Name: "package-0", Tier: 2}},
		Multiplier:  1.5,
		Reserve:     1500,
		Clearing:    1800,
		Apoptoses:   1,
		Cells:       append([]api.Cell(nil), f.cells...),
		Events:      []event.Event{{Time: time.Date(2025, 1, 2, 3, 1, 0, 0, time.UTC), Tick: 3, Kind: event.Apoptosis, Cell: "old", Detail: "balance -5"}},
		History:     []api.PricePoint{{Tick: 6, Celsius: 61, Multiplier: 1.4, Reserve: 1400}, {Tick: 7, Celsius: 61.5, Multiplier: 1.5, Reserve: 1500, Clearing: 1800}},
	}
	if f.NaNState {
		st.Power.Watts = math.NaN()
	}
	return st, nil
}

func (f *Backend) Spawn(ctx context.Context, req api.SpawnRequest) (api.CellInfo, error) {
	if err := f.wait(ctx); err != nil {
		return api.CellInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.OCIRootfs != "" {
		return api.CellInfo{}, fmt.Errorf("%w: OCI cells", api.ErrUnsupported)
	}
	if req.Name == "" {
		req.Name = fmt.Sprintf("cell-%d", len(f.cells)+1)
	}
	if _, err := f.find(req.Name); err == nil {
		return api.CellInfo{}, fmt.Errorf("%w: %s", api.ErrExists, req.Name)
	}
	if req.Argv[0] == "/nonexistent" {
		return api.CellInfo{}, fmt.Errorf("start %s: no such file or directory", req.Argv[0])
	}
	f.nextPID++
	pid := 1000 + f.nextPID
	f.spawned = append(f.spawned, req)
	f.cells = append(f.cells, api.Cell{
		Name: req.Name, State: life.Paused, PID: pid, Backend: "hybrid", Argv: req.Argv,
		Balance: req.Wallet, Endowment: req.Wallet, TapRate: req.TapRate, TapCap: req.TapCap,
		BidPrice: req.MaxBid, BidUnits: req.Units, Standing: req.MaxBid > 0,
	})
	return api.CellInfo{Name: req.Name, PID: pid, Backend: "hybrid"}, nil
}

func (f *Backend) Fund(ctx context.Context, name string, credits units.Credits) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.find(name)
	if err != nil {
		return err
	}
	if c.State == life.Dead {
		return fmt.Errorf("%w: %s is dead", api.ErrConflict, name)
	}
	c.Balance += credits
	return nil
}

func (f *Backend) Kill(ctx context.Context, name string) error {
	return f.set(ctx, name, life.Dead, func(c *api.Cell) error {
		if c.State == life.Dead {
			return fmt.Errorf("%w: %s is already dead", api.ErrConflict, name)
		}
		return nil
	})
}

func (f *Backend) Pause(ctx context.Context, name string) error {
	return f.set(ctx, name, life.Paused, alive)
}

func (f *Backend) Resume(ctx context.Context, name string) error {
	return f.set(ctx, name, life.Running, alive)
}

func alive(c *api.Cell) error {
	if c.State == life.Dead {
		return fmt.Errorf("%w: %s is dead", api.ErrConflict, c.Name)
	}
	return nil
}

func (f *Backend) set(ctx context.Context, name string, s life.State, check func(*api.Cell) error) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.find(name)
	if err != nil {
		return err
	}
	if err := check(c); err != nil {
		return err
	}
	c.State = s
	return nil
}

// Set implements api.Backend: it records the request (Sets) and changes
// the row's tap and standing bid.
func (f *Backend) Set(ctx context.Context, name string, req api.SetRequest) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.cells {
		if f.cells[i].Name != name {
			continue
		}
		if f.cells[i].State == life.Dead {
			return fmt.Errorf("%w: %s is dead", api.ErrConflict, name)
		}
		f.sets = append(f.sets, req)
		if req.TapRate != nil {
			f.cells[i].TapRate = *req.TapRate
		}
		if req.TapCap != nil {
			f.cells[i].TapCap = *req.TapCap
		}
		if req.MaxBid != nil {
			f.cells[i].BidPrice, f.cells[i].Standing = *req.MaxBid, *req.MaxBid > 0
		}
		return nil
	}
	return fmt.Errorf("%w: %s", api.ErrNotFound, name)
}

// Sets returns the SetRequests Set accepted.
func (f *Backend) Sets() []api.SetRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.SetRequest(nil), f.sets...)
}

// SetHost implements api.Backend: it records the request (Hosts).
func (f *Backend) SetHost(ctx context.Context, req api.HostRequest) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts = append(f.hosts, req)
	return nil
}

// Hosts returns the HostRequests SetHost accepted.
func (f *Backend) Hosts() []api.HostRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.HostRequest(nil), f.hosts...)
}

// Logs implements api.Backend: a cell's log is a line naming it.
func (f *Backend) Logs(ctx context.Context, name string, follow bool, w io.Writer) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	found := false
	for _, c := range f.cells {
		found = found || c.Name == name
	}
	f.mu.Unlock()
	if !found {
		return fmt.Errorf("%w: %s", api.ErrNotFound, name)
	}
	_, err := fmt.Fprintf(w, "log of %s\n", name)
	return err
}
