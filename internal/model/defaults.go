package model

import "github.com/maxwellhq/maxwell/internal/units"

// Default parameters. The config package embeds these; a config file or
// `maxwell calibrate` may replace every one of them.
const (
	// DefaultAmbient is the ambient temperature the twin relaxes to, in
	// °C: a typical machine-room inlet temperature. It is a config value,
	// not a measurement of this host.
	DefaultAmbient units.Celsius = 25

	// DefaultThermalResistance is the twin's R, in K/W, and
	// DefaultHeatCapacity its C, in J/K. They give τ = R·C = 2 s, inside
	// the 0.3–3.5 s range of CPU package time constants in the design
	// notes, and, for a 2-CPU slice of DefaultReference (3.4 W idle,
	// 15.2 W at full load), a steady state of about 33 °C idle and 63 °C
	// at full load: a rise the price controller can see, in the range a
	// real package runs at. They are illustrative values chosen for that,
	// not measurements; `maxwell calibrate` is to identify R and C on
	// hardware that has a real thermometer.
	DefaultThermalResistance = 2.5
	DefaultHeatCapacity      = 0.8
)

// DefaultTwinParams returns the default thermal twin parameters:
// DefaultAmbient, DefaultThermalResistance and DefaultHeatCapacity.
func DefaultTwinParams() TwinParams {
	return TwinParams{Ambient: DefaultAmbient, R: DefaultThermalResistance, C: DefaultHeatCapacity}
}

// DellR620Reference returns the SPECpower_ssj2008 result for a Dell
// PowerEdge R620 with two Intel Xeon E5-2670 (2.60 GHz, 8 cores each),
// SPEC result power_ssj2008-20120306-00434: 54.1 W average at active idle,
// 243 W average at 100% target load.
//
// The thread count assumes Hyper-Threading was enabled (2 threads per core,
// 2 × 8 × 2 = 32); the figures were taken from copies of the result in
// two independent simulator code bases (AtLarge OpenDC and optiplace),
// which agree on all eleven load levels, not from SPEC's page itself:
// check "Hardware Threads / Core" on the page before relying on it.
func DellR620Reference() Reference {
	return Reference{
		Name:            "Dell PowerEdge R620 (Intel Xeon E5-2670, 2.60 GHz)",
		Citation:        "https://www.spec.org/power_ssj2008/results/res2012q1/power_ssj2008-20120306-00434.html",
		IdleWatts:       54.1,
		MaxWatts:        243,
		HardwareThreads: 32,
	}
}

// DefaultReference returns the reference server LinearPower defaults to:
// DellR620Reference.
func DefaultReference() Reference { return DellR620Reference() }

// DefaultLinearPower returns the default power model for a host or slice
// with cpus hardware threads: DefaultReference scaled by ForHost.
func DefaultLinearPower(cpus int) (LinearPower, error) {
	return ForHost(DefaultReference(), cpus)
}
