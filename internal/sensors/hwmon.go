package sensors

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/maxwellhq/maxwell/internal/units"
)

// HwmonOptions configures the hwmon reader.
type HwmonOptions struct {
	// TctlOffset is subtracted from k10temp's Tctl when the chip has no
	// Tdie. Tctl is the control temperature AMD's firmware uses for fan
	// control; on some Ryzen and Threadripper parts it reads a fixed,
	// model-specific amount above the die temperature (e.g. 27 °C on a
	// Threadripper 1950X, 20 °C on a Ryzen 7 1800X). Where the kernel
	// knows the offset it reports Tdie = Tctl - offset itself, and Tdie is
	// then used instead. Default 0 °C.
	TctlOffset units.Celsius
}

// HwmonSensor is one temperature input of an hwmon chip,
// <sysfs>/class/hwmon/hwmonN/tempM_input, in millidegrees Celsius. It
// implements Thermometer.
//
// The coretemp driver (Intel) caches each reading for about one second
// (it rereads the MSR only when a jiffy-based HZ interval has passed), so
// coretemp is a poor source for control loops faster than 1 Hz; the MSR
// thermometer reads the same sensor uncached.
type HwmonSensor struct {
	src    Source
	chip   string
	label  string
	offset units.Celsius
	role   hostRole
}

// hostRole ranks a temperature sensor as a measure of the host's heat.
type hostRole int

const (
	roleNotCPU  hostRole = iota // a disk, GPU, radio: never a host temperature
	roleOther                   // a CPU core, CCD, or board sensor
	rolePackage                 // the whole CPU package
)

// nonHostChip reports whether the hwmon chip named chip measures something
// other than the host's CPU or board: a drive, GPU, radio or battery.
func nonHostChip(chip string) bool {
	for _, p := range [...]string{"nvme", "drivetemp", "amdgpu", "radeon", "nouveau", "iwlwifi", "mt79", "ath1", "BAT"} {
		if strings.HasPrefix(chip, p) {
			return true
		}
	}
	return false
}

// HwmonSensors returns every temperature input of every hwmon chip under
// sysfs (the directory that stands for /sys), ordered by chip and input
// number. Chips without a name file and inputs whose label cannot be read
// are still listed, named by their file. A host without hwmon gives no
// sensors and no error.
func HwmonSensors(sysfs string, opts HwmonOptions) ([]*HwmonSensor, error) {
	chips, err := numberedEntries(filepath.Join(sysfs, "class", "hwmon"), "hwmon")
	if err != nil {
		return nil, err
	}
	var out []*HwmonSensor
	for _, c := range chips {
		out = append(out, hwmonChipSensors(c.path, opts)...)
	}
	return out, nil
}

// hwmonChipSensors lists the temperature inputs of the chip in dir.
func hwmonChipSensors(dir string, opts HwmonOptions) []*HwmonSensor {
	chip, err := readString(filepath.Join(dir, "name"))
	if err != nil || chip == "" {
		chip = filepath.Base(dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var idx []int
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "temp")
		if !ok {
			continue
		}
		num, ok := strings.CutSuffix(rest, "_input")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(num); err == nil && n >= 0 {
			idx = append(idx, n)
		}
	}
	sort.Ints(idx)

	var (
		out     []*HwmonSensor
		hasTdie bool
	)
	for _, n := range idx {
		label, err := readString(filepath.Join(dir, fmt.Sprintf("temp%d_label", n)))
		if err != nil {
			label = ""
		}
		s := &HwmonSensor{
			chip:  chip,
			label: label,
			src: Source{
				Kind:     KindHwmon,
				Quantity: QuantityTemperature,
				Path:     filepath.Join(dir, fmt.Sprintf("temp%d_input", n)),
				Tier:     TierSensor,
			},
		}
		if label == "" {
			label = fmt.Sprintf("temp%d", n)
		}
		s.src.Name = chip + " " + label
		s.role = classifyHwmon(chip, label)
		if chip == "k10temp" && label == "Tdie" {
			hasTdie = true
		}
		out = append(out, s)
	}
	// k10temp: prefer Tdie; Tctl is the package temperature only without
	// it, and then carries the configured offset.
	for _, s := range out {
		if s.chip != "k10temp" || s.label != "Tctl" {
			continue
		}
		if hasTdie {
			s.role = roleOther
			continue
		}
		s.offset = opts.TctlOffset
		s.src.Name = fmt.Sprintf("k10temp Tctl (offset %g)", float64(opts.TctlOffset))
	}
	return out
}

// classifyHwmon ranks the input labelled label of chip.
func classifyHwmon(chip, label string) hostRole {
	switch {
	case nonHostChip(chip):
		return roleNotCPU
	case chip == "coretemp" && strings.HasPrefix(label, "Package id "):
		return rolePackage
	case chip == "k10temp" && (label == "Tdie" || label == "Tctl"):
		return rolePackage
	}
	return roleOther
}

// Source describes s. Its Name is the chip's name and the input's label:
// "coretemp Package id 0", "coretemp Core 3", "k10temp Tdie",
// "k10temp Tctl (offset 0)", "acpitz temp1".
func (s *HwmonSensor) Source() Source { return s.src }

// Chip returns the name of s's hwmon chip ("coretemp", "k10temp").
func (s *HwmonSensor) Chip() string { return s.chip }

// Label returns s's tempN_label, or "" if it has none.
func (s *HwmonSensor) Label() string { return s.label }

// ReadTemperature returns the temperature, in °C, less the Tctl offset for
// k10temp's Tctl. Readings outside -50..150 °C are ErrGarbage.
func (s *HwmonSensor) ReadTemperature() (units.Celsius, error) {
	c, err := readMillidegrees(s.src.Path)
	if err != nil {
		return 0, err
	}
	c, err = plausibleCelsius(s.src.Path, c-float64(s.offset))
	return units.Celsius(c), err
}
