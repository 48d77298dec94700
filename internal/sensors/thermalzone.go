package sensors

import (
	"path/filepath"

	"github.com/maxwellhq/maxwell/internal/units"
)

// ThermalZone is one thermal zone, <sysfs>/class/thermal/thermal_zoneN,
// whose type file names the sensor ("x86_pkg_temp" for an Intel package's
// digital thermal sensor, "acpitz" for the ACPI zone) and whose temp file
// holds the temperature in millidegrees Celsius. It implements Thermometer.
type ThermalZone struct {
	typ string
	src Source
}

// ThermalZones returns every thermal zone under sysfs (the directory that
// stands for /sys), ordered by zone number. A zone whose type cannot be read
// is listed with the type "unknown". A host without thermal zones gives none
// and no error.
func ThermalZones(sysfs string) ([]*ThermalZone, error) {
	zones, err := numberedEntries(filepath.Join(sysfs, "class", "thermal"), "thermal_zone")
	if err != nil {
		return nil, err
	}
	out := make([]*ThermalZone, 0, len(zones))
	for _, z := range zones {
		typ, err := readString(filepath.Join(z.path, "type"))
		if err != nil || typ == "" {
			typ = "unknown"
		}
		out = append(out, &ThermalZone{
			typ: typ,
			src: Source{
				Kind:     KindThermalZone,
				Quantity: QuantityTemperature,
				Name:     typ + " (" + filepath.Base(z.path) + ")",
				Path:     filepath.Join(z.path, "temp"),
				Tier:     TierSensor,
			},
		})
	}
	return out, nil
}

// Source describes z. Its Name is the zone's type and directory, e.g.
// "x86_pkg_temp (thermal_zone1)".
func (z *ThermalZone) Source() Source { return z.src }

// Type returns the zone's type, e.g. "x86_pkg_temp".
func (z *ThermalZone) Type() string { return z.typ }

// ReadTemperature returns the zone's temperature, in °C. Readings outside
// -50..150 °C are ErrGarbage.
func (z *ThermalZone) ReadTemperature() (units.Celsius, error) {
	c, err := readMillidegrees(z.src.Path)
	return units.Celsius(c), err
}

// role ranks z as a host temperature.
func (z *ThermalZone) role() hostRole {
	switch {
	case z.typ == "x86_pkg_temp":
		return rolePackage
	case nonHostChip(z.typ):
		return roleNotCPU
	}
	return roleOther
}
