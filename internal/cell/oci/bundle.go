package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cpuset"
)

// containerCaps are the capabilities a container process keeps: Docker's
// default set minus those an agent never needs (no raw sockets, no
// mknod).
var containerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// runtimeSpec returns the OCI runtime configuration of a cell: spec's
// command, as spec.Credential's user if set, in rootfs (read-only), in new PID, mount, IPC, UTS (and, unless
// hostNet, network) namespaces, with its cgroups at /<parent>/<name>.
func runtimeSpec(spec cell.Spec, rootfs, parent string, mounts []Mount, hostNet bool) (*specs.Spec, error) {
	env := spec.Env
	if env == nil {
		env = DefaultEnv()
	}
	cwd := spec.Dir
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return nil, fmt.Errorf("working directory %q: must be absolute inside the container", cwd)
	}
	if spec.Path == "" {
		return nil, fmt.Errorf("no command")
	}
	noExecDev := []string{"nosuid", "noexec", "nodev"}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args: append([]string{spec.Path}, spec.Args...),
			Env:  env,
			Cwd:  cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  containerCaps,
				Effective: containerCaps,
				Permitted: containerCaps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: spec.Name,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: append(noExecDev, "mode=1777", "size=65536k")},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: append(noExecDev, "mode=1777", "size=65536k")},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: append(noExecDev, "ro")},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/" + parent + "/" + spec.Name,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
	if c := spec.Credential; c != nil {
		s.Process.User = specs.User{UID: c.Uid, GID: c.Gid, AdditionalGids: slices.Clone(c.Groups)}
		if c.Uid != 0 {
			// A user's process keeps no capability, as outside a
			// container.
			s.Process.Capabilities = &specs.LinuxCapabilities{}
		}
	}
	if !hostNet {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	for _, mt := range mounts {
		opts := []string{"rbind", "nosuid", "nodev"}
		if mt.ReadOnly {
			opts = append(opts, "ro")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: mt.Destination, Type: "bind", Source: mt.Source, Options: opts})
	}
	if len(spec.CPUs) > 0 {
		s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: cpuset.Format(spec.CPUs)}
	}
	return s, nil
}

// writeBundle writes s as dir/config.json.
func writeBundle(dir string, s *specs.Spec) error {
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600)
}
