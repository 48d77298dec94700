package podcgroup_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxwellhq/maxwell/internal/cell"
	"github.com/maxwellhq/maxwell/internal/cell/celltest"
	"github.com/maxwellhq/maxwell/internal/cgroupfs"
	"github.com/maxwellhq/maxwell/internal/kube/podcgroup"
)

const (
	uid = "5f9a2c1e-7b3d-4e8f-9a01-23456789abcd"
	cid = "4c3f1b2a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b"
)

// TestPaths: the names the kubelet and the runtimes give, as they appear
// on nodes (kubelet pkg/kubelet/cm naming; containerd, CRI-O and
// cri-dockerd scope names).
func TestPaths(t *testing.T) {
	fs := podcgroup.Naming{Driver: podcgroup.Cgroupfs}
	sd := podcgroup.Naming{Driver: podcgroup.Systemd}
	u := strings.ReplaceAll(uid, "-", "_")
	for _, tc := range []struct {
		n    podcgroup.Naming
		qos  podcgroup.QOSClass
		cid  string
		want string
	}{
		{fs, podcgroup.Guaranteed, "", "/kubepods/pod" + uid},
		{fs, podcgroup.Burstable, "", "/kubepods/burstable/pod" + uid},
		{fs, podcgroup.BestEffort, "", "/kubepods/besteffort/pod" + uid},
		{fs, podcgroup.Burstable, "containerd://" + cid, "/kubepods/burstable/pod" + uid + "/" + cid},
		{fs, podcgroup.Burstable, "docker://" + cid, "/kubepods/burstable/pod" + uid + "/" + cid},
		{fs, podcgroup.Burstable, "cri-o://" + cid, "/kubepods/burstable/pod" + uid + "/crio-" + cid},
		{sd, podcgroup.Guaranteed, "", "/kubepods.slice/kubepods-pod" + u + ".slice"},
		{sd, podcgroup.Burstable, "", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u + ".slice"},
		{sd, podcgroup.BestEffort, "containerd://" + cid, "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + u + ".slice/cri-containerd-" + cid + ".scope"},
		{sd, podcgroup.Burstable, "cri-o://" + cid, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u + ".slice/crio-" + cid + ".scope"},
		{sd, podcgroup.Guaranteed, "docker://" + cid, "/kubepods.slice/kubepods-pod" + u + ".slice/docker-" + cid + ".scope"},
		{podcgroup.Naming{Driver: podcgroup.Cgroupfs, Root: "/kube"}, podcgroup.Burstable, "", "/kube/kubepods/burstable/pod" + uid},
		{podcgroup.Naming{Driver: podcgroup.Systemd, Root: "/my-root"}, podcgroup.Burstable, "", "/my_root.slice/my_root-kubepods.slice/my_root-kubepods-burstable.slice/my_root-kubepods-burstable-pod" + u + ".slice"},
	} {
		var got string
		var err error
		if tc.cid == "" {
			got, err = tc.n.PodPath(tc.qos, uid)
		} else {
			var c podcgroup.Container
			if c, err = podcgroup.ParseContainerID(tc.cid); err == nil {
				got, err = tc.n.ContainerPath(tc.qos, uid, c)
			}
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v %s %q: %q, %v; want %q", tc.n, tc.qos, tc.cid, got, err, tc.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	fs := podcgroup.Naming{Driver: podcgroup.Cgroupfs}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"uid with slash", second(fs.PodPath(podcgroup.Burstable, "../../etc")), podcgroup.ErrBadID},
		{"empty uid", second(fs.PodPath(podcgroup.Burstable, "")), podcgroup.ErrBadID},
		{"unknown qos", second(fs.PodPath("Premium", uid)), podcgroup.ErrBadID},
		{"unknown driver", second(podcgroup.Naming{Driver: "cgroupfs2"}.PodPath(podcgroup.Burstable, uid)), podcgroup.ErrBadID},
		{"bad root", second(podcgroup.Naming{Driver: podcgroup.Cgroupfs, Root: "/a b"}.PodPath(podcgroup.Burstable, uid)), podcgroup.ErrBadID},
		{"no scheme", second(podcgroup.ParseContainerID(cid)), podcgroup.ErrBadID},
		{"unknown runtime", second(podcgroup.ParseContainerID("rkt://" + cid)), podcgroup.ErrUnknownRuntime},
		{"id with slash", second(podcgroup.ParseContainerID("containerd://a/../b")), podcgroup.ErrBadID},
		{"empty id", second(podcgroup.ParseContainerID("containerd://")), podcgroup.ErrBadID},
		{"not on this host", second(podcgroup.Finder{Layout: cell.Layout{Unified: t.TempDir()}}.Pod(podcgroup.Burstable, uid)), podcgroup.ErrNotFound},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, tc.err, tc.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestFixture finds a pod and its containers in a fixture tree laid out
// like a systemd-driver cgroup v2 node.
func TestFixture(t *testing.T) {
	root := t.TempDir()
	u := strings.ReplaceAll(uid, "-", "_")
	pod := "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u + ".slice"
	for _, d := range []string{pod + "/cri-containerd-" + cid + ".scope", pod + "/cri-containerd-sandbox.scope"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := podcgroup.Finder{Layout: cell.Layout{Kind: cell.LayoutV2, Unified: root}}
	got, err := f.Pod(podcgroup.Burstable, uid)
	if err != nil || got.Path != "/"+pod || got.Naming.Driver != podcgroup.Systemd {
		t.Errorf("Pod = %+v, %v; want /%s by the systemd driver", got, err, pod)
	}
	c, err := f.Container(podcgroup.Burstable, uid, "containerd://"+cid)
	if err != nil || c.Path != "/"+pod+"/cri-containerd-"+cid+".scope" {
		t.Errorf("Container = %+v, %v", c, err)
	}
	if _, err := f.Container(podcgroup.Burstable, uid, "cri-o://"+cid); !errors.Is(err, podcgroup.ErrNotFound) {
		t.Errorf("a CRI-O id on a containerd node = %v; want ErrNotFound", err)
	}
}

// TestRealLayouts lays out a pod as the kubelet does, with each cgroup
// driver, on this host's real cgroups in three layouts: cgroup v1 (the
// host's v1 hierarchies alone), hybrid (v1 plus cgroup2, this host as it
// is) and pure cgroup v2 (the host's cgroup2 hierarchy alone), with real
// processes in the containers' cgroups, and finds the pod's and each
// container's cgroup from the pod's UID, QoS class and container IDs.
func TestRealLayouts(t *testing.T) {
	host := celltest.HostLayout(t)
	v2, _ := celltest.V2Layout(t)
	v1 := host
	v1.Unified = ""
	v1.Kind = cell.LayoutV1
	layouts := map[string]cell.Layout{"v1": v1, "hybrid": host, "v2": v2}
	if len(host.V1) == 0 {
		delete(layouts, "v1")
		delete(layouts, "hybrid")
		t.Logf("no v1 hierarchies on this host (%s): testing pure v2 only", host)
	}
	for lname, l := range layouts {
		for _, drv := range []podcgroup.Driver{podcgroup.Cgroupfs, podcgroup.Systemd} {
			for _, rt := range []podcgroup.Runtime{podcgroup.Containerd, podcgroup.CRIO, podcgroup.Docker} {
				t.Run(fmt.Sprintf("%s/%s/%s", lname, drv, rt), func(t *testing.T) {
					// A kubelet --cgroup-root of the test's own, so that
					// nothing else on the host is touched.
					n := podcgroup.Naming{Driver: drv, Root: "/" + celltest.UniqueName("mxkube")}
					for _, qos := range []podcgroup.QOSClass{podcgroup.Guaranteed, podcgroup.Burstable, podcgroup.BestEffort} {
						podPath, err := n.PodPath(qos, uid)
						if err != nil {
							t.Fatal(err)
						}
						c := podcgroup.Container{Runtime: rt, ID: cid}
						cPath, err := n.ContainerPath(qos, uid, c)
						if err != nil {
							t.Fatal(err)
						}
						tr := celltest.NewTree(t, l, cPath)
						pid := tr.Start("sleep", "1000").Process.Pid
						f := podcgroup.Finder{Layout: l, Namings: []podcgroup.Naming{
							{Driver: podcgroup.Cgroupfs, Root: n.Root}, {Driver: podcgroup.Systemd, Root: n.Root},
						}}
						pod, err := f.Pod(qos, uid)
						if err != nil || pod.Path != podPath || pod.Naming != n {
							t.Fatalf("Pod(%s) = %+v, %v; want %s by %+v", qos, pod, err, podPath, n)
						}
						got, err := f.Container(qos, uid, string(rt)+"://"+cid)
						if err != nil || got.Path != cPath {
							t.Fatalf("Container(%s) = %+v, %v; want %s", qos, got, err, cPath)
						}
						// The found path is where the process really is.
						for _, d := range tr.Dirs() {
							if !cgroupfs.HasProcess(d, pid) {
								t.Errorf("pid %d not in %s", pid, d)
							}
						}
						if err := tr.Remove(t.Context()); err != nil {
							t.Fatal(err)
						}
					}
				})
			}
		}
	}
}
