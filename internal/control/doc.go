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
// # Compared with Linux's power_allocator governor
//
// Linux's power_allocator (IPA, drivers/thermal/gov_power_allocator.c) also
// runs a PID on temperature. Where this package differs, and why:
//
//   - Output. IPA outputs a power budget in mW: sustainable_power + P + I +
//     D, clamped to [0, max allocatable power] and split among cooling
//     devices. We output a price multiplier in [OutMin, OutMax]; the power
//     budget emerges from what agents buy at that price. IPA's
//     sustainable_power is a feed-forward bias; ours is carried by the
//     integral, which starts at OutMin, because at a cool temperature the
//     right price is simply the energy's cost, and the equilibrium price
//     under load is not known in advance (it depends on the agents).
//   - Sign. IPA's error is control_temp − temperature (positive when cool,
//     granting power); ours is measured − setpoint (positive when hot,
//     raising price). Same loop, mirrored output.
//   - Asymmetric proportional gain. IPA uses k_po while overshooting and
//     k_pu (by default twice k_po) while under the target, so a cool device
//     gets power back quickly. Gains.Kp plays k_po and the optional
//     Gains.KpUnder plays k_pu; by default they are equal, because when
//     cool our output sits clamped at OutMin anyway, and SIMC's margins
//     hold for one linear gain.
//   - Integral cutoff. IPA accumulates the error only while it is below
//     integral_cutoff (by default 0: only while overshooting), and only if
//     the integral term stays within the maximum power; the integral can
//     then only lower the budget, and IPA resets it to zero whenever the
//     temperature falls below the switch-on trip. We have no switch-on
//     trip: the loop always runs. Our optional Gains.IntegralBand is
//     symmetric (integrate only within ±band of the setpoint), because a
//     price integral must come down as well as up. Windup is prevented by
//     clipping at the output limits instead of by resets, so a loop that
//     cools off keeps its last equilibrium price in the integral, a warm
//     start for the next burst of load.
//   - Time. IPA adds the raw error to the integral once per polling period
//     and divides the derivative by the fixed polling delay; we scale by
//     the dt given to each Step, so gains are per second and do not change
//     meaning with the tick.
//   - Derivative. IPA differentiates the error, unfiltered (k_d defaults to
//     0); a change of the trip temperature through sysfs kicks it. We
//     differentiate the measurement through a low-pass filter.
//   - Tuning. IPA estimates its gains from sustainable_power and the span
//     between the switch-on and desired trips, k_i a fixed fraction of
//     k_pu. We identify the plant (FitFOPDT) and tune by SIMC.
//   - Arithmetic. IPA runs in 10-bit fixed point in the kernel; we use
//     float64 for the controller and exact integer arithmetic for the
//     price itself (ReservePrice).
//   - Failure. IPA leaves critical trips to the thermal core. Our Critical
//     temperature and FailSafe both put the price at its ceiling, so that
//     no agent can buy CPU time while the host is, or may be, too hot.
package control
