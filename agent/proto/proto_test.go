package proto

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Message
		code Code // expected error code, "" for success
	}{
		{"hello", `{"v":1,"type":"hello","kind":"scientist","name":"s1","software":"maxwell","version":"v0"}`,
			&Hello{Kind: "scientist", Name: "s1", Software: "maxwell", Version: "v0"}, ""},
		{"hello unknown field ignored", `{"v":1,"type":"hello","kind":"k","future":[1,2]}`, &Hello{Kind: "k"}, ""},
		{"report", `{"v":1,"type":"report","seq":7,"counters":{"primes":123,"range_end":100000}}`,
			&Report{Seq: 7, Counters: map[string]uint64{"primes": 123, "range_end": 100000}}, ""},
		{"report max counter", `{"v":1,"type":"report","seq":1,"counters":{"c":9007199254740991}}`,
			&Report{Seq: 1, Counters: map[string]uint64{"c": MaxCounter}}, ""},
		{"report no counters", `{"v":1,"type":"report","seq":1}`, &Report{Seq: 1, Counters: map[string]uint64{}}, ""},
		{"welcome", `{"v":1,"type":"welcome","cell":"cell-a","protocol":1}`, &Welcome{Cell: "cell-a", Protocol: 1}, ""},
		{"ack", `{"v":1,"type":"ack","seq":3}`, &Ack{Seq: 3}, ""},
		{"error", `{"v":1,"type":"error","code":"not_a_cell","message":"pid 1","fatal":true}`,
			&Error{Code: CodeNotACell, Message: "pid 1", Fatal: true}, ""},

		{"empty", ``, nil, CodeMalformed},
		{"not json", `hello`, nil, CodeMalformed},
		{"array", `[1,2]`, nil, CodeMalformed},
		{"two objects", `{"v":1,"type":"ack"} {"v":1}`, nil, CodeMalformed},
		{"bad utf8", "{\"v\":1,\"type\":\"hello\",\"kind\":\"\xff\"}", nil, CodeMalformed},
		{"missing v", `{"type":"hello"}`, nil, CodeMalformed},
		{"missing type", `{"v":1}`, nil, CodeMalformed},
		{"type not string", `{"v":1,"type":3}`, nil, CodeMalformed},
		{"v 2", `{"v":2,"type":"hello"}`, nil, CodeUnsupportedVersion},
		{"v 0", `{"v":0,"type":"hello"}`, nil, CodeUnsupportedVersion},
		{"v string", `{"v":"1","type":"hello"}`, nil, CodeUnsupportedVersion},
		{"unknown type", `{"v":1,"type":"sell"}`, nil, CodeUnknownType},
		{"hello wrong field type", `{"v":1,"type":"hello","kind":5}`, nil, CodeMalformed},
		{"report missing seq", `{"v":1,"type":"report","counters":{"a":1}}`, nil, CodeMalformed},
		{"report negative seq", `{"v":1,"type":"report","seq":-1,"counters":{}}`, nil, CodeMalformed},
		{"report counters not object", `{"v":1,"type":"report","seq":1,"counters":[1]}`, nil, CodeMalformed},
		{"negative counter", `{"v":1,"type":"report","seq":1,"counters":{"a":-1}}`, nil, CodeInvalidCounter},
		{"negative zero", `{"v":1,"type":"report","seq":1,"counters":{"a":-0}}`, nil, CodeInvalidCounter},
		{"float counter", `{"v":1,"type":"report","seq":1,"counters":{"a":1.5}}`, nil, CodeInvalidCounter},
		{"float integral counter", `{"v":1,"type":"report","seq":1,"counters":{"a":1.0}}`, nil, CodeInvalidCounter},
		{"exponent counter", `{"v":1,"type":"report","seq":1,"counters":{"a":1e3}}`, nil, CodeInvalidCounter},
		{"string counter", `{"v":1,"type":"report","seq":1,"counters":{"a":"1"}}`, nil, CodeInvalidCounter},
		{"null counter", `{"v":1,"type":"report","seq":1,"counters":{"a":null}}`, nil, CodeInvalidCounter},
		{"counter 2^53", `{"v":1,"type":"report","seq":1,"counters":{"a":9007199254740992}}`, nil, CodeInvalidCounter},
		{"counter beyond uint64", `{"v":1,"type":"report","seq":1,"counters":{"a":99999999999999999999999}}`, nil, CodeInvalidCounter},
		{"empty counter name", `{"v":1,"type":"report","seq":1,"counters":{"":1}}`, nil, CodeInvalidCounter},
		{"bad counter name", `{"v":1,"type":"report","seq":1,"counters":{"a-b":1}}`, nil, CodeInvalidCounter},
		{"digit-first counter name", `{"v":1,"type":"report","seq":1,"counters":{"1a":1}}`, nil, CodeInvalidCounter},

		{"hello bidding", `{"v":1,"type":"hello","bidding":true}`, &Hello{Bidding: true}, ""},
		{"hello useful", `{"v":1,"type":"hello","useful":{"counter":"primes","unit":"prime"}}`,
			&Hello{Useful: &Useful{Counter: "primes", Unit: "prime"}}, ""},
		{"hello useful no unit", `{"v":1,"type":"hello","useful":{"counter":"requests"}}`,
			&Hello{Useful: &Useful{Counter: "requests"}}, ""},
		{"hello useful bad counter", `{"v":1,"type":"hello","useful":{"counter":"a-b"}}`, nil, CodeMalformed},
		{"hello useful empty counter", `{"v":1,"type":"hello","useful":{"unit":"x"}}`, nil, CodeMalformed},
		{"hello useful long unit", `{"v":1,"type":"hello","useful":{"counter":"c","unit":"` + strings.Repeat("u", MaxUnitName+1) + `"}}`, nil, CodeMalformed},
		{"hello useful control unit", `{"v":1,"type":"hello","useful":{"counter":"c","unit":"a\nb"}}`, nil, CodeMalformed},
		{"welcome bidding", `{"v":1,"type":"welcome","cell":"c","protocol":1,"bidding":true}`, &Welcome{Cell: "c", Protocol: 1, Bidding: true}, ""},
		{"bid ack", `{"v":1,"type":"ack","tick":42}`, &Ack{Tick: 42}, ""},
		{"bid error", `{"v":1,"type":"error","code":"out_of_turn","tick":41}`, &Error{Code: CodeOutOfTurn, Tick: 41}, ""},
		{"tick", `{"v":1,"type":"tick","tick":42,"reserve":250000,"multiplier":1.25,"slot_energy":200000,"balance":-5,"won":2,"paid":400000}`,
			&Tick{Tick: 42, Reserve: 250000, Multiplier: 1.25, SlotEnergy: 200000, Balance: -5, Won: 2, Paid: 400000}, ""},
		{"tick float reserve", `{"v":1,"type":"tick","tick":1,"reserve":1.5}`, nil, CodeMalformed},
		{"bid", `{"v":1,"type":"bid","tick":42,"price":400000,"units":2}`, &Bid{Tick: 42, Price: 400000, Units: 2}, ""},
		{"bid NaN in an unknown field", `{"v":1,"type":"bid","tick":1,"price":0,"units":64,"wallet":"cell-a","x":[NaN]}`, nil, CodeInvalidBid},
		{"bid own wallet", `{"v":1,"type":"bid","tick":1,"price":0,"units":64,"wallet":"cell-a"}`, &Bid{Tick: 1, Units: 64, Wallet: "cell-a"}, ""},
		{"bid max price", `{"v":1,"type":"bid","tick":1,"price":9007199254740991,"units":1}`, &Bid{Tick: 1, Price: MaxPrice, Units: 1}, ""},
		{"bid NaN price", `{"v":1,"type":"bid","tick":1,"price":NaN,"units":1}`, nil, CodeInvalidBid},
		{"bid Infinity price", `{"v":1,"type":"bid","tick":1,"price":Infinity,"units":1}`, nil, CodeInvalidBid},
		{"bid -Infinity price", `{"v":1, "type":"bid", "tick":1, "price": -Infinity, "units":1}`, nil, CodeInvalidBid},
		{"bid NaN units", `{"v":1,"type":"bid","tick":1,"price":5,"units":NaN}`, nil, CodeInvalidBid},
		{"NaN in a string is fine", `{"v":1,"type":"bid","tick":1,"price":5,"units":1,"wallet":"NaN\"Infinity"}`, &Bid{Tick: 1, Price: 5, Units: 1, Wallet: `NaN"Infinity`}, ""},
		{"report NaN stays malformed", `{"v":1,"type":"report","seq":1,"counters":{"a":NaN}}`, nil, CodeMalformed},
		{"bid negative price", `{"v":1,"type":"bid","tick":1,"price":-1,"units":1}`, nil, CodeInvalidBid},
		{"bid float price", `{"v":1,"type":"bid","tick":1,"price":2.5,"units":1}`, nil, CodeInvalidBid},
		{"bid integral float price", `{"v":1,"type":"bid","tick":1,"price":2.0,"units":1}`, nil, CodeInvalidBid},
		{"bid exponent price", `{"v":1,"type":"bid","tick":1,"price":1e6,"units":1}`, nil, CodeInvalidBid},
		{"bid string price", `{"v":1,"type":"bid","tick":1,"price":"5","units":1}`, nil, CodeInvalidBid},
		{"bid null price", `{"v":1,"type":"bid","tick":1,"price":null,"units":1}`, nil, CodeInvalidBid},
		{"bid price 2^53", `{"v":1,"type":"bid","tick":1,"price":9007199254740992,"units":1}`, nil, CodeInvalidBid},
		{"bid price beyond uint64", `{"v":1,"type":"bid","tick":1,"price":99999999999999999999999,"units":1}`, nil, CodeInvalidBid},
		{"bid missing price", `{"v":1,"type":"bid","tick":1,"units":1}`, nil, CodeInvalidBid},
		{"bid missing tick", `{"v":1,"type":"bid","price":1,"units":1}`, nil, CodeInvalidBid},
		{"bid negative tick", `{"v":1,"type":"bid","tick":-3,"price":1,"units":1}`, nil, CodeInvalidBid},
		{"bid missing units", `{"v":1,"type":"bid","tick":1,"price":1}`, nil, CodeInvalidBid},
		{"bid zero units", `{"v":1,"type":"bid","tick":1,"price":1,"units":0}`, nil, CodeInvalidBid},
		{"bid 65 units", `{"v":1,"type":"bid","tick":1,"price":1,"units":65}`, nil, CodeInvalidBid},
		{"bid negative units", `{"v":1,"type":"bid","tick":1,"price":1,"units":-1}`, nil, CodeInvalidBid},
		{"bid wallet not string", `{"v":1,"type":"bid","tick":1,"price":1,"units":1,"wallet":7}`, nil, CodeMalformed},
		{"bid empty wallet", `{"v":1,"type":"bid","tick":1,"price":1,"units":1,"wallet":""}`, nil, CodeNotYourWallet},
		{"bid empty wallet, bad price", `{"v":1,"type":"bid","tick":1,"price":-1,"units":1,"wallet":""}`, nil, CodeInvalidBid},
		{"bid null wallet is absent", `{"v":1,"type":"bid","tick":1,"price":1,"units":1,"wallet":null}`, &Bid{Tick: 1, Price: 1, Units: 1}, ""},
		{"bid blank wallet", `{"v":1,"type":"bid","tick":1,"price":1,"units":1,"wallet":" "}`, &Bid{Tick: 1, Price: 1, Units: 1, Wallet: " "}, ""},
		{"bid truncated", `{"v":1,"type":"bid","tick":1,"price":NaN`, nil, CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.line))
			if tt.code != "" {
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("Decode(%s) = %#v, %v; want *Error %s", tt.line, got, err, tt.code)
				}
				if pe.Code != tt.code {
					t.Fatalf("Decode(%s) code = %s (%v), want %s", tt.line, pe.Code, pe, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.line, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode(%s) = %#v, want %#v", tt.line, got, tt.want)
			}
		})
	}
}

// TestDecodeEmptyWallet: a present, empty wallet is refused as any wallet
// not the sender's, and the error names the bid's tick, while a bid
// without the field stands.
func TestDecodeEmptyWallet(t *testing.T) {
	_, err := Decode([]byte(`{"v":1,"type":"bid","tick":77,"price":1,"units":1,"wallet":""}`))
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeNotYourWallet || pe.Tick != 77 || pe.Fatal {
		t.Fatalf("Decode(empty wallet) = %#v, want a non-fatal not_your_wallet for tick 77", err)
	}
	m, err := Decode([]byte(`{"v":1,"type":"bid","tick":77,"price":1,"units":1}`))
	if b, ok := m.(*Bid); err != nil || !ok || b.Wallet != "" {
		t.Fatalf("Decode(no wallet) = %#v, %v", m, err)
	}
}

func TestDecodeTooManyCounters(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"v":1,"type":"report","seq":1,"counters":{`)
	for i := range MaxCounters + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"c` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i) + `":1`)
	}
	b.WriteString(`}}`)
	_, err := Decode([]byte(b.String()))
	if !errors.Is(err, &Error{Code: CodeInvalidCounter}) {
		t.Fatalf("Decode(%d counters) = %v, want invalid_counter", MaxCounters+1, err)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var s []byte
	for ; i > 0; i /= 10 {
		s = append([]byte{byte('0' + i%10)}, s...)
	}
	return string(s)
}

func TestEncodeRoundTrip(t *testing.T) {
	msgs := []Message{
		&Hello{Kind: "miner", Name: "m\n1", Software: "maxwell", Version: "devel"},
		&Hello{},
		&Report{Seq: 1, Counters: map[string]uint64{"hashes": 1 << 40, "bytes_churned": 0}},
		&Report{Seq: 2, Counters: map[string]uint64{}},
		&Welcome{Cell: "cell-a", Protocol: Version},
		&Ack{Seq: 9},
		&Error{Code: CodeCounterDecreased, Message: `"primes" went from 5 to 4`, Seq: 3},
		&Error{Code: CodeOutOfTurn, Message: "too late", Tick: 7},
		&Hello{Kind: "scientist", Bidding: true},
		&Hello{Kind: "scientist", Useful: &Useful{Counter: "primes", Unit: "prime"}},
		&Welcome{Cell: "c", Protocol: Version, Bidding: true},
		&Ack{Tick: 7},
		&Bid{Tick: 7, Price: MaxPrice, Units: MaxBidUnits, Wallet: "c"},
		&Bid{Tick: 1, Price: 0, Units: 1},
		&Tick{Tick: 7, Reserve: 1, Multiplier: 3.5, SlotEnergy: 2, Balance: -MaxCounter, Won: 64, Paid: MaxCounter},
		&Tick{},
	}
	for _, m := range msgs {
		line, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%#v): %v", m, err)
		}
		if n := strings.Count(string(line), "\n"); n != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("Encode(%#v) = %q: want exactly one trailing newline", m, line)
		}
		if !strings.HasPrefix(string(line), `{"v":1,"type":"`+string(m.MessageType())+`"`) {
			t.Fatalf("Encode(%#v) = %q: want v and type first", m, line)
		}
		got, err := Decode(line[:len(line)-1])
		if err != nil {
			t.Fatalf("Decode(Encode(%#v)) = %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("Decode(Encode(%#v)) = %#v", m, got)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	for _, m := range []Message{
		&Report{Seq: 1, Counters: map[string]uint64{"a": MaxCounter + 1}},
		&Report{Seq: 1, Counters: map[string]uint64{"no spaces": 1}},
		(*Report)(nil),
		&Hello{Name: strings.Repeat("x", MaxLine)},
		(*Bid)(nil),
		&Bid{Tick: 1, Price: MaxPrice + 1, Units: 1},
		&Bid{Tick: 1, Price: 1, Units: 0},
		&Bid{Tick: 1, Price: 1, Units: MaxBidUnits + 1},
		(*Tick)(nil),
		&Tick{Tick: 1, Multiplier: math.NaN()},
		&Tick{Tick: 1, Multiplier: math.Inf(1)},
		&Tick{Tick: 1, Multiplier: -1},
		&Tick{Tick: 1, Reserve: MaxCounter + 1},
		&Tick{Tick: 1, Balance: -MaxCounter - 1},
		&Tick{Tick: 1, Won: -1},
	} {
		if line, err := Encode(m); err == nil {
			t.Errorf("Encode(%.60s…) = nil error, want one", line)
		}
	}
}

func TestReader(t *testing.T) {
	t.Run("lines", func(t *testing.T) {
		r := NewReader(iotest.OneByteReader(strings.NewReader("a\n\nbc\r\n")))
		for _, want := range []string{"a", "", "bc\r"} {
			got, err := r.ReadLine()
			if err != nil || string(got) != want {
				t.Fatalf("ReadLine() = %q, %v; want %q", got, err, want)
			}
		}
		if _, err := r.ReadLine(); err != io.EOF {
			t.Fatalf("ReadLine() at end = %v, want io.EOF", err)
		}
	})
	t.Run("partial last line", func(t *testing.T) {
		r := NewReader(strings.NewReader("a\nb"))
		r.ReadLine()
		if _, err := r.ReadLine(); err != io.ErrUnexpectedEOF {
			t.Fatalf("ReadLine() = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("exactly MaxLine", func(t *testing.T) {
		long := strings.Repeat("x", MaxLine-1) + "\n"
		r := NewReader(strings.NewReader("ab\n" + long + long))
		if got, _ := r.ReadLine(); string(got) != "ab" {
			t.Fatalf("ReadLine() = %q", got)
		}
		for range 2 {
			got, err := r.ReadLine()
			if err != nil || len(got) != MaxLine-1 {
				t.Fatalf("ReadLine() = %d bytes, %v; want %d", len(got), err, MaxLine-1)
			}
		}
	})
	t.Run("oversized", func(t *testing.T) {
		cr := &countingReader{r: strings.NewReader(strings.Repeat("x", 10*MaxLine) + "\n")}
		r := NewReader(cr)
		_, err := r.ReadLine()
		if !errors.Is(err, &Error{Code: CodeOversized}) {
			t.Fatalf("ReadLine() = %v, want oversized", err)
		}
		if cr.n > MaxLine {
			t.Fatalf("read %d bytes before refusing, want at most %d", cr.n, MaxLine)
		}
	})
	t.Run("keeps partial line across errors", func(t *testing.T) {
		errTimeout := errors.New("timeout")
		r := NewReader(&scriptReader{steps: []step{{"ab", nil}, {"", errTimeout}, {"c\nd", nil}, {"", io.EOF}}})
		if _, err := r.ReadLine(); err != errTimeout {
			t.Fatalf("ReadLine() = %v, want the timeout", err)
		}
		got, err := r.ReadLine()
		if err != nil || string(got) != "abc" {
			t.Fatalf("ReadLine() = %q, %v; want abc", got, err)
		}
		if _, err := r.ReadLine(); err != io.ErrUnexpectedEOF {
			t.Fatalf("ReadLine() = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("no progress", func(t *testing.T) {
		r := NewReader(&scriptReader{forever: true})
		if _, err := r.ReadLine(); err != io.ErrNoProgress {
			t.Fatalf("ReadLine() = %v, want io.ErrNoProgress", err)
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type step struct {
	data string
	err  error
}

type scriptReader struct {
	steps   []step
	forever bool // return 0, nil forever
}

func (s *scriptReader) Read(p []byte) (int, error) {
	if s.forever {
		return 0, nil
	}
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	return copy(p, st.data), st.err
}

// FuzzDecode checks that Decode never panics, that every error is an *Error
// with a code, and that every message it accepts survives Encode and Decode
// unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"hello","kind":"scientist"}`,
		`{"v":1,"type":"report","seq":1,"counters":{"primes":4,"range_end":10}}`,
		`{"v":1,"type":"report","seq":1,"counters":{"a":-1,"b":1.5}}`,
		`{"v":1,"type":"welcome","cell":"c","protocol":1}`,
		`{"v":1,"type":"error","code":"x","seq":2,"fatal":true}`,
		`{"v":1,"type":"ack","seq":1}`,
		`{"v":1,"type":"ack","tick":3}`,
		`{"v":1,"type":"hello","bidding":true}`,
		`{"v":1,"type":"tick","tick":3,"reserve":100,"multiplier":1.5,"slot_energy":50,"balance":-2,"won":1,"paid":100}`,
		`{"v":1,"type":"bid","tick":3,"price":150,"units":2,"wallet":"w"}`,
		`{"v":1,"type":"bid","tick":3,"price":NaN,"units":2}`,
		`{"v":1,"type":"bid","tick":3,"price":-Infinity,"units":65}`,
		`{"v":2}`, `[]`, `null`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := Decode(line)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code == "" {
				t.Fatalf("Decode(%q) error %v is not a coded *Error", line, err)
			}
			if m != nil {
				t.Fatalf("Decode(%q) returned %#v with error %v", line, m, err)
			}
			return
		}
		if r, ok := m.(*Report); ok {
			if err := ValidateCounters(r.Counters); err != nil {
				t.Fatalf("Decode(%q) accepted counters that ValidateCounters rejects: %v", line, err)
			}
		}
		if b, ok := m.(*Bid); ok {
			if err := ValidateBid(b); err != nil {
				t.Fatalf("Decode(%q) accepted a bid that ValidateBid rejects: %v", line, err)
			}
			if !json.Valid(line) {
				t.Fatalf("Decode(%q) accepted a bid that is not JSON", line)
			}
		}
		if tk, ok := m.(*Tick); ok && ValidateTick(tk) != nil {
			return // a host never sends it; Encode rightly refuses it
		}
		enc, err := Encode(m)
		if err != nil {
			if len(line) > MaxLine/2 { // escaping may grow a line past MaxLine
				return
			}
			t.Fatalf("Encode(Decode(%q)) = %v", line, err)
		}
		m2, err := Decode(enc[:len(enc)-1])
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v", line, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip of %q: %#v != %#v", line, m, m2)
		}
	})
}
