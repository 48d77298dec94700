// Package kubetest runs a real Kubernetes control plane for tests, in the
// way controller-runtime's envtest does: etcd and kube-apiserver (and, when
// asked, kube-scheduler) on 127.0.0.1 ports of their own, in a temporary
// directory, with token authentication, RBAC and service-account tokens.
// There is no kubelet: Kubelet plays the kubelet's part for the tests.
//
// The binaries are built by .ci/kube-binaries (kube-apiserver and
// kube-scheduler KubeVersion, etcd EtcdVersion) into BinDir. Where they are
// missing, Start skips the test saying which binary is missing, where it
// was looked for, and the command that builds it.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The versions .ci/kube-binaries builds.
const (
	KubeVersion = "v1.37.2"
	EtcdVersion = "v3.7.0"
)

// BinEnv names the environment variable that overrides BinDir.
const BinEnv = "MAXWELL_KUBE_BIN"

// ErrMissingBinary means a control-plane binary has not been built.
var ErrMissingBinary = errors.New("kubernetes test binary missing")

// RequireEnv names the environment variable that makes a missing binary
// fail a test instead of skipping it: CI sets it, so that the Kubernetes
// tests cannot quietly not run there.
const RequireEnv = "MAXWELL_KUBE_REQUIRED"

// SkipIfMissing skips the test, with the reason, when err says a binary
// is missing, or fails it where RequireEnv is set.
func SkipIfMissing(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrMissingBinary) {
		return
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%v (and %s is set: these tests must run here)", err, RequireEnv)
	}
	t.Skip(err)
}

// BinDir returns where the control-plane binaries are: $MAXWELL_KUBE_BIN,
// else $HOME/.cache/maxwell/kube/<KubeVersion>, as .ci/kube-binaries
// builds them.
func BinDir() string {
	if d := os.Getenv(BinEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "maxwell", "kube", KubeVersion)
}

// binary returns the path of a control-plane binary, or an error wrapping
// ErrMissingBinary that says how to build it.
func binary(name string) (string, error) {
	p := filepath.Join(BinDir(), name)
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w: %s not found at %s (build it with .ci/kube-binaries, which builds kube-apiserver and kube-scheduler %s and etcd %s from tools/kube; %s=DIR puts them elsewhere)",
			ErrMissingBinary, name, p, KubeVersion, EtcdVersion, BinEnv)
	}
	return p, nil
}

// Options configure a cluster.
type Options struct {
	// Scheduler also starts kube-scheduler.
	Scheduler bool
	// Ready bounds the wait for each component to be ready; 0 means 90 s.
	Ready time.Duration
}

// Cluster is a running control plane.
type Cluster struct {
	// Admin is a config for a member of system:masters.
	Admin *rest.Config
	// Client is a clientset on Admin.
	Client kubernetes.Interface

	dir     string
	opts    Options
	caPEM   []byte
	apiPort int
	apiArgs []string
	etcd    *proc
	api     *proc
	sched   *proc
	mu      sync.Mutex
	closed  bool
}

// proc is one running component.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Start starts a cluster for the test and stops it at its end. It skips
// the test, with the reason, when a binary is missing (see the package
// doc; SkipIfMissing). It needs no root.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*readyTimeout(opts))
	defer cancel()
	c, err := New(ctx, opts)
	SkipIfMissing(t, err)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("kubetest: %v", err)
		}
	})
	return c
}

func readyTimeout(o Options) time.Duration {
	if o.Ready > 0 {
		return o.Ready
	}
	return 90 * time.Second
}

// New starts a cluster; Close stops it. The error wraps ErrMissingBinary
// when a binary has not been built.
func New(ctx context.Context, opts Options) (c *Cluster, err error) {
	names := []string{"etcd", "kube-apiserver"}
	if opts.Scheduler {
		names = append(names, "kube-scheduler")
	}
	bins := map[string]string{}
	for _, n := range names {
		if bins[n], err = binary(n); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "maxwell-kubetest-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{dir: dir, opts: opts}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()

	// etcd.
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	c.etcd, err = c.run(bins["etcd"], "etcd",
		"--name=kubetest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--unsafe-no-fsync", "--log-level=warn")
	if err != nil {
		return nil, err
	}
	if err := c.waitHTTP(ctx, c.etcd, etcdURL+"/health", nil); err != nil {
		return nil, err
	}

	// Keys and tokens: a CA and a serving certificate for 127.0.0.1, an
	// ECDSA key for service-account tokens, static tokens for the admin
	// and the scheduler.
	ca, caKey, err := newCA()
	if err != nil {
		return nil, err
	}
	c.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	certPEM, keyPEM, err := newServing(ca, caKey)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	adminToken, schedToken := randToken(), randToken()
	files := map[string][]byte{
		"ca.crt":      c.caPEM,
		"serving.crt": certPEM,
		"serving.key": keyPEM,
		"sa.key":      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}),
		"sa.pub":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
		"tokens.csv": fmt.Appendf(nil, "%s,admin,admin-uid,system:masters\n%s,system:kube-scheduler,kube-scheduler-uid\n",
			adminToken, schedToken),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			return nil, err
		}
	}

	// kube-apiserver.
	c.apiPort = ports[2]
	host := "https://127.0.0.1:" + strconv.Itoa(c.apiPort)
	c.apiArgs = []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(c.apiPort),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--tls-cert-file=" + filepath.Join(dir, "serving.crt"), "--tls-private-key-file=" + filepath.Join(dir, "serving.key"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		// No controller manager makes the default service accounts the
		// ServiceAccount admission plugin insists on.
		"--disable-admission-plugins=ServiceAccount",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}
	c.Admin = &rest.Config{
		Host: host, BearerToken: adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM},
		QPS:             100, Burst: 200,
	}
	if err := c.StartAPIServer(ctx); err != nil {
		return nil, err
	}
	if c.Client, err = kubernetes.NewForConfig(c.Admin); err != nil {
		return nil, err
	}

	if opts.Scheduler {
		kubeconfig := filepath.Join(dir, "scheduler.kubeconfig")
		if err := os.WriteFile(kubeconfig, []byte(kubeconfigFor(host, c.caPEM, schedToken)), 0o600); err != nil {
			return nil, err
		}
		sp, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		c.sched, err = c.run(bins["kube-scheduler"], "kube-scheduler",
			"--kubeconfig="+kubeconfig, "--leader-elect=false",
			"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(sp[0]),
			"--cert-dir="+filepath.Join(dir, "scheduler-certs"))
		if err != nil {
			return nil, err
		}
		if err := c.waitHTTP(ctx, c.sched, fmt.Sprintf("https://127.0.0.1:%d/healthz", sp[0]), &tls.Config{InsecureSkipVerify: true}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on
// the same port, with the same keys and etcd, and waits for /readyz.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	bin, err := binary("kube-apiserver")
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.api != nil
	c.mu.Unlock()
	if running {
		return errors.New("kubetest: kube-apiserver is already running")
	}
	p, err := c.run(bin, "kube-apiserver", c.apiArgs...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.api = p
	c.mu.Unlock()
	tlsc := &tls.Config{RootCAs: x509.NewCertPool()}
	tlsc.RootCAs.AppendCertsFromPEM(c.caPEM)
	return c.waitHTTP(ctx, p, c.Admin.Host+"/readyz", tlsc)
}

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL) and waits for
// it to exit: the API server is unreachable until StartAPIServer.
func (c *Cluster) StopAPIServer() {
	c.mu.Lock()
	p := c.api
	c.api = nil
	c.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// run starts a component with its output in a log file.
func (c *Cluster) run(bin, name string, args ...string) (*proc, error) {
	log := filepath.Join(c.dir, name+".log")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Setpgid: a ^C to the test is not theirs; Pdeathsig: a test binary
	// killed by its timeout leaves none of them behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("kubetest: starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM, waits up to 10 s, then SIGKILLs.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the end of the component's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// waitHTTP polls url until it answers 200, the component exits, or the
// ready timeout (or ctx) ends.
func (c *Cluster) waitHTTP(ctx context.Context, p *proc, url string, tlsc *tls.Config) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout(c.opts))
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsc}}
	defer hc.CloseIdleConnections()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if c.Admin != nil && strings.HasPrefix(url, c.Admin.Host) {
			req.Header.Set("Authorization", "Bearer "+c.Admin.BearerToken)
		}
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("kubetest: %s exited before it was ready; its log ends:\n%s", p.name, p.tail())
		case <-ctx.Done():
			return fmt.Errorf("kubetest: %s not ready at %s (%v; last answer: %s); its log ends:\n%s", p.name, url, ctx.Err(), last, p.tail())
		case <-tick.C:
		}
	}
}

// Close stops every component and removes the directory. It is
// idempotent.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	for _, p := range []*proc{c.sched, c.api, c.etcd} {
		if p != nil {
			p.stop()
		}
	}
	c.mu.Lock()
	c.api = nil
	c.mu.Unlock()
	return os.RemoveAll(c.dir)
}

// ServiceAccountConfig returns a config that authenticates as the service
// account namespace/name (created if missing) with a token from the
// TokenRequest API: it can do only what RBAC grants that account.
func (c *Cluster) ServiceAccountConfig(ctx context.Context, namespace, name string) (*rest.Config, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := c.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("kubetest: creating service account %s/%s: %w", namespace, name, err)
	}
	exp := int64(3600)
	tr, err := c.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("kubetest: token for %s/%s: %w", namespace, name, err)
	}
	return &rest.Config{
		Host: c.Admin.Host, BearerToken: tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM},
		QPS:             50, Burst: 100,
	}, nil
}

// Kubeconfig returns a kubeconfig file's text for cfg's host and token.
func (c *Cluster) Kubeconfig(cfg *rest.Config) string {
	return kubeconfigFor(cfg.Host, c.caPEM, cfg.BearerToken)
}

func kubeconfigFor(host string, caPEM []byte, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: kubetest
  user:
    token: %s
contexts:
- name: kubetest
  context: {cluster: kubetest, user: kubetest}
current-context: kubetest
`, host, base64.StdEncoding.EncodeToString(caPEM), token)
}

// freePorts returns n distinct ports free on 127.0.0.1 now.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newCA makes a self-signed ECDSA CA.
func newCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetest-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// newServing makes a serving certificate for 127.0.0.1 and localhost.
func newServing(ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}
