package api

import (
	"context"
	"errors"
	"net/http"
)

// Code classifies an API error. It travels in the error body's "code".
type Code string

// The error codes and the HTTP status each travels with.
const (
	CodeBadRequest  Code = "bad_request" // 400
	CodeForbidden   Code = "forbidden"   // 403: the caller may not do this
	CodeNotFound    Code = "not_found"   // 404
	CodeExists      Code = "exists"      // 409
	CodeConflict    Code = "conflict"    // 409: the cell's state forbids it (dead, …)
	CodeUnsupported Code = "unsupported" // 501: this daemon cannot do it (yet)
	CodeUnavailable Code = "unavailable" // 503: try again later (ledger down, shutting down)
	CodeInternal    Code = "internal"    // 500
)

// Sentinel errors, one per Code. A Backend wraps them to choose the answer
// (fmt.Errorf("%w: %s", api.ErrNotFound, name)); a Client's errors match
// them with errors.Is.
var (
	ErrBadRequest  = &Error{Code: CodeBadRequest, Message: "bad request"}
	ErrForbidden   = &Error{Code: CodeForbidden, Message: "forbidden"}
	ErrNotFound    = &Error{Code: CodeNotFound, Message: "no such cell"}
	ErrExists      = &Error{Code: CodeExists, Message: "cell already exists"}
	ErrConflict    = &Error{Code: CodeConflict, Message: "not possible in the cell's state"}
	ErrUnsupported = &Error{Code: CodeUnsupported, Message: "not supported by this daemon"}
	ErrUnavailable = &Error{Code: CodeUnavailable, Message: "daemon unavailable"}
	ErrInternal    = &Error{Code: CodeInternal, Message: "internal error"}
)

// Errors about the daemon itself rather than a request.
var (
	// ErrNotRunning means no daemon answers on the socket.
	ErrNotRunning = errors.New("maxwell daemon not running")
	// ErrRunning means another daemon holds the lock or serves the socket.
	ErrRunning = errors.New("a maxwell daemon is already running")
)

// Error is an error answered by the API: its JSON body is
// {"error": Message, "code": Code}.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"error"`
	// err is the error it classifies, for errors.Is and errors.As in
	// the daemon (see Classify); it does not travel.
	err error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the error Classify classified, if any.
func (e *Error) Unwrap() error { return e.err }

// Classify gives err the code of sentinel (one of the Err… *Error
// values) without adding the sentinel's words to its message: "no such
// cell: x", not "no such cell: no such cell: x". err stays in the chain.
func Classify(sentinel *Error, err error) error {
	return &Error{Code: sentinel.Code, Message: err.Error(), err: err}
}

// Is reports whether target is an *Error with the same Code, so that every
// error of a code matches that code's sentinel.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Status returns the HTTP status that carries code.
func (c Code) Status() int {
	switch c {
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeExists, CodeConflict:
		return http.StatusConflict
	case CodeUnsupported:
		return http.StatusNotImplemented
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// asError classifies err: an *Error in its chain gives its code, and the
// message is err's own (the wrapping context included).
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{Code: e.Code, Message: err.Error()}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeUnavailable, Message: err.Error()}
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}
