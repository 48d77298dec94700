package cpuset

import (
	"errors"
	"slices"
	"strconv"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"", nil, false},
		{"  ", nil, false},
		{"0", []int{0}, false},
		{"0-3", []int{0, 1, 2, 3}, false},
		{"5,0-1, 3", []int{0, 1, 3, 5}, false},
		{"1,1,0-1", []int{0, 1}, false},
		{"3-1", nil, true},
		{"a", nil, true},
		{"1-", nil, true},
		{"-1", nil, true},
		{"0-99999999", nil, true},
		{"1,,2", nil, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Parse(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) error %v does not wrap ErrSyntax", tt.in, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Parse(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for in, want := range map[string]string{"0-3": "0-3", "5,0-1,3": "0-1,3,5", "7": "7", "": "", "2,1,0": "0-2"} {
		cpus, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := Format(cpus); got != want {
			t.Errorf("Format(Parse(%q)) = %q, want %q", in, got, want)
		}
	}
}

func TestAllowed(t *testing.T) {
	cpus, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) == 0 {
		t.Fatal("no CPUs allowed")
	}
	if !slices.IsSorted(cpus) {
		t.Errorf("Allowed() = %v, not sorted", cpus)
	}
	if _, ok := Subset(cpus[:1], cpus); !ok {
		t.Error("Subset of itself failed")
	}
	if c, ok := Subset([]int{MaxCPU}, cpus); ok || c != MaxCPU {
		t.Errorf("Subset found CPU %d in %v", MaxCPU, cpus)
	}
}

func TestChoose(t *testing.T) {
	allowed, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Choose(""); err != nil || !slices.Equal(got, allowed) {
		t.Errorf("Choose(\"\") = %v, %v; want every allowed CPU %v", got, err, allowed)
	}
	if got, err := Choose(strconv.Itoa(allowed[0])); err != nil || len(got) != 1 {
		t.Errorf("Choose(%d) = %v, %v", allowed[0], got, err)
	}
	if _, err := Choose("8191"); err == nil {
		t.Error("Choose of a CPU this process may not use succeeded")
	}
	if _, err := Choose("x"); err == nil {
		t.Error("Choose of garbage succeeded")
	}
}
