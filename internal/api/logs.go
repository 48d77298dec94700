package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// flushWriter flushes the response after every write, so that a followed
// log reaches the client as it is written.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}

// logs serves GET /v1/cells/{name}/logs[?follow=1]: the cell's standard
// output and error as text, oldest first; with follow, what it writes
// next, until the client goes.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := ValidCellName(name); err != nil {
		s.fail(w, r, err)
		return
	}
	follow := r.URL.Query().Get("follow") == "1"
	// Errors before the first byte get their status; after it, the
	// stream just ends.
	started := false
	out := writeFunc(func(p []byte) (int, error) {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusOK)
		}
		f, _ := w.(http.Flusher)
		return flushWriter{w, f}.Write(p)
	})
	ctx := r.Context()
	if !follow {
		var cancel context.CancelFunc
		ctx, cancel = s.call(r)
		defer cancel()
	}
	err := s.b.Logs(ctx, name, follow, out)
	if err != nil && !started {
		s.fail(w, r, err)
		return
	}
	if !started {
		w.WriteHeader(http.StatusOK)
	}
}

type writeFunc func([]byte) (int, error)

func (f writeFunc) Write(p []byte) (int, error) { return f(p) }

// Logs copies a cell's log to out; with follow, until ctx ends.
func (c *Client) Logs(ctx context.Context, name string, follow bool, out io.Writer) error {
	if err := ValidCellName(name); err != nil {
		return err
	}
	path := cellPath(name, "logs")
	if follow {
		path += "?follow=1"
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout())
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://maxwell"+path, nil)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(ctx, c.timeout(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &Error{}
		if json.Unmarshal(b, e) != nil || e.Code == "" {
			e = &Error{Code: codeOfStatus(resp.StatusCode), Message: fmt.Sprintf("daemon answered %s", resp.Status)}
		}
		return e
	}
	if _, err := io.Copy(out, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("api: reading the log: %w", err)
	}
	return nil
}
