package sensors

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

func TestHwmonSensors(t *testing.T) {
	type sensor struct {
		name string
		role hostRole
		want units.Celsius // 0 with err
		err  error
	}
	tests := []struct {
		host    string
		opts    HwmonOptions
		sensors []sensor
	}{
		{
			host: "intel",
			sensors: []sensor{
				{"coretemp Package id 0", rolePackage, 52, nil},
				{"coretemp Core 0", roleOther, 48, nil},
				{"coretemp Core 1", roleOther, 50, nil},
				{"coretemp Package id 1", rolePackage, 55, nil},
				{"coretemp Core 0", roleOther, 51, nil},
				{"coretemp Core 1", roleOther, 54, nil},
				{"nvme Composite", roleNotCPU, 38.85, nil},
				{"nvme Sensor 1", roleNotCPU, 38.85, nil},
				{"acpitz temp1", roleOther, 27.8, nil},
			},
		},
		{
			host: "laptop",
			sensors: []sensor{
				{"BAT0 temp1", roleNotCPU, 30.1, nil},
				{"coretemp Package id 0", rolePackage, 61, nil},
				{"coretemp Core 0", roleOther, 59, nil},
				{"coretemp Core 1", roleOther, 60, nil},
				{"iwlwifi_1 temp1", roleNotCPU, 41, nil},
			},
		},
		{
			host: "amd",
			sensors: []sensor{
				{"amdgpu edge", roleNotCPU, 45, nil},
				{"k10temp Tctl (offset 0)", rolePackage, 61.25, nil},
				{"k10temp Tccd1", roleOther, 55, nil},
				{"k10temp Tccd2", roleOther, 57.5, nil},
			},
		},
		{
			host: "amd",
			opts: HwmonOptions{TctlOffset: 20},
			sensors: []sensor{
				{"amdgpu edge", roleNotCPU, 45, nil},
				{"k10temp Tctl (offset 20)", rolePackage, 41.25, nil},
				{"k10temp Tccd1", roleOther, 55, nil},
				{"k10temp Tccd2", roleOther, 57.5, nil},
			},
		},
		{
			// The kernel knows this part's offset and reports Tdie; the
			// configured offset must not be applied on top.
			host: "threadripper",
			opts: HwmonOptions{TctlOffset: 27},
			sensors: []sensor{
				{"k10temp Tctl", roleOther, 72, nil},
				{"k10temp Tdie", rolePackage, 45, nil},
				{"k10temp Tccd1", roleOther, 44, nil},
			},
		},
		{
			host: "garbage",
			sensors: []sensor{
				{"coretemp Package id 0", rolePackage, 0, ErrGarbage}, // 200 °C
				{"coretemp Core 0", roleOther, 0, ErrGarbage},         // -273 °C
				{"coretemp Core 1", roleOther, 0, ErrGarbage},         // "N/A"
				{"acpitz temp1", roleOther, 0, ErrGarbage},            // empty
			},
		},
		{host: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, err := HwmonSensors(fixture(t, tt.host).Sys, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.sensors) {
				t.Fatalf("got %d sensors, want %d", len(got), len(tt.sensors))
			}
			for i, want := range tt.sensors {
				s := got[i]
				src := s.Source()
				if src.Name != want.name || s.role != want.role {
					t.Errorf("sensor %d = %q role %d, want %q role %d", i, src.Name, s.role, want.name, want.role)
				}
				if src.Kind != KindHwmon || src.Quantity != QuantityTemperature || src.Tier != TierSensor ||
					!strings.HasSuffix(src.Path, "_input") {
					t.Errorf("%s: source = %+v", src.Name, src)
				}
				if !strings.HasPrefix(src.Name, s.Chip()+" ") {
					t.Errorf("%s: chip %q", src.Name, s.Chip())
				}
				c, err := s.ReadTemperature()
				if !errors.Is(err, want.err) || (want.err == nil) != (err == nil) {
					t.Errorf("%s: ReadTemperature error %v, want %v", src.Name, err, want.err)
				}
				if diff := float64(c - want.want); diff > 1e-9 || diff < -1e-9 {
					t.Errorf("%s: ReadTemperature = %v, want %v", src.Name, c, want.want)
				}
			}
		})
	}
}

func TestHwmonReadChanges(t *testing.T) {
	r := fixture(t, "intel")
	got, err := HwmonSensors(r.Sys, HwmonOptions{})
	if err != nil || len(got) == 0 {
		t.Fatalf("HwmonSensors = %d, %v", len(got), err)
	}
	s := got[0]
	if s.Label() != "Package id 0" {
		t.Fatalf("first sensor label %q", s.Label())
	}
	for _, tt := range []struct {
		content string
		want    units.Celsius
		err     error
	}{
		{"64500\n", 64.5, nil},
		{"-50000\n", -50, nil},
		{"150000\n", 150, nil},
		{"150001\n", 0, ErrGarbage},
		{"-50001\n", 0, ErrGarbage},
		{"4.5e4\n", 0, ErrGarbage},
	} {
		writeFile(t, s.Source().Path, tt.content)
		c, err := s.ReadTemperature()
		if c != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%q: ReadTemperature = %v, %v; want %v, %v", tt.content, c, err, tt.want, tt.err)
		}
	}
	if err := os.Remove(s.Source().Path); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadTemperature(); !errors.Is(err, ErrNotFound) {
		t.Errorf("read of a removed input: %v, want ErrNotFound", err)
	}
	if got, err := HwmonSensors(filepath.Join(t.TempDir(), "none"), HwmonOptions{}); err != nil || len(got) != 0 {
		t.Errorf("HwmonSensors on a missing root = %v, %v", got, err)
	}
}
