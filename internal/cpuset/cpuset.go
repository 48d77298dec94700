// Package cpuset parses and formats CPU lists in the kernel's list format
// ("0-3,8,10-11", as in cpuset.cpus and /sys/devices/system/cpu/online).
package cpuset

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxCPU bounds the CPU numbers Parse accepts, so that a typo such as
// "0-99999999" is an error rather than a huge allocation.
const MaxCPU = 8191

// ErrSyntax is wrapped by every Parse error.
var ErrSyntax = errors.New("invalid CPU list")

// Parse parses a CPU list such as "0-2,5". The result is sorted and free of
// duplicates. An empty or all-space string gives an empty list.
func Parse(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parseCPU(lo)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrSyntax, s, err)
		}
		b := a
		if isRange {
			if b, err = parseCPU(hi); err != nil {
				return nil, fmt.Errorf("%w %q: %v", ErrSyntax, s, err)
			}
			if b < a {
				return nil, fmt.Errorf("%w %q: range %d-%d runs backwards", ErrSyntax, s, a, b)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

func parseCPU(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a CPU number", s)
	}
	if n < 0 || n > MaxCPU {
		return 0, fmt.Errorf("CPU %d out of range 0-%d", n, MaxCPU)
	}
	return n, nil
}

// Format writes cpus in list format with ranges collapsed: [0 1 2 5] gives
// "0-2,5". The input need not be sorted.
func Format(cpus []int) string {
	c := slices.Clone(cpus)
	slices.Sort(c)
	c = slices.Compact(c)
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(c[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(c[j]))
		}
		i = j + 1
	}
	return b.String()
}

// Allowed returns the CPUs the calling thread may run on (its affinity
// mask), which is what a process "is given": it can be fewer than the
// machine has.
func Allowed() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("read CPU affinity: %w", err)
	}
	var cpus []int
	for i := 0; i <= MaxCPU && len(cpus) < set.Count(); i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// Subset reports the first CPU of want that is not in have, and whether
// every CPU of want is in have.
func Subset(want, have []int) (missing int, ok bool) {
	for _, c := range want {
		if !slices.Contains(have, c) {
			return c, false
		}
	}
	return 0, true
}

// Choose parses a CPU list that names CPUs this process may use, and
// returns them; an empty list means every CPU it may use.
func Choose(list string) ([]int, error) {
	allowed, err := Allowed()
	if err != nil {
		return nil, err
	}
	cpus, err := Parse(list)
	if err != nil {
		return nil, err
	}
	if len(cpus) == 0 {
		return allowed, nil
	}
	if c, ok := Subset(cpus, allowed); !ok {
		return nil, fmt.Errorf("CPU %d is not available to this process (allowed: %s)", c, Format(allowed))
	}
	return cpus, nil
}
