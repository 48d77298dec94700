package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// DefaultTimeout bounds each Client call unless Client.Timeout says
// otherwise.
const DefaultTimeout = 10 * time.Second

// Client calls a daemon's control API. Its methods mirror Backend. Errors
// answered by the daemon match the package's sentinels with errors.Is; a
// daemon that is not there gives an error wrapping ErrNotRunning.
type Client struct {
	// Timeout bounds each call; 0 means DefaultTimeout. Set it before
	// the first call.
	Timeout time.Duration
	// SpawnTimeout bounds Spawn, which starts a process; 0 means
	// 4 × Timeout.
	SpawnTimeout time.Duration

	path string
	hc   *http.Client
}

// Dial returns a client for the daemon at the socket path. It does not
// connect: each call does, and reports a missing daemon then.
func Dial(path string) (*Client, error) {
	if path == "" {
		return nil, errors.New("api: empty socket path")
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr}}, nil
}

// Path returns the socket path.
func (c *Client) Path() string { return c.path }

// Close closes idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Ping checks that a daemon answers.
func (c *Client) Ping(ctx context.Context) (Ping, error) {
	var p Ping
	err := c.do(ctx, c.timeout(), http.MethodGet, "/v1/ping", nil, &p)
	return p, err
}

// State returns the daemon's state.
func (c *Client) State(ctx context.Context) (State, error) {
	var st State
	err := c.do(ctx, c.timeout(), http.MethodGet, "/v1/state", nil, &st)
	return st, err
}

// NextState polls the daemon's state every interval until its tick is past
// after, and returns it. It returns when ctx is done or a call fails.
func (c *Client) NextState(ctx context.Context, after uint64, interval time.Duration) (State, error) {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := c.State(ctx)
		if err != nil || st.Tick > after {
			return st, err
		}
		select {
		case <-ctx.Done():
			return State{}, ctx.Err()
		case <-t.C:
		}
	}
}

// Spawn starts a program in a new cell.
func (c *Client) Spawn(ctx context.Context, req SpawnRequest) (CellInfo, error) {
	var info CellInfo
	d := c.SpawnTimeout
	if d <= 0 {
		d = 4 * c.timeout()
	}
	err := c.do(ctx, d, http.MethodPost, "/v1/cells", req, &info)
	return info, err
}

// Adopt puts an existing cgroup under the economy as a cell (the daemon
// must allow it: `maxwell daemon --adopt`, and the caller be root).
func (c *Client) Adopt(ctx context.Context, req AdoptRequest) (CellInfo, error) {
	var info CellInfo
	err := c.do(ctx, c.timeout(), http.MethodPost, "/v1/adopt", req, &info)
	return info, err
}

// Fund adds credits to a cell's wallet.
func (c *Client) Fund(ctx context.Context, name string, credits units.Credits) error {
	if err := ValidCellName(name); err != nil {
		return err
	}
	return c.do(ctx, c.timeout(), http.MethodPost, cellPath(name, "fund"), FundRequest{Credits: credits}, nil)
}

// Kill kills a cell and closes its wallet.
func (c *Client) Kill(ctx context.Context, name string) error {
	if err := ValidCellName(name); err != nil {
		return err
	}
	return c.do(ctx, c.timeout(), http.MethodPost, cellPath(name, "kill"), nil, nil)
}

// Pause freezes a cell.
func (c *Client) Pause(ctx context.Context, name string) error {
	if err := ValidCellName(name); err != nil {
		return err
	}
	return c.do(ctx, c.timeout(), http.MethodPost, cellPath(name, "pause"), nil, nil)
}

// Resume thaws a cell the operator paused.
func (c *Client) Resume(ctx context.Context, name string) error {
	if err := ValidCellName(name); err != nil {
		return err
	}
	return c.do(ctx, c.timeout(), http.MethodPost, cellPath(name, "resume"), nil, nil)
}

func cellPath(name, verb string) string {
	return "/v1/cells/" + url.PathEscape(name) + "/" + verb
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// do makes one call: body (if not nil) goes out as JSON, and a 2xx
// answer's JSON goes into out (if not nil).
func (c *Client) do(ctx context.Context, timeout time.Duration, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("api: encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://maxwell"+path, rd)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(ctx, timeout, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return c.transportError(ctx, timeout, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{}
		if json.Unmarshal(b, e) != nil || e.Code == "" {
			e = &Error{Code: codeOfStatus(resp.StatusCode), Message: fmt.Sprintf("daemon answered %s", resp.Status)}
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("api: %s %s: bad answer from the daemon: %w", method, path, err)
		}
	}
	return nil
}

// transportError explains a failure to reach the daemon.
func (c *Client) transportError(ctx context.Context, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTSOCK):
		return fmt.Errorf("%w: no maxwell daemon at %s (is `maxwell daemon` running?)", ErrNotRunning, c.path)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the maxwell daemon at %s closed the connection (did it stop?): %v", ErrNotRunning, c.path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("api: permission denied on %s: run as root or as a member of the daemon's socket group: %w", c.path, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return fmt.Errorf("api: the maxwell daemon at %s did not answer within %v: %w", c.path, timeout, err)
	}
	return fmt.Errorf("api: %s: %w", c.path, err)
}

func codeOfStatus(status int) Code {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
		return CodeBadRequest
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusConflict:
		return CodeConflict
	case http.StatusNotImplemented:
		return CodeUnsupported
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	}
	return CodeInternal
}
