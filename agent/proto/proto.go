// Package proto defines version 1 of the Maxwell agent protocol: the messages
// an agent and the host exchange, and how they are framed on the wire.
//
// A message is one JSON object, UTF-8 encoded, on one line terminated by
// "\n". Every message carries "v" (the protocol version, Version) and "type".
// A line is at most MaxLine bytes, newline included. docs/PROTOCOL.md in the
// Maxwell repository is the language-neutral specification; this package is
// its Go rendering, shared by the agent client and the host.
package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Version is the protocol version this package speaks.
const Version = 1

// MaxLine is the largest line either side accepts, in bytes, including the
// terminating newline (64 KiB).
const MaxLine = 64 << 10

// MaxCounter is the largest counter value, 2^53-1: the largest integer that
// every JSON implementation (including those that decode numbers as IEEE 754
// doubles) represents exactly.
const MaxCounter = 1<<53 - 1

// MaxCounterName is the longest counter name, in bytes.
const MaxCounterName = 128

// MaxCounters is the largest number of distinct counter names one agent
// session may use.
const MaxCounters = 256

// Type names a kind of message.
type Type string

// The message types of version 1.
const (
	TypeHello   Type = "hello"   // agent → host, first message
	TypeReport  Type = "report"  // agent → host
	TypeWelcome Type = "welcome" // host → agent, answers hello
	TypeAck     Type = "ack"     // host → agent, accepts a report
	TypeError   Type = "error"   // host → agent
)

// Message is one protocol message: *Hello, *Report, *Welcome, *Ack or *Error.
type Message interface {
	MessageType() Type
}

// Hello is the first message an agent sends. Its fields are informational:
// the host identifies the agent by kernel credentials, never by these.
type Hello struct {
	Kind     string `json:"kind,omitempty"`     // what the agent is, e.g. "scientist"
	Name     string `json:"name,omitempty"`     // the agent's own name for itself
	Software string `json:"software,omitempty"` // program name
	Version  string `json:"version,omitempty"`  // program version
}

// Report carries an agent's cumulative counters. Seq starts at 1 and strictly
// increases within a connection (gaps are allowed). Counter values never
// decrease within a connection; a report need not repeat counters that have
// not changed.
type Report struct {
	Seq      uint64            `json:"seq"`
	Counters map[string]uint64 `json:"counters"`
}

// Welcome answers a valid Hello. Cell is the name of the cell the host
// assigned to the connecting process.
type Welcome struct {
	Cell     string `json:"cell"`
	Protocol int    `json:"protocol"`
}

// Ack accepts the Report with the same Seq.
type Ack struct {
	Seq uint64 `json:"seq"`
}

// MessageType implements Message.
func (*Hello) MessageType() Type { return TypeHello }

// MessageType implements Message.
func (*Report) MessageType() Type { return TypeReport }

// MessageType implements Message.
func (*Welcome) MessageType() Type { return TypeWelcome }

// MessageType implements Message.
func (*Ack) MessageType() Type { return TypeAck }

// MessageType implements Message.
func (*Error) MessageType() Type { return TypeError }

// header holds the fields every message has.
type header struct {
	V    *json.RawMessage `json:"v"`
	Type *string          `json:"type"`
}

// Encode returns m as one wire line, newline included. A Report's counters
// are validated first (see ValidateCounters).
func Encode(m Message) ([]byte, error) {
	switch m := m.(type) {
	case *Hello, *Welcome, *Ack, *Error:
	case *Report:
		if m == nil {
			return nil, errors.New("proto: cannot encode nil *Report")
		}
		if err := ValidateCounters(m.Counters); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("proto: cannot encode %T", m)
	}
	return encode(Version, m.MessageType(), m)
}

// encode marshals the body of m and splices the header in front of its
// fields, so that "v" and "type" come first on the wire.
func encode(v int, t Type, m Message) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("proto: encode %s: %w", t, err)
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("proto: encode %s: body is not an object", t)
	}
	var b bytes.Buffer
	b.Grow(len(body) + 32)
	b.WriteString(`{"v":`)
	b.WriteString(strconv.Itoa(v))
	b.WriteString(`,"type":`)
	tb, _ := json.Marshal(string(t))
	b.Write(tb)
	if len(body) > 2 { // body is an object: "{...}"
		b.WriteByte(',')
		b.Write(body[1:])
	} else {
		b.WriteByte('}')
	}
	b.WriteByte('\n')
	if b.Len() > MaxLine {
		return nil, &Error{Code: CodeOversized, Message: fmt.Sprintf("encoded %s is %d bytes, limit %d", t, b.Len(), MaxLine)}
	}
	return b.Bytes(), nil
}

// Decode parses one line (without its newline) into a Message. Errors are of
// type *Error with the Code the host sends back: CodeMalformed,
// CodeUnsupportedVersion, CodeUnknownType or CodeInvalidCounter.
// Unknown fields are ignored, so that later minor additions stay compatible.
func Decode(line []byte) (Message, error) {
	if !utf8.Valid(line) {
		return nil, errorf(CodeMalformed, "line is not valid UTF-8")
	}
	var h header
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, errorf(CodeMalformed, "not a JSON object: %v", err)
	}
	if h.V == nil {
		return nil, errorf(CodeMalformed, `missing "v"`)
	}
	if v := string(*h.V); v != strconv.Itoa(Version) {
		return nil, errorf(CodeUnsupportedVersion, "version %.32s not supported, want %d", v, Version)
	}
	if h.Type == nil {
		return nil, errorf(CodeMalformed, `missing "type"`)
	}
	var m Message
	switch Type(*h.Type) {
	case TypeHello:
		m = new(Hello)
	case TypeReport:
		return decodeReport(line)
	case TypeWelcome:
		m = new(Welcome)
	case TypeAck:
		m = new(Ack)
	case TypeError:
		m = new(Error)
	default:
		return nil, errorf(CodeUnknownType, "unknown type %.64q", *h.Type)
	}
	if err := json.Unmarshal(line, m); err != nil {
		return nil, errorf(CodeMalformed, "%s: %v", *h.Type, err)
	}
	return m, nil
}

func decodeReport(line []byte) (Message, error) {
	var w struct {
		Seq      *uint64                    `json:"seq"`
		Counters map[string]json.RawMessage `json:"counters"`
	}
	if err := json.Unmarshal(line, &w); err != nil {
		return nil, errorf(CodeMalformed, "report: %v", err)
	}
	if w.Seq == nil {
		return nil, errorf(CodeMalformed, `report: missing "seq"`)
	}
	r := &Report{Seq: *w.Seq, Counters: make(map[string]uint64, len(w.Counters))}
	if len(w.Counters) > MaxCounters {
		return nil, errorf(CodeInvalidCounter, "%d counters, limit %d", len(w.Counters), MaxCounters)
	}
	for name, raw := range w.Counters {
		if err := validName(name); err != nil {
			return nil, err
		}
		n, err := parseCounter(name, raw)
		if err != nil {
			return nil, err
		}
		r.Counters[name] = n
	}
	return r, nil
}

// parseCounter accepts only a JSON integer literal: no sign, fraction or
// exponent, at most MaxCounter.
func parseCounter(name string, raw []byte) (uint64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, errorf(CodeInvalidCounter, "counter %q: empty value", name)
	}
	switch c := raw[0]; {
	case c == '-':
		return 0, errorf(CodeInvalidCounter, "counter %q: negative value %.32s", name, raw)
	case c < '0' || c > '9':
		return 0, errorf(CodeInvalidCounter, "counter %q: %.32s is not a number", name, raw)
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, errorf(CodeInvalidCounter, "counter %q: %.32s is not an integer", name, raw)
		}
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil || n > MaxCounter {
		return 0, errorf(CodeInvalidCounter, "counter %q: %.32s exceeds %d", name, raw, uint64(MaxCounter))
	}
	return n, nil
}

// validName reports whether name is a counter name: 1 to MaxCounterName
// bytes of [A-Za-z0-9_], not starting with a digit.
func validName(name string) error {
	if name == "" || len(name) > MaxCounterName {
		return errorf(CodeInvalidCounter, "counter name %.64q: want 1 to %d bytes", name, MaxCounterName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return errorf(CodeInvalidCounter, "counter name %.64q: want [A-Za-z_][A-Za-z0-9_]*", name)
		}
	}
	return nil
}

// ValidateCounters checks counters the way the host will: names are
// [A-Za-z_][A-Za-z0-9_]* of at most MaxCounterName bytes, values at most
// MaxCounter, at most MaxCounters entries. The error is an *Error with
// CodeInvalidCounter.
func ValidateCounters(counters map[string]uint64) error {
	if len(counters) > MaxCounters {
		return errorf(CodeInvalidCounter, "%d counters, limit %d", len(counters), MaxCounters)
	}
	for name, v := range counters {
		if err := validName(name); err != nil {
			return err
		}
		if v > MaxCounter {
			return errorf(CodeInvalidCounter, "counter %q: %d exceeds %d", name, v, uint64(MaxCounter))
		}
	}
	return nil
}
