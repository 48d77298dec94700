package sensors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// classify wraps err, got while reading path, with the sentinel that says
// what went wrong: ErrPermission for EACCES and EPERM (powercap energy_uj is
// root-only since Linux 5.10; /dev/cpu/N/msr needs CAP_SYS_RAWIO),
// ErrNotFound for a missing file or device, and the error itself otherwise.
// The original error stays in the chain for errors.Is and errors.As.
func classify(path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: %w: %w", path, ErrPermission, err)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENODEV),
		errors.Is(err, syscall.ENXIO):
		return fmt.Errorf("%s: %w: %w", path, ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// readString returns the contents of the sysfs or procfs file at path with
// surrounding white space removed.
func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", classify(path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// readUint reads a file holding one unsigned decimal integer, such as
// powercap's energy_uj. Anything else is ErrGarbage.
func readUint(path string) (uint64, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %q", path, ErrGarbage, s)
	}
	return v, nil
}

// readInt reads a file holding one signed decimal integer, such as hwmon's
// temp1_input. Anything else is ErrGarbage.
func readInt(path string) (int64, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %q", path, ErrGarbage, s)
	}
	return v, nil
}

// Plausible temperature range for a host sensor, in °C. Readings outside it
// are ErrGarbage: a disconnected diode or a firmware placeholder, not heat.
const (
	minPlausibleCelsius = -50
	maxPlausibleCelsius = 150
)

// readMillidegrees reads a file in the kernel's millidegree Celsius format
// (hwmon tempN_input, thermal_zoneN/temp) and checks the result is plausible.
func readMillidegrees(path string) (float64, error) {
	m, err := readInt(path)
	if err != nil {
		return 0, err
	}
	return plausibleCelsius(path, float64(m)/1000)
}

// plausibleCelsius returns c, or ErrGarbage if c is outside
// [minPlausibleCelsius, maxPlausibleCelsius].
func plausibleCelsius(path string, c float64) (float64, error) {
	if c < minPlausibleCelsius || c > maxPlausibleCelsius {
		return 0, fmt.Errorf("%s: %w: %.3f °C", path, ErrGarbage, c)
	}
	return c, nil
}

// numberedEntries lists the entries of dir named prefix followed by a
// decimal number (hwmon0, thermal_zone12, cpu3), sorted by that number. A
// missing dir gives no entries and no error: the interface is simply absent.
// The entries in /sys/class are symbolic links, so they are not filtered on
// being directories.
func numberedEntries(dir, prefix string) ([]numbered, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, classify(dir, err)
	}
	var out []numbered
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			continue
		}
		out = append(out, numbered{n: n, path: filepath.Join(dir, e.Name())})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	return out, nil
}

// numbered is a directory entry whose name ends in a number.
type numbered struct {
	n    int
	path string
}

// failure is a sensor that was found but could not be opened.
type failure struct {
	path string
	err  error
}

// joinFailures joins the errors of failed, or returns nil if there are none.
func joinFailures(failed []failure) error {
	errs := make([]error, len(failed))
	for i, f := range failed {
		errs[i] = f.err
	}
	return errors.Join(errs...)
}
