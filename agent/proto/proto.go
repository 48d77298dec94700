// Package proto defines version 1 of the Maxwell agent protocol: the messages
// an agent and the host exchange, and how they are framed on the wire.
// Agents report counters (Report) and, if they asked for it in their Hello,
// take part in the host's CPU-time auction: the host announces each auction
// with a Tick and the agent answers with a Bid.
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
	"math"
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

// MaxPrice is the largest bid price, in credits per full slot: 2^53-1, like
// MaxCounter.
const MaxPrice = MaxCounter

// MaxBidUnits is the most units (slots, one CPU for one tick each) one bid
// may ask for.
const MaxBidUnits = 64

// Type names a kind of message.
type Type string

// The message types of version 1.
const (
	TypeHello   Type = "hello"   // agent → host, first message
	TypeReport  Type = "report"  // agent → host
	TypeWelcome Type = "welcome" // host → agent, answers hello
	TypeAck     Type = "ack"     // host → agent, accepts a report
	TypeError   Type = "error"   // host → agent
	TypeTick    Type = "tick"    // host → agent, opens an auction; only to agents that asked
	TypeBid     Type = "bid"     // agent → host, a bid in the open auction
)

// Message is one protocol message: *Hello, *Report, *Bid, *Welcome, *Ack,
// *Tick or *Error.
type Message interface {
	MessageType() Type
}

// Hello is the first message an agent sends. Kind, Name, Software and
// Version are informational: the host identifies the agent by kernel
// credentials, never by these. Bidding asks the host to send a Tick at
// every auction.
type Hello struct {
	Kind     string `json:"kind,omitempty"`     // what the agent is, e.g. "scientist"
	Name     string `json:"name,omitempty"`     // the agent's own name for itself
	Software string `json:"software,omitempty"` // program name
	Version  string `json:"version,omitempty"`  // program version
	Bidding  bool   `json:"bidding,omitempty"`  // send me ticks: I take part in the auction
	// Useful, if set, names the counter that measures the agent's useful
	// work: what experiments score per Joule. Optional (added in version
	// 1 as an optional field).
	Useful *Useful `json:"useful,omitempty"`
}

// Useful names an agent's useful-work counter and its unit.
type Useful struct {
	// Counter is the name of a counter the agent reports.
	Counter string `json:"counter"`
	// Unit says what one count is, e.g. "prime" or "request"; at most
	// MaxUnitName bytes of printable ASCII.
	Unit string `json:"unit,omitempty"`
}

// MaxUnitName is the longest Useful.Unit, in bytes.
const MaxUnitName = 32

// ValidateUseful checks a useful-work declaration: a valid counter name
// and a short printable unit.
func ValidateUseful(u *Useful) error {
	if u == nil {
		return nil
	}
	if err := validName(u.Counter); err != nil {
		return errorf(CodeMalformed, "hello: useful counter: %s", err.(*Error).Message)
	}
	if len(u.Unit) > MaxUnitName {
		return errorf(CodeMalformed, "hello: useful unit %.40q: at most %d bytes", u.Unit, MaxUnitName)
	}
	for _, r := range u.Unit {
		if r < ' ' || r > '~' {
			return errorf(CodeMalformed, "hello: useful unit %.40q: printable ASCII only", u.Unit)
		}
	}
	return nil
}

// Report carries an agent's cumulative counters. Seq starts at 1 and strictly
// increases within a connection (gaps are allowed). Counter values never
// decrease within a connection; a report need not repeat counters that have
// not changed.
type Report struct {
	Seq      uint64            `json:"seq"`
	Counters map[string]uint64 `json:"counters"`
}

// Bid offers Price credits per full slot for each of Units slots in the
// auction of tick Tick. Price is at most MaxPrice; Units is 1 to
// MaxBidUnits. Wallet, if set, must be the sender's cell: an agent can only
// spend its own cell's money. "" means the field is absent: Decode refuses
// a bid whose "wallet" is present and empty, since no cell has that name.
type Bid struct {
	Tick   uint64 `json:"tick"`
	Price  uint64 `json:"price"`
	Units  int    `json:"units"`
	Wallet string `json:"wallet,omitempty"`
}

// Welcome answers a valid Hello. Cell is the name of the cell the host
// assigned to the connecting process. Bidding is true when the Hello asked
// for ticks and the host will send them.
type Welcome struct {
	Cell     string `json:"cell"`
	Protocol int    `json:"protocol"`
	Bidding  bool   `json:"bidding,omitempty"`
}

// Ack accepts the Report with the same Seq, or the Bid for auction Tick.
// Exactly one of them is non-zero.
type Ack struct {
	Seq  uint64 `json:"seq,omitempty"`
	Tick uint64 `json:"tick,omitempty"`
}

// Tick tells a bidding agent that the auction of tick Tick is open and what
// it needs to bid in it. Prices and money are in credits (1 credit is 1 µJ
// of host energy); a full slot is one CPU for one tick.
type Tick struct {
	Tick       uint64  `json:"tick"`        // the auction now open for bids
	Reserve    uint64  `json:"reserve"`     // reserve price, credits per full slot
	Multiplier float64 `json:"multiplier"`  // thermal multiplier of the reserve, ≥ 1
	SlotEnergy uint64  `json:"slot_energy"` // expected energy of one slot for one tick at multiplier 1, µJ
	Balance    int64   `json:"balance"`     // the agent's wallet balance, credits
	Won        int     `json:"won"`         // units the agent won in the previous auction
	Paid       uint64  `json:"paid"`        // credits the agent paid in the previous auction
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

// MessageType implements Message.
func (*Bid) MessageType() Type { return TypeBid }

// MessageType implements Message.
func (*Tick) MessageType() Type { return TypeTick }

// header holds the fields every message has.
type header struct {
	V    *json.RawMessage `json:"v"`
	Type *string          `json:"type"`
}

// Encode returns m as one wire line, newline included. A Report's counters,
// a Bid and a Tick are validated first (see ValidateCounters, ValidateBid
// and ValidateTick).
func Encode(m Message) ([]byte, error) {
	switch m := m.(type) {
	case *Welcome, *Ack, *Error:
	case *Hello:
		if m == nil {
			return nil, errors.New("proto: cannot encode nil *Hello")
		}
		if err := ValidateUseful(m.Useful); err != nil {
			return nil, err
		}
	case *Report:
		if m == nil {
			return nil, errors.New("proto: cannot encode nil *Report")
		}
		if err := ValidateCounters(m.Counters); err != nil {
			return nil, err
		}
	case *Bid:
		if m == nil {
			return nil, errors.New("proto: cannot encode nil *Bid")
		}
		if err := ValidateBid(m); err != nil {
			return nil, err
		}
	case *Tick:
		if m == nil {
			return nil, errors.New("proto: cannot encode nil *Tick")
		}
		if err := ValidateTick(m); err != nil {
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
// CodeUnsupportedVersion, CodeUnknownType, CodeInvalidCounter or
// CodeInvalidBid. Unknown fields are ignored, so that later minor additions
// stay compatible.
//
// A bid carrying NaN or Infinity, which some JSON encoders write although
// JSON has no such numbers, is CodeInvalidBid rather than CodeMalformed, so
// that the agent learns which value was wrong.
func Decode(line []byte) (Message, error) {
	if !utf8.Valid(line) {
		return nil, errorf(CodeMalformed, "line is not valid UTF-8")
	}
	var h header
	if err := json.Unmarshal(line, &h); err != nil {
		if e := nonFiniteBid(line); e != nil {
			return nil, e
		}
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
	case TypeBid:
		return decodeBid(line)
	case TypeTick:
		m = new(Tick)
	default:
		return nil, errorf(CodeUnknownType, "unknown type %.64q", *h.Type)
	}
	if err := json.Unmarshal(line, m); err != nil {
		return nil, errorf(CodeMalformed, "%s: %v", *h.Type, err)
	}
	if hello, ok := m.(*Hello); ok {
		if err := ValidateUseful(hello.Useful); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// decodeBid parses a bid strictly: tick, price and units must be JSON
// integer literals in range, like counter values, and a "wallet" that is
// present must name a cell: an empty one is CodeNotYourWallet (with the
// bid's tick), as any wallet other than the sender's cell is.
func decodeBid(line []byte) (Message, error) {
	var w struct {
		Tick   json.RawMessage `json:"tick"`
		Price  json.RawMessage `json:"price"`
		Units  json.RawMessage `json:"units"`
		Wallet *string         `json:"wallet"`
	}
	if err := json.Unmarshal(line, &w); err != nil {
		return nil, errorf(CodeMalformed, "bid: %v", err)
	}
	b := &Bid{}
	if w.Wallet != nil {
		b.Wallet = *w.Wallet
	}
	var err error
	if b.Tick, err = bidField("tick", w.Tick, MaxCounter); err != nil {
		return nil, err
	}
	if b.Price, err = bidField("price", w.Price, MaxPrice); err != nil {
		return nil, err
	}
	units, err := bidField("units", w.Units, MaxBidUnits)
	if err != nil {
		return nil, err
	}
	b.Units = int(units)
	if err := ValidateBid(b); err != nil {
		return nil, err
	}
	if w.Wallet != nil && *w.Wallet == "" {
		e := errorf(CodeNotYourWallet, `bid: "wallet" is empty; name the agent's own cell, or leave the field out`)
		e.Tick = b.Tick
		return nil, e
	}
	return b, nil
}

func bidField(name string, raw []byte, limit uint64) (uint64, error) {
	if raw == nil {
		return 0, errorf(CodeInvalidBid, "bid: missing %q", name)
	}
	n, why := parseUint(raw, limit)
	if why != "" {
		return 0, errorf(CodeInvalidBid, "bid: %s %.32s %s", name, bytes.TrimSpace(raw), why)
	}
	return n, nil
}

// nonFiniteBid returns the error for a bid that is not JSON only because it
// holds NaN, Infinity or -Infinity outside strings, and nil for any other
// line.
func nonFiniteBid(line []byte) error {
	fixed, ok := quoteNonFinite(line)
	if !ok {
		return nil
	}
	var h header
	if json.Unmarshal(fixed, &h) != nil || h.Type == nil || Type(*h.Type) != TypeBid {
		return nil
	}
	if _, err := decodeBid(fixed); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == CodeInvalidBid {
			return e
		}
		return nil
	}
	return errorf(CodeInvalidBid, "bid: NaN and Infinity are not JSON numbers")
}

// quoteNonFinite returns line with every NaN, Infinity and -Infinity token
// outside strings turned into a JSON string, and whether there was one.
func quoteNonFinite(line []byte) ([]byte, bool) {
	var out []byte
	found := false
	inString, escaped := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			out = append(out, c)
			continue
		}
		if c == '"' {
			inString = true
		}
		tok := ""
		for _, t := range []string{"NaN", "-Infinity", "Infinity"} {
			if bytes.HasPrefix(line[i:], []byte(t)) {
				tok = t
				break
			}
		}
		if tok == "" {
			out = append(out, c)
			continue
		}
		found = true
		out = append(out, '"')
		out = append(out, tok...)
		out = append(out, '"')
		i += len(tok) - 1
	}
	return out, found
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
	n, why := parseUint(raw, MaxCounter)
	if why != "" {
		return 0, errorf(CodeInvalidCounter, "counter %q: %.32s %s", name, bytes.TrimSpace(raw), why)
	}
	return n, nil
}

// parseUint accepts only a JSON integer literal, with no sign, fraction or
// exponent, of at most limit. Otherwise it says why not.
func parseUint(raw []byte, limit uint64) (uint64, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, "is empty"
	}
	switch c := raw[0]; {
	case c == '-':
		return 0, "is negative"
	case c < '0' || c > '9':
		return 0, "is not a number"
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, "is not an integer"
		}
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil || n > limit {
		return 0, fmt.Sprintf("exceeds %d", limit)
	}
	return n, ""
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

// ValidateBid checks a bid the way the host will: Price at most MaxPrice,
// Units from 1 to MaxBidUnits. The error is an *Error with CodeInvalidBid.
// Whether the tick is open and the wallet the sender's only the host can
// tell.
func ValidateBid(b *Bid) error {
	if b.Price > MaxPrice {
		return errorf(CodeInvalidBid, "bid: price %d exceeds %d", b.Price, uint64(MaxPrice))
	}
	if b.Units < 1 || b.Units > MaxBidUnits {
		return errorf(CodeInvalidBid, "bid: units %d, want 1 to %d", b.Units, MaxBidUnits)
	}
	return nil
}

// ValidateTick checks a tick before the host sends it: Multiplier finite and
// not negative, Won not negative, and every other number within ±MaxCounter
// so that any JSON implementation reads it exactly.
func ValidateTick(t *Tick) error {
	switch {
	case math.IsNaN(t.Multiplier) || math.IsInf(t.Multiplier, 0) || t.Multiplier < 0:
		return fmt.Errorf("proto: tick %d: multiplier %v", t.Tick, t.Multiplier)
	case t.Reserve > MaxCounter || t.SlotEnergy > MaxCounter || t.Paid > MaxCounter || t.Tick > MaxCounter:
		return fmt.Errorf("proto: tick %d: a value exceeds %d", t.Tick, uint64(MaxCounter))
	case t.Balance > MaxCounter || t.Balance < -MaxCounter:
		return fmt.Errorf("proto: tick %d: balance %d out of range", t.Tick, t.Balance)
	case t.Won < 0 || t.Won > MaxBidUnits:
		return fmt.Errorf("proto: tick %d: won %d, want 0 to %d", t.Tick, t.Won, MaxBidUnits)
	}
	return nil
}
