package market

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/maxwellhq/maxwell/internal/units"
)

// ErrBadRequest is returned, wrapped, for auction input that cannot be
// decoded.
var ErrBadRequest = errors.New("market: bad auction request")

// maxRequestBytes bounds the size of a decoded request.
const maxRequestBytes = 64 << 20

// Request is one auction read from JSON, the input of `maxwell auction`:
//
//	{"rule": "gsp", "reserve": 100,
//	 "slots": [{"id": 0, "weight": 1000000}],
//	 "bids":  [{"bidder": "alice", "price": 500, "budget": 0}]}
//
// "rule" is "gsp" (the default when absent) or "vcg"; "reserve", "price" and
// "budget" are credits per FullSlot of weight (budget: credits),
// "weight" is in parts of FullSlot; all are non-negative integers that fit
// in 63 bits. "budget" is optional. Bidder names must be unique and not
// empty; each gets the Bidder ID of its position in "bids", so earlier bids
// win ties.
type Request struct {
	Rule    Rule
	Reserve units.Credits
	Slots   []Slot
	Bids    []Bid
	// Names holds each bidder's name, indexed by Bid.Bidder.
	Names []string
}

type jsonRequest struct {
	Rule    *Rule      `json:"rule"`
	Reserve *uint64    `json:"reserve"`
	Slots   []jsonSlot `json:"slots"`
	Bids    []jsonBid  `json:"bids"`
}

type jsonSlot struct {
	ID     *int    `json:"id"`
	Weight *uint64 `json:"weight"`
}

type jsonBid struct {
	Bidder *string `json:"bidder"`
	Price  *uint64 `json:"price"`
	Budget uint64  `json:"budget"`
}

// DecodeRequest reads one JSON auction request from r. Decoding is strict:
// unknown fields, missing fields (other than "rule" and "budget"), negative
// numbers, fractions or exponents where integers are required, numbers that
// overflow 64 bits, duplicate bidder names or slot IDs, and anything after
// the request other than white space are all errors wrapping ErrBadRequest.
// Slot weights of zero are rejected later, by Clear.
func DecodeRequest(r io.Reader) (*Request, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxRequestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %w", ErrBadRequest, err)
	}
	if len(data) > maxRequestBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadRequest, maxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in jsonRequest
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the request", ErrBadRequest)
	}
	if in.Reserve == nil {
		return nil, fmt.Errorf("%w: missing \"reserve\"", ErrBadRequest)
	}
	reserve, err := credits("reserve", *in.Reserve)
	if err != nil {
		return nil, err
	}
	req := &Request{Reserve: reserve}
	if in.Rule != nil {
		req.Rule = *in.Rule
	}
	ids := make(map[int]bool, len(in.Slots))
	for i, s := range in.Slots {
		if s.ID == nil || s.Weight == nil {
			return nil, fmt.Errorf("%w: slot %d: needs \"id\" and \"weight\"", ErrBadRequest, i)
		}
		if ids[*s.ID] {
			return nil, fmt.Errorf("%w: duplicate slot id %d", ErrBadRequest, *s.ID)
		}
		ids[*s.ID] = true
		req.Slots = append(req.Slots, Slot{ID: *s.ID, Weight: *s.Weight})
	}
	names := make(map[string]bool, len(in.Bids))
	for i, b := range in.Bids {
		if b.Bidder == nil || *b.Bidder == "" || b.Price == nil {
			return nil, fmt.Errorf("%w: bid %d: needs a non-empty \"bidder\" and a \"price\"", ErrBadRequest, i)
		}
		if names[*b.Bidder] {
			return nil, fmt.Errorf("%w: duplicate bidder %q", ErrBadRequest, *b.Bidder)
		}
		names[*b.Bidder] = true
		req.Names = append(req.Names, *b.Bidder)
		price, err := credits("price", *b.Price)
		if err != nil {
			return nil, err
		}
		budget, err := credits("budget", b.Budget)
		if err != nil {
			return nil, err
		}
		req.Bids = append(req.Bids, Bid{Bidder: i, Price: price, Budget: budget})
	}
	return req, nil
}

// credits converts a decoded amount, refusing what units.Credits cannot
// hold.
func credits(field string, v uint64) (units.Credits, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %q %d: at most %d credits", ErrBadRequest, field, v, int64(math.MaxInt64))
	}
	return units.Credits(v), nil
}
