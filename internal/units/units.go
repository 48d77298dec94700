// Package units gives Maxwell's physical quantities their own types, so that
// a figure in microjoules can never be added to one in watts by accident.
//
// Energy is kept as an integer count of microjoules, the unit of the kernel's
// powercap interface (energy_uj) and of Maxwell's credits. Hardware energy
// counters wrap; Wrap handles that once, here, for every reader.
package units

import (
	"fmt"
	"time"
)

// Energy is an amount of energy in microjoules (µJ).
type Energy uint64

// Common energy amounts.
const (
	Microjoule Energy = 1
	Millijoule Energy = 1000
	Joule      Energy = 1000 * Millijoule
)

// Joules returns e in joules.
func (e Energy) Joules() float64 { return float64(e) / float64(Joule) }

// String formats e in joules.
func (e Energy) String() string { return fmt.Sprintf("%.6f J", e.Joules()) }

// EnergyFromJoules converts j joules to Energy, rounding to the nearest
// microjoule. Negative or NaN inputs give 0.
func EnergyFromJoules(j float64) Energy {
	if !(j > 0) { // catches NaN too
		return 0
	}
	return Energy(j*float64(Joule) + 0.5)
}

// Wrap returns how much a free-running hardware energy counter advanced from
// prev to cur, given that it wraps to zero after max (the counter's largest
// value plus one is max+1; powercap calls max "max_energy_range_uj"). A
// counter that appears to run backwards is taken to have wrapped exactly once.
// With max == 0 (range unknown) a backwards step yields 0 rather than a huge
// bogus delta.
func Wrap(prev, cur, max Energy) Energy {
	if cur >= prev {
		return cur - prev
	}
	if max == 0 || prev > max {
		return 0
	}
	return max - prev + cur + 1
}

// Power is a rate of energy in watts (W).
type Power float64

// Watts returns p as a float64 number of watts.
func (p Power) Watts() float64 { return float64(p) }

// Over returns the energy spent at power p for duration d.
func (p Power) Over(d time.Duration) Energy {
	return EnergyFromJoules(float64(p) * d.Seconds())
}

// AveragePower returns the mean power that spends e over d. It returns 0 for
// a non-positive duration.
func AveragePower(e Energy, d time.Duration) Power {
	if d <= 0 {
		return 0
	}
	return Power(e.Joules() / d.Seconds())
}

// Celsius is a temperature in degrees Celsius.
type Celsius float64

// FromMillidegrees converts the kernel's millidegree Celsius integers
// (hwmon temp*_input, thermal_zone*/temp) to Celsius.
func FromMillidegrees(m int64) Celsius { return Celsius(float64(m) / 1000) }
