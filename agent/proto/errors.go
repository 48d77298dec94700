package proto

import "fmt"

// Code is a machine-readable error code carried by an error message.
type Code string

// The error codes of version 1. The host closes the connection after the
// codes marked fatal; after the others the offending message is ignored and
// the connection stays open.
const (
	CodeMalformed          Code = "malformed"           // not one JSON object in UTF-8, or a field of the wrong JSON type
	CodeOversized          Code = "oversized"           // line longer than MaxLine; fatal
	CodeUnsupportedVersion Code = "unsupported_version" // "v" is not Version; fatal before welcome
	CodeUnknownType        Code = "unknown_type"        // "type" not defined by this version
	CodeUnexpectedType     Code = "unexpected_type"     // a known type at the wrong time or in the wrong direction; fatal before welcome
	CodeInvalidCounter     Code = "invalid_counter"     // bad counter name, or a value that is negative, not an integer, or above MaxCounter
	CodeOutOfOrder         Code = "out_of_order"        // report seq not greater than the last accepted one
	CodeCounterDecreased   Code = "counter_decreased"   // a counter smaller than its last accepted value
	CodeNotACell           Code = "not_a_cell"          // the connecting process belongs to no cell; fatal
	CodeAlreadyConnected   Code = "already_connected"   // the cell's agent is attached through a link of its own (a microVM's port); fatal
	CodeSuperseded         Code = "superseded"          // a newer connection of the same cell said hello and took over; fatal
	CodeBusy               Code = "busy"                // the host, or the peer's cell, is at its connection limit; fatal
	CodeTimeout            Code = "timeout"             // no hello, or no message, in time; fatal
	CodeTooManyErrors      Code = "too_many_errors"     // too many rejected messages on one connection; fatal
	CodeInvalidBid         Code = "invalid_bid"         // a bid's tick, price or units missing, negative, not an integer, NaN or infinite, or out of range
	CodeOutOfTurn          Code = "out_of_turn"         // a bid for an auction that is not open: too late or too early
	CodeNotYourWallet      Code = "not_your_wallet"     // a bid names a wallet other than the sender's cell
)

// Error is the error message the host sends, and the Go error both sides use
// for protocol violations. Seq names the report it rejects, or is 0; Tick
// names the auction of the bid it rejects, or is 0. Fatal tells that the
// host closes the connection after sending it.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
	Tick    uint64 `json:"tick,omitempty"`
	Fatal   bool   `json:"fatal,omitempty"`
}

// Error implements error.
func (e *Error) Error() string {
	if e.Message == "" {
		return "maxwell agent protocol: " + string(e.Code)
	}
	return "maxwell agent protocol: " + string(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &proto.Error{Code: proto.CodeNotACell}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
