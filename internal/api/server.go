package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/maxwellhq/maxwell/internal/units"
)

// Backend is what the control API controls: the daemon's engine. Errors
// wrapping one of the package's sentinels (ErrNotFound, ErrExists,
// ErrConflict, ErrUnsupported, ErrUnavailable, ErrBadRequest, ErrForbidden)
// are answered with that code; any other error is an internal error. Every
// method must return when ctx is done. The Server puts the caller's kernel
// credentials in every call's ctx (PeerOf); the Server itself authorizes
// nothing beyond the socket's file mode: a Backend that must tell callers
// apart (package access) reads them there.
type Backend interface {
	State(ctx context.Context) (State, error)
	// Spawn starts a validated request's program in a new cell.
	Spawn(ctx context.Context, req SpawnRequest) (CellInfo, error)
	// Fund adds credits (> 0) to a cell's wallet.
	Fund(ctx context.Context, name string, credits units.Credits) error
	Kill(ctx context.Context, name string) error
	Pause(ctx context.Context, name string) error
	Resume(ctx context.Context, name string) error
	// Set changes a living cell's terms (a validated SetRequest).
	Set(ctx context.Context, name string, req SetRequest) error
	// SetHost changes the host's limits (a validated HostRequest).
	SetHost(ctx context.Context, req HostRequest) error
	// Logs copies a cell's standard output and error to w; with follow,
	// until ctx ends.
	Logs(ctx context.Context, name string, follow bool, w io.Writer) error
}

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// APIVersion is the path prefix and version of this API.
const APIVersion = "v1"

// Options configures a Server. The zero value is usable.
type Options struct {
	// Log receives one line per failed request; nil discards.
	Log *slog.Logger
	// CallTimeout bounds each Backend call; 0 means 60 s.
	CallTimeout time.Duration
	// CellOf, if set, says at accept which cell a connecting process is
	// in (Peer.Cell).
	CellOf func(pid int) (string, bool)
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// once its context is done; 0 means 5 s.
	ShutdownTimeout time.Duration
}

// Server serves the control API over HTTP/1.1 with JSON bodies:
//
//	GET  /v1/ping                → 200 Ping
//	GET  /v1/state               → 200 State
//	POST /v1/cells               SpawnRequest → 201 CellInfo
//	POST /v1/cells/{name}/fund   FundRequest → 204
//	POST /v1/cells/{name}/kill   → 204
//	POST /v1/cells/{name}/pause  → 204
//	POST /v1/cells/{name}/resume → 204
//	POST /v1/adopt               AdoptRequest → 201 CellInfo (a Backend that is an Adopter)
//	POST /v1/cells/{name}/set    SetRequest → 204
//	POST /v1/host                HostRequest → 204
//	GET  /v1/cells/{name}/logs   → 200 text (?follow=1: streamed)
//
// A {name} is ValidCellName: an adopted cell's "namespace/pod" travels
// path-escaped ("namespace%2Fpod"), as one segment.
//
// Errors are answered with the Code's HTTP status and the body
// {"error": "…", "code": "…"}.
type Server struct {
	b    Backend
	opts Options
	mux  *http.ServeMux
}

// NewServer returns a server for b.
func NewServer(b Backend, opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 60 * time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	s := &Server{b: b, opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /v1/ping", s.ping)
	s.mux.HandleFunc("GET /v1/state", s.state)
	s.mux.HandleFunc("POST /v1/cells", s.spawn)
	s.mux.HandleFunc("POST /v1/cells/{name}/fund", s.fund)
	s.mux.HandleFunc("POST /v1/adopt", s.adopt)
	s.mux.HandleFunc("POST /v1/cells/{name}/set", s.set)
	s.mux.HandleFunc("POST /v1/host", s.setHost)
	s.mux.HandleFunc("GET /v1/cells/{name}/logs", s.logs)
	for verb, f := range map[string]func(context.Context, string) error{
		"kill": b.Kill, "pause": b.Pause, "resume": b.Resume,
	} {
		s.mux.HandleFunc("POST /v1/cells/{name}/"+verb, s.act(f))
	}
	return s
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// serveHTTP routes r, answering unknown paths and methods in JSON too.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			w.Header().Set("Allow", m)
			s.failStatus(w, r, http.StatusMethodNotAllowed, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%s %s: method not allowed, want %s", r.Method, r.URL.Path, m)})
			return
		}
	}
	s.fail(w, r, &Error{Code: CodeNotFound, Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)})
}

// Serve answers requests on ln until ctx is done, then stops accepting,
// waits up to Options.ShutdownTimeout for requests in flight (their
// contexts are cancelled with ctx), and closes ln. It returns nil after a
// shutdown by ctx, else the error that stopped it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			p, err := connPeer(c)
			if err != nil {
				s.opts.Log.Debug("control connection without peer credentials", "err", err)
				return ctx
			}
			if s.opts.CellOf != nil {
				p.Cell, _ = s.opts.CellOf(p.PID)
			}
			return WithPeer(ctx, p)
		},
		ErrorLog: slog.NewLogLogger(s.opts.Log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	if err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}

func (s *Server) call(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.opts.CallTimeout)
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	s.reply(w, r, http.StatusOK, Ping{API: APIVersion, PID: os.Getpid()})
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.call(r)
	defer cancel()
	st, err := s.b.State(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, r, http.StatusOK, st)
}

func (s *Server) spawn(w http.ResponseWriter, r *http.Request) {
	create(s, w, r, &SpawnRequest{}, s.b.Spawn)
}

func (s *Server) adopt(w http.ResponseWriter, r *http.Request) {
	a, ok := s.b.(Adopter)
	if !ok {
		s.fail(w, r, fmt.Errorf("%w: this daemon does not adopt cgroups (start it with --adopt)", ErrUnsupported))
		return
	}
	create(s, w, r, &AdoptRequest{}, a.Adopt)
}

// createRequest is a request that makes a cell.
type createRequest[T any] interface {
	*T
	Validate() error
	normalize()
}

// create serves a request that makes a cell: decoded, validated, with
// its defaults, to call; 201 and the cell's CellInfo.
func create[T any, P createRequest[T]](s *Server, w http.ResponseWriter, r *http.Request, req P, call func(context.Context, T) (CellInfo, error)) {
	if err := decode(w, r, req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := req.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	req.normalize()
	ctx, cancel := s.call(r)
	defer cancel()
	info, err := call(ctx, *req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, r, http.StatusCreated, info)
}

func (s *Server) fund(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := ValidCellName(name); err != nil {
		s.fail(w, r, err)
		return
	}
	var req FundRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Credits <= 0 {
		s.fail(w, r, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("credits %d: must be positive", req.Credits)})
		return
	}
	ctx, cancel := s.call(r)
	defer cancel()
	if err := s.b.Fund(ctx, name, req.Credits); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// act serves an action on a named cell that takes no body.
func (s *Server) act(f func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := ValidCellName(name); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := noBody(w, r); err != nil {
			s.fail(w, r, err)
			return
		}
		ctx, cancel := s.call(r)
		defer cancel()
		if err := f(ctx, name); err != nil {
			s.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// decode reads a JSON body of at most MaxBodyBytes into v, refusing
// unknown fields and trailing data.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badBody(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return &Error{Code: CodeBadRequest, Message: "request body: trailing data after the JSON value"}
		}
		return badBody(err)
	}
	return nil
}

// noBody refuses a body where none is expected; blank or {} is fine.
func noBody(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return badBody(err)
	}
	if b = bytes.TrimSpace(b); len(b) > 0 && string(b) != "{}" {
		return &Error{Code: CodeBadRequest, Message: "request body: this call takes none"}
	}
	return nil
}

func badBody(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
	case errors.Is(err, io.EOF):
		return &Error{Code: CodeBadRequest, Message: "request body: empty, want a JSON object"}
	}
	return &Error{Code: CodeBadRequest, Message: "request body: " + err.Error()}
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.fail(w, r, fmt.Errorf("encode answer: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	s.failStatus(w, r, e.Code.Status(), e)
}

func (s *Server) failStatus(w http.ResponseWriter, r *http.Request, status int, e *Error) {
	s.opts.Log.Debug("api request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", e.Message)
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
