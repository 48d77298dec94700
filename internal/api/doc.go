// Package api is the control API of `maxwell daemon`: HTTP/1.1 with JSON
// bodies over a Unix socket, in the manner of Docker's engine API, under
// versioned paths (/v1/...). Server answers for a Backend (the daemon's
// engine); Client is what the CLI (`maxwell spawn`, `ps`, `fund`, `kill`)
// and the dashboard (`maxwell top`) call.
//
// Access is the socket file's permission: root only (0600), or root and one
// group (0660). One daemon per host: Lock takes an flock that a second
// daemon cannot, and Listen refuses a socket someone answers on while
// replacing one left by a dead daemon.
//
// Money is in credits, one credit being one µJ of host energy; every
// amount is an integer. Temperatures are in °C, power in W, energy in J.
package api
