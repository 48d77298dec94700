package sensors

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxwellhq/maxwell/internal/units"
)

func TestThermalZones(t *testing.T) {
	type zone struct {
		name, typ string
		role      hostRole
		want      units.Celsius
		err       error
	}
	tests := []struct {
		host  string
		zones []zone
	}{
		{
			host: "intel",
			zones: []zone{
				{"acpitz (thermal_zone0)", "acpitz", roleOther, 27.8, nil},
				{"x86_pkg_temp (thermal_zone1)", "x86_pkg_temp", rolePackage, 52, nil},
				{"x86_pkg_temp (thermal_zone2)", "x86_pkg_temp", rolePackage, 55, nil},
			},
		},
		{
			host: "laptop",
			zones: []zone{
				{"acpitz (thermal_zone0)", "acpitz", roleOther, 48, nil},
				{"INT3400 Thermal (thermal_zone1)", "INT3400 Thermal", roleOther, 20, nil},
				{"iwlwifi_1 (thermal_zone2)", "iwlwifi_1", roleNotCPU, 41, nil},
				{"x86_pkg_temp (thermal_zone3)", "x86_pkg_temp", rolePackage, 61, nil},
			},
		},
		{
			host: "garbage",
			zones: []zone{
				{"x86_pkg_temp (thermal_zone0)", "x86_pkg_temp", rolePackage, 0, ErrGarbage},
				{"acpitz (thermal_zone1)", "acpitz", roleOther, 0, ErrGarbage},
			},
		},
		{host: "amd"},
		{host: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, err := ThermalZones(fixture(t, tt.host).Sys)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.zones) {
				t.Fatalf("got %d zones, want %d", len(got), len(tt.zones))
			}
			for i, want := range tt.zones {
				z := got[i]
				src := z.Source()
				if src.Name != want.name || z.Type() != want.typ || z.role() != want.role {
					t.Errorf("zone %d = %q type %q role %d, want %q %q %d", i, src.Name, z.Type(), z.role(), want.name, want.typ, want.role)
				}
				if src.Kind != KindThermalZone || src.Quantity != QuantityTemperature || src.Tier != TierSensor ||
					filepath.Base(src.Path) != "temp" {
					t.Errorf("%s: source = %+v", src.Name, src)
				}
				c, err := z.ReadTemperature()
				if c != want.want || !errors.Is(err, want.err) || (want.err == nil) != (err == nil) {
					t.Errorf("%s: ReadTemperature = %v, %v; want %v, %v", src.Name, c, err, want.want, want.err)
				}
			}
		})
	}
}

func TestThermalZoneUnknownType(t *testing.T) {
	r := fixture(t, "intel")
	if err := os.Remove(filepath.Join(r.Sys, "class", "thermal", "thermal_zone1", "type")); err != nil {
		t.Fatal(err)
	}
	zones, err := ThermalZones(r.Sys)
	if err != nil || len(zones) != 3 {
		t.Fatalf("ThermalZones = %d, %v", len(zones), err)
	}
	if z := zones[1]; z.Type() != "unknown" || z.Source().Name != "unknown (thermal_zone1)" || z.role() != roleOther {
		t.Errorf("zone without type: %q %q role %d", z.Type(), z.Source().Name, z.role())
	}
}
