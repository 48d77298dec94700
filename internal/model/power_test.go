package model

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

func TestLinearPowerPower(t *testing.T) {
	l, err := NewLinearPower(10, 30, "test")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		u       float64
		want    units.Power
		wantErr bool
	}{
		{"idle", 0, 10, false},
		{"half", 0.5, 20, false},
		{"quarter", 0.25, 15, false},
		{"full", 1, 30, false},
		{"below range clamps", -0.2, 10, false},
		{"above range clamps", 1.7, 30, false},
		{"+Inf clamps", math.Inf(1), 30, false},
		{"-Inf clamps", math.Inf(-1), 10, false},
		{"NaN is an error, idle", math.NaN(), 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.Power(tt.u)
			if tt.wantErr != (err != nil) {
				t.Fatalf("Power(%v) error = %v, want error %v", tt.u, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadUtilisation) {
				t.Errorf("Power(%v) error = %v, want ErrBadUtilisation", tt.u, err)
			}
			if !closeTo(float64(got), float64(tt.want), 1e-12) {
				t.Errorf("Power(%v) = %v, want %v", tt.u, got, tt.want)
			}
		})
	}
}

func TestNewLinearPowerRejects(t *testing.T) {
	tests := []struct {
		name      string
		idle, max units.Power
	}{
		{"negative idle", -1, 10},
		{"max below idle", 20, 10},
		{"NaN idle", units.Power(math.NaN()), 10},
		{"NaN max", 1, units.Power(math.NaN())},
		{"infinite max", 1, units.Power(math.Inf(1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewLinearPower(tt.idle, tt.max, ""); !errors.Is(err, ErrBadParam) {
				t.Errorf("NewLinearPower(%v, %v) error = %v, want ErrBadParam", tt.idle, tt.max, err)
			}
		})
	}
	if _, err := NewLinearPower(5, 5, ""); err != nil {
		t.Errorf("flat model idle == max rejected: %v", err)
	}
}

func TestReferenceValidate(t *testing.T) {
	good := Reference{Name: "box", Citation: "https://example.org/r", IdleWatts: 50, MaxWatts: 200, HardwareThreads: 16}
	tests := []struct {
		name string
		mod  func(*Reference)
		ok   bool
	}{
		{"good", func(*Reference) {}, true},
		{"no name", func(r *Reference) { r.Name = "" }, false},
		{"no citation", func(r *Reference) { r.Citation = "" }, false},
		{"negative idle", func(r *Reference) { r.IdleWatts = -1 }, false},
		{"NaN idle", func(r *Reference) { r.IdleWatts = math.NaN() }, false},
		{"max below idle", func(r *Reference) { r.MaxWatts = 40 }, false},
		{"infinite max", func(r *Reference) { r.MaxWatts = math.Inf(1) }, false},
		{"zero threads", func(r *Reference) { r.HardwareThreads = 0 }, false},
		{"negative threads", func(r *Reference) { r.HardwareThreads = -4 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.mod(&r)
			err := r.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadParam) {
				t.Errorf("Validate() = %v, want ErrBadParam", err)
			}
			if _, ferr := ForHost(r, 2); tt.ok != (ferr == nil) {
				t.Errorf("ForHost error = %v, want ok %v", ferr, tt.ok)
			}
		})
	}
}

func TestForHost(t *testing.T) {
	ref := Reference{Name: "box", Citation: "https://example.org/r", IdleWatts: 54.1, MaxWatts: 243, HardwareThreads: 32}
	tests := []struct {
		cpus      int
		idle, max float64
	}{
		{1, 54.1 / 32, 243.0 / 32},
		{2, 3.38125, 15.1875},
		{32, 54.1, 243},
		{64, 108.2, 486}, // scaling up is allowed: the same assumption
	}
	for _, tt := range tests {
		l, err := ForHost(ref, tt.cpus)
		if err != nil {
			t.Fatalf("ForHost(%d): %v", tt.cpus, err)
		}
		if !closeTo(float64(l.Idle), tt.idle, 1e-12) || !closeTo(float64(l.Max), tt.max, 1e-12) {
			t.Errorf("ForHost(%d) = idle %v, max %v; want %v, %v", tt.cpus, l.Idle, l.Max, tt.idle, tt.max)
		}
		if !strings.Contains(l.Basis, "box") || !strings.Contains(l.Basis, "https://example.org/r") {
			t.Errorf("ForHost(%d).Basis = %q, want reference name and citation", tt.cpus, l.Basis)
		}
	}
	for _, cpus := range []int{0, -2} {
		if _, err := ForHost(ref, cpus); !errors.Is(err, ErrBadParam) {
			t.Errorf("ForHost(%d) error = %v, want ErrBadParam", cpus, err)
		}
	}
}

func TestDefaultReference(t *testing.T) {
	ref := DefaultReference()
	if err := ref.Validate(); err != nil {
		t.Fatalf("default reference invalid: %v", err)
	}
	if !strings.Contains(ref.Citation, "spec.org/power_ssj2008/results/") {
		t.Errorf("default reference citation %q is not a SPECpower_ssj2008 result", ref.Citation)
	}
	l, err := DefaultLinearPower(2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ForHost(ref, 2)
	if l != want {
		t.Errorf("DefaultLinearPower(2) = %+v, want %+v", l, want)
	}
}

func TestLinearPowerDescribe(t *testing.T) {
	l, err := ForHost(Reference{Name: "Box 9000", Citation: "https://example.org/r", IdleWatts: 54.1, MaxWatts: 243, HardwareThreads: 32}, 2)
	if err != nil {
		t.Fatal(err)
	}
	got := l.Describe()
	want := "linear-utilisation(idle=3.381 W, max=15.19 W; ref: Box 9000 <https://example.org/r>, scaled 2/32 hardware threads)"
	if got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	bare := LinearPower{Idle: 1, Max: 2}
	if got, want := bare.Describe(), "linear-utilisation(idle=1 W, max=2 W)"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
}
