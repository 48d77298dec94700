// Package podcgroup finds the cgroups the kubelet and the container
// runtime made for a pod and its containers, from the pod's UID, its QoS
// class and its containers' IDs (as the API server reports them in
// status.containerStatuses[].containerID), for both kubelet cgroup drivers
// and for cgroup v1 and v2 alike.
//
// The kubelet names a pod's cgroup from the components
// [cgroup-root..., "kubepods", qos, "pod"+uid] (the qos component is left
// out for Guaranteed pods):
//
//   - cgroupfs driver: the components joined by '/':
//     /kubepods/burstable/pod<uid>
//   - systemd driver: each level a slice named by the components so far,
//     joined by '-', with every '-' inside a component escaped as '_':
//     /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice
//
// The runtime puts each container in a cgroup below the pod's: its ID with
// the cgroupfs driver (CRI-O: "crio-<id>"), a scope with the systemd
// driver ("cri-containerd-<id>.scope", "crio-<id>.scope",
// "docker-<id>.scope"). Paths are the same in every hierarchy, v1 or v2;
// only the hierarchy's mount point differs, and Find looks in those a
// cell.Layout names.
package podcgroup

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cgroupfs"
)

// Errors of this package. Callers test for them with errors.Is.
var (
	// ErrBadID means a pod UID, container ID or cgroup root holds
	// something that cannot be part of a cgroup name.
	ErrBadID = errors.New("malformed pod or container id")
	// ErrUnknownRuntime means a container ID names a runtime this
	// package does not know the cgroup names of.
	ErrUnknownRuntime = errors.New("unknown container runtime")
	// ErrNotFound means no candidate cgroup exists on this host.
	ErrNotFound = errors.New("pod cgroup not found")
)

// Driver is the kubelet's cgroup driver (its --cgroup-driver).
type Driver string

// The kubelet's cgroup drivers.
const (
	Cgroupfs Driver = "cgroupfs"
	Systemd  Driver = "systemd"
)

// QOSClass is a pod's quality-of-service class (status.qosClass).
type QOSClass string

// The QoS classes, spelt as the API spells them.
const (
	Guaranteed QOSClass = "Guaranteed"
	Burstable  QOSClass = "Burstable"
	BestEffort QOSClass = "BestEffort"
)

// Runtime is a container runtime, as named by the scheme of a container ID
// ("containerd://<id>").
type Runtime string

// The runtimes whose cgroup names this package knows.
const (
	Containerd Runtime = "containerd"
	CRIO       Runtime = "cri-o"
	Docker     Runtime = "docker"
)

// Container is one container's ID, parsed.
type Container struct {
	Runtime Runtime
	ID      string
}

// ParseContainerID parses a status.containerStatuses[].containerID, such
// as "containerd://0123abcd…".
func ParseContainerID(s string) (Container, error) {
	scheme, id, ok := strings.Cut(s, "://")
	if !ok {
		return Container{}, fmt.Errorf("%w: container id %q has no <runtime>:// prefix", ErrBadID, s)
	}
	rt := Runtime(scheme)
	switch rt {
	case Containerd, CRIO, Docker:
	default:
		return Container{}, fmt.Errorf("%w: %q in container id %q (known: containerd, cri-o, docker)", ErrUnknownRuntime, scheme, s)
	}
	if !plainName(id, false) {
		return Container{}, fmt.Errorf("%w: container id %q", ErrBadID, s)
	}
	return Container{Runtime: rt, ID: id}, nil
}

// plainName reports whether s is 1 to 128 bytes of ASCII letters and
// digits, and also '-' if dash.
func plainName(s string, dash bool) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || dash && r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// Naming is how one kubelet names its cgroups.
type Naming struct {
	// Driver is the kubelet's cgroup driver.
	Driver Driver
	// Root is the kubelet's --cgroup-root: "" or "/" (the default) for
	// the hierarchy's root, else a path such as "/kube" whose elements
	// become the first components of every name.
	Root string
}

// rootComponents returns the components of n.Root.
func (n Naming) rootComponents() ([]string, error) {
	r := strings.Trim(n.Root, "/")
	if r == "" {
		return nil, nil
	}
	var out []string
	for c := range strings.SplitSeq(r, "/") {
		if !plainName(strings.ReplaceAll(strings.ReplaceAll(c, "_", ""), ".", ""), true) {
			return nil, fmt.Errorf("%w: cgroup root %q", ErrBadID, n.Root)
		}
		out = append(out, strings.TrimSuffix(c, ".slice"))
	}
	return out, nil
}

// PodPath returns the cgroup path the kubelet gives a pod, as
// /proc/<pid>/cgroup would list it.
func (n Naming) PodPath(qos QOSClass, uid string) (string, error) {
	if !plainName(uid, true) {
		return "", fmt.Errorf("%w: pod uid %q", ErrBadID, uid)
	}
	comps, err := n.rootComponents()
	if err != nil {
		return "", err
	}
	comps = append(comps, "kubepods")
	switch qos {
	case Guaranteed:
	case Burstable, BestEffort:
		comps = append(comps, strings.ToLower(string(qos)))
	default:
		return "", fmt.Errorf("%w: QoS class %q", ErrBadID, qos)
	}
	comps = append(comps, "pod"+uid)
	switch n.Driver {
	case Cgroupfs:
		return "/" + strings.Join(comps, "/"), nil
	case Systemd:
		return systemdPath(comps), nil
	}
	return "", fmt.Errorf("%w: cgroup driver %q (want cgroupfs or systemd)", ErrBadID, n.Driver)
}

// systemdPath converts cgroup name components to systemd slices, as the
// kubelet's systemd driver does: ["kubepods", "burstable", "pod1-2"] →
// /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice.
func systemdPath(comps []string) string {
	var b strings.Builder
	prefix := ""
	for _, c := range comps {
		c = strings.ReplaceAll(c, "-", "_")
		if prefix == "" {
			prefix = c
		} else {
			prefix += "-" + c
		}
		b.WriteString("/" + prefix + ".slice")
	}
	return b.String()
}

// ContainerPath returns the cgroup path the runtime gives a container of
// the pod, below PodPath.
func (n Naming) ContainerPath(qos QOSClass, uid string, c Container) (string, error) {
	pod, err := n.PodPath(qos, uid)
	if err != nil {
		return "", err
	}
	if !plainName(c.ID, false) {
		return "", fmt.Errorf("%w: container id %q", ErrBadID, c.ID)
	}
	var name string
	switch {
	case n.Driver == Cgroupfs && c.Runtime == CRIO:
		name = "crio-" + c.ID
	case n.Driver == Cgroupfs && (c.Runtime == Containerd || c.Runtime == Docker):
		name = c.ID
	case c.Runtime == Containerd:
		name = "cri-containerd-" + c.ID + ".scope"
	case c.Runtime == CRIO:
		name = "crio-" + c.ID + ".scope"
	case c.Runtime == Docker:
		name = "docker-" + c.ID + ".scope"
	default:
		return "", fmt.Errorf("%w: %q", ErrUnknownRuntime, c.Runtime)
	}
	return pod + "/" + name, nil
}

// Finder finds pods' cgroups on a host.
type Finder struct {
	// Layout names the hierarchies to look in (cell.Manager.Layout).
	Layout cell.Layout
	// Namings are the kubelet namings to try, in order; empty means the
	// cgroupfs and the systemd driver at the default root.
	Namings []Naming
}

// Found is a cgroup Find found.
type Found struct {
	// Path is the cgroup path below each hierarchy's root.
	Path string
	// Naming is the naming that produced it.
	Naming Naming
}

// namings returns f's namings or the defaults.
func (f Finder) namings() []Naming {
	if len(f.Namings) > 0 {
		return f.Namings
	}
	return []Naming{{Driver: Cgroupfs}, {Driver: Systemd}}
}

// exists reports whether rel exists in any hierarchy of the layout.
func (f Finder) exists(rel string) bool {
	if f.Layout.Unified != "" && cgroupfs.Exists(filepath.Join(f.Layout.Unified, rel)) {
		return true
	}
	for _, m := range f.Layout.V1 {
		if cgroupfs.Exists(filepath.Join(m, rel)) {
			return true
		}
	}
	return false
}

// Pod finds the pod's cgroup.
func (f Finder) Pod(qos QOSClass, uid string) (Found, error) {
	var tried []string
	for _, n := range f.namings() {
		p, err := n.PodPath(qos, uid)
		if err != nil {
			return Found{}, err
		}
		if f.exists(p) {
			return Found{Path: p, Naming: n}, nil
		}
		tried = append(tried, p)
	}
	return Found{}, fmt.Errorf("%w: pod %s (%s): tried %s in %s", ErrNotFound, uid, qos, strings.Join(tried, ", "), f.Layout)
}

// Container finds a container's cgroup from its status containerID.
func (f Finder) Container(qos QOSClass, uid, containerID string) (Found, error) {
	c, err := ParseContainerID(containerID)
	if err != nil {
		return Found{}, err
	}
	var tried []string
	for _, n := range f.namings() {
		p, err := n.ContainerPath(qos, uid, c)
		if err != nil {
			return Found{}, err
		}
		if f.exists(p) {
			return Found{Path: p, Naming: n}, nil
		}
		tried = append(tried, p)
	}
	return Found{}, fmt.Errorf("%w: container %s of pod %s (%s): tried %s in %s", ErrNotFound, containerID, uid, qos, strings.Join(tried, ", "), f.Layout)
}
