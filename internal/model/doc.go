// Package model estimates power and temperature on hosts that cannot
// measure them: tier 3 of Maxwell's sensors (sensors.TierModel).
//
// Every figure that comes out of this package is an estimate, and says so:
// its sensors.Source has Kind sensors.KindModel, Tier sensors.TierModel
// (so Source.Label is "estimated"), and a Model string that names the model
// and every parameter it used, down to the published measurement the power
// model was scaled from.
//
// # Power: LinearPower
//
// LinearPower maps CPU utilisation u ∈ [0, 1] to power on a straight line,
// P = Idle + (Max − Idle)·u. Its default figures come from a published
// SPECpower_ssj2008 result for a real server (DefaultReference), scaled to
// the host by ForHost in proportion to hardware threads. The linearity and
// the per-thread scaling are assumptions, not measurements.
//
// Utilisation comes from CPUSampler, which reads the kernel's CPU time
// counters in <proc>/stat through github.com/prometheus/procfs.
//
// # Temperature: Twin
//
// Twin is a first-order thermal RC model of a CPU package, a heat capacity
// C (J/K) joined to ambient through a thermal resistance R (K/W), with time
// constant τ = R·C. It is stepped with the exact solution for constant
// power, so its output does not depend on the step size. The default R and
// C (DefaultTwinParams) are illustrative values chosen to give τ = 2 s and
// a visible temperature rise, not measurements; `maxwell calibrate` is to
// identify them on hardware with a real thermometer.
//
// # Estimator
//
// Estimator glues a power source and a Twin together behind the sensors
// interfaces. It takes its time from an injected Clock and advances lazily
// on every read. Its power comes from a UtilisationSampler through a
// LinearPower (NewEstimator) or, on a host with a real energy counter but
// no thermometer, from that counter (NewCounterEstimator); in the second
// case the energy figures stay measurements and only the temperature is
// modelled.
package model
