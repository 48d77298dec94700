// Package control turns host temperature into a price for CPU time, and
// identifies the host's thermal response to tune that loop.
//
// # The price loop
//
// Credits are microjoules of host energy ($JOULE). The controller's output
// is a thermal multiplier m ≥ 1: the reserve price of a slot is its expected
// energy times m (see ReservePrice). Heat must make CPU time dearer, so the
// loop is reverse-acting: the error is e = measured − setpoint, and a
// temperature above the setpoint raises m.
//
// PID is a pure state machine in the manner of etcd's raft: no clock, no
// goroutines, no I/O; the interval since the last step comes in with each
// Step. In parallel form,
//
//	m = clamp(I + Kp·e + D, OutMin, OutMax),  I += Ki·e·dt,
//	D = low-pass(Kd·d(measured)/dt).
//
// The integral I carries the bias and starts at OutMin (energy priced at
// cost). The derivative acts on the measurement, so a setpoint change does
// not kick the output, through a first-order filter discretised by
// backward Euler (stable for any dt). Anti-windup is conditional
// integration with clipping: an integral step that would take the output
// past a limit is cut to reach the limit exactly, or dropped if the output
// is already there. SetSetpoint and Retune are bumpless: the integral
// absorbs the change so the output does not jump. FailSafe puts the price
// at its ceiling when the thermometer fails; the next good Step resumes
// bumplessly from the ceiling. A reading at or above Critical forces the
// ceiling.
//
// # Plant identification and tuning
//
// FitFOPDT fits a first-order-plus-dead-time model K·e^(−θs)/(τs+1) to a
// step response by least squares over all four parameters (the baseline and
// K in closed form for each (θ, τ), then a coarse-to-fine grid over θ and
// τ). SIMC gives Skogestad's PI tuning, Kc = τ/(K(τc+θ)), τI =
// min(τ, 4(τc+θ)), with τc = θ by default: Skogestad's "tight control"
// choice, a fast response that keeps a gain margin near 3.
//
// The controller's output is a price, not watts, so the plant it sees is
// price → agents' demand → power → temperature, and includes how quickly
// and how strongly the agents react. Identify that whole loop with a
// multiplier step (FitFOPDT works on any input/output pair) and tune it
// with PriceGains; or identify the thermal part from a load step and the
// agents' part separately, and join them with Series (Skogestad's half
// rule).
//
// # The predictor
//
// A PID acting on the measurement can only respond once the temperature has
// moved, and its price reaches the host only after the agents react. On a
// package with τ = 2 s that heats through the setpoint at 4 K/s, agents
// that take half a second to react let it overshoot by several kelvin. With
// Config.Predictor the PID acts instead on ŷ, the temperature predicted one
// dead time θ ahead, when a price published now starts to act: the Smith
// predictor's idea in the form that suits a first-order host whose power is
// not measured. The heating rate gives the power the host heats with now,
// so under that power
//
//	ŷ = y + (1 − e^(−θ/τ))·(T∞ − y),  T∞ − y = Δy·e^(−h/τ)/(1 − e^(−h/τ)),
//
// from the last interval h (τ·dT/dt in the limit), plus, for each price
// change Δu published a time a ago that the agents have not yet reacted
// to, K·Δu·(1 − e^(−a/τ)). Only the part of a change above Predictor.Knee
// counts: below the agents' highest valuation, demand does not respond to
// price, and a linear model that believed it would stops raising the price
// too early. The price therefore rises while the temperature is still
// approaching the setpoint, once the host is heading past it.
//
// With the dead time predicted away the loop is K/(τs+1) with only the
// sampling left as delay, and PredictiveGains tunes it by SIMC with τc one
// tick. Identify θ, τ and K with FitFOPDT from a multiplier step, and the
// knee with Knee from the steady temperatures at cost and at the step's
// operating point. The predictor is state inside the PID (the filtered
// heating rate, at most 64 price changes in flight, no allocation), so the
// PID stays a pure state machine. SetPredictor switches it bumplessly;
// FailSafe forgets its state.
//
// The weakness of any Smith predictor is a wrong dead time: on the default
// twin agents one tick slower or faster than identified make the loop
// cycle by about 1 K peak to peak (see docs/CONTROL.md). Re-identify when
// the agents change.
//
// # The thermostat
//
// Thermostat wraps a PID for the engine. Its Step takes the reading and
// the error from taking it, and returns a Decision: the multiplier, whether
// it is in fail-safe, and a Reason the engine records as an event. A failed
// read, a non-finite or implausible reading, or one at or above Critical
// puts the price at the ceiling; the first good reading after that resumes
// bumplessly from the ceiling.
//
// # Compared with Linux's power_allocator governor
//
// Linux's power_allocator (IPA) also runs a PID on temperature; see
// docs/CONTROL.md for where ours differs and why. In short: we output a
// price, not a power budget; the bias is learnt by the integral, not given
// as sustainable_power; gains are per second; the derivative is filtered and
// on the measurement; the plant is identified and the loop tuned by SIMC;
// and IPA has no predictor: it acts on the temperature as measured, which
// on a host whose agents react late is too late.
package control
