package vm

import (
	"errors"
	"fmt"
	"strconv"
)

// Errors of this package, besides those of package cell (cell.ErrExists,
// cell.ErrClosed, cell.ErrExited, cell.ErrInvalidName), which it returns
// where they mean the same.
var (
	// ErrConfig means Options or a Spec cannot describe a microVM.
	ErrConfig = errors.New("invalid microVM configuration")
	// ErrNoVMM means the VMM binary is not installed.
	ErrNoVMM = errors.New("VMM binary not found")
	// ErrNoKVM means the VMM needs KVM and this host's does not work.
	ErrNoKVM = errors.New("KVM unusable")
	// ErrBootTimeout means the guest did not say it was ready within
	// Options.BootTimeout; the VM was killed.
	ErrBootTimeout = errors.New("guest did not boot in time")
	// ErrKilled means the VM was killed by Kill or Close.
	ErrKilled = errors.New("microVM killed")
	// ErrVMState means the VMM did not reach the state asked for.
	ErrVMState = errors.New("microVM in unexpected state")
	// ErrGuestInit means the guest's init failed before the command ran.
	ErrGuestInit = errors.New("guest init failed")
	// ErrAgentTaken means the agent connection was already handed out.
	ErrAgentTaken = errors.New("agent connection already taken")
)

// ExitError is the end of a VM whose guest command exited with a status
// other than 0.
type ExitError struct {
	// Status is the command's exit status in the guest (128+N for a
	// signal N, as the shell reports it).
	Status int
}

func (e *ExitError) Error() string {
	return "guest command exited with status " + strconv.Itoa(e.Status)
}

// PanicError is the end of a VM whose guest kernel panicked.
type PanicError struct {
	// Message is the panic line from the console.
	Message string
}

func (e *PanicError) Error() string { return "guest kernel panic: " + e.Message }

// VMMError is the end of a VM whose VMM process died without the guest
// powering off (killed from outside, crashed, or refused its arguments).
type VMMError struct {
	// Err is the VMM process's exit error.
	Err error
	// Stderr is the end of what the VMM wrote to its standard error.
	Stderr string
}

func (e *VMMError) Error() string {
	s := fmt.Sprintf("VMM died: %v", e.Err)
	if e.Stderr != "" {
		s += ": " + e.Stderr
	}
	return s
}

func (e *VMMError) Unwrap() error { return e.Err }

// AgentError is the end of a VM whose agent the hub cut off: it never
// said hello in time, flooded its port, or sent garbage.
type AgentError struct {
	// Err is the hub's reason (a *proto.Error where the hub ended the
	// session for a protocol fault).
	Err error
}

func (e *AgentError) Error() string { return "agent cut off: " + e.Err.Error() }

func (e *AgentError) Unwrap() error { return e.Err }
