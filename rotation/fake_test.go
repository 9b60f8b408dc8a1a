package rotation

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// fakeEngine is one Rancher v2.3 container as the job sees it through the engine: its files,
// its state, and a k3s that, when it starts, mints missing CAs from their kept keys, re-issues
// the leaves that are missing or whose CA is new, and mints its 6443 listener certificate
// again for a new server CA; Rancher's first start after a new CA fails on "signed by unknown
// authority", after which a restart policy starts it again. Every call is an event; a test can
// make the n-th event fail once, or make the process "die" there (a panic the test recovers:
// no deferred rollback of the job runs).
type fakeEngine struct {
	t *testing.T

	mu        sync.Mutex
	files     map[string][]byte
	state     container.ContainerState
	restarts  int
	startedAt time.Time
	helpers   map[string]map[string]string // helper ID → labels
	nextID    int
	// policy: the container has a restart policy (unless-stopped, as a real Rancher server).
	policy bool
	exitAt time.Time // when a failed start ends
	// failsAt is how long after its start a failing start ends (50 ms unless set): 0 ends it
	// before the job's next look, as on a loaded host.
	failsAt  *time.Duration
	starts   int
	log      []logLine
	listener *x509.Certificate // the 6443 listener's certificate

	events []string
	// dieAt: die before the first event of the run with this index (-1: never). A run is
	// events of one name in a row — a polling loop, whose length depends on the clock, is one
	// point — so that the same index is the same point in every run of a job.
	dieAt  int
	failOn string // the first event of this name fails
	// before runs once before the first event of its name, outside the fake's lock.
	before map[string]func()
}

const fakeID = "f00dfeed"

var errFake = errors.New("injected engine failure")

type died struct{ event string }

type logLine struct {
	at   time.Time
	text string
}

func newFakeEngine(t *testing.T, leafDays int) *fakeEngine {
	f := &fakeEngine{t: t, files: map[string][]byte{}, state: container.StateRestarting, helpers: map[string]map[string]string{}, dieAt: -1}
	now := time.Now()
	tls := rancher.ServerTLSDir + "/"
	caKey := f.key(tls + "server-ca.key")
	ca := f.cert(tls+"server-ca.crt", "k3s-server-ca", nil, caKey, caKey, true, now.Add(3650*24*time.Hour))
	f.cert(tls+"client-ca.crt", "k3s-client-ca", nil, f.key(tls+"client-ca.key"), f.key(tls+"client-ca.key"), true, now.Add(3650*24*time.Hour))
	notAfter := now.Add(time.Duration(leafDays) * 24 * time.Hour)
	for _, leaf := range []string{"client-admin", "serving-kube-apiserver", "client-kube-proxy"} {
		f.cert(tls+leaf+".crt", leaf, ca, f.key(tls+leaf+".key"), caKey, false, notAfter)
	}
	f.listener = f.mint(ca, caKey, notAfter)
	f.startedAt = now.Add(-time.Hour)
	return f
}

func (f *fakeEngine) restartPolicy() container.RestartPolicy {
	if f.policy {
		return container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	}
	return container.RestartPolicy{Name: container.RestartPolicyDisabled}
}

// mint makes a listener certificate of the CA, as the 6443 listener does.
func (f *fakeEngine) mint(ca *x509.Certificate, caKey *ecdsa.PrivateKey, notAfter time.Time) *x509.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "cattle"}, DNSNames: []string{"localhost"},
		NotBefore: ca.NotBefore, NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		f.t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// logf appends a line to the container's log.
func (f *fakeEngine) logf(format string, args ...any) {
	f.log = append(f.log, logLine{time.Now(), fmt.Sprintf(format, args...)})
}

// key returns the key at p, creating it the first time.
func (f *fakeEngine) key(p string) *ecdsa.PrivateKey {
	if data, ok := f.files[p]; ok {
		block, _ := pem.Decode(data)
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			f.t.Fatal(err)
		}
		return k
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(k)
	f.files[p] = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	return k
}

func (f *fakeEngine) cert(p, cn string, parent *x509.Certificate, key, signer *ecdsa.PrivateKey, isCA bool, notAfter time.Time) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: notAfter, IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		f.t.Fatal(err)
	}
	f.files[p] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	c, _ := x509.ParseCertificate(der)
	return c
}

// event records a call, and dies or fails when asked to. Called with f.mu held.
func (f *fakeEngine) event(name string) error {
	if fn := f.before[name]; fn != nil {
		delete(f.before, name)
		f.mu.Unlock()
		fn()
		f.mu.Lock()
	}
	newRun := len(f.events) == 0 || f.events[len(f.events)-1] != name
	f.events = append(f.events, name)
	if newRun && len(runsOf(f.events))-1 == f.dieAt {
		f.dieAt = -1
		panic(died{name})
	}
	if name == f.failOn {
		f.failOn = ""
		return fmt.Errorf("%s: %w", name, errFake)
	}
	return nil
}

// runsOf collapses events of one name in a row into one.
func runsOf(events []string) []string {
	var runs []string
	for i, e := range events {
		if i == 0 || events[i-1] != e {
			runs = append(runs, e)
		}
	}
	return runs
}

// point is a stall point of the job, as an event.
func (f *fakeEngine) point(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.event("at-" + name)
}

func (f *fakeEngine) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{}, nil
}

func (f *fakeEngine) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.event("inspect"); err != nil {
		return client.ContainerInspectResult{}, err
	}
	f.settle()
	if id != fakeID && id != "rancher" {
		return client.ContainerInspectResult{}, errdefs.ErrNotFound
	}
	return client.ContainerInspectResult{Container: container.InspectResponse{
		ID: fakeID, Name: "/rancher", Image: "sha256:0123", RestartCount: f.restarts,
		State:      &container.State{Status: f.state, StartedAt: f.startedAt.Format(time.RFC3339Nano)},
		HostConfig: &container.HostConfig{RestartPolicy: f.restartPolicy()},
		Config:     &container.Config{Image: "rancher/rancher:v2.3.2", Env: []string{"CATTLE_SERVER_VERSION=v2.3.2", "CATTLE_K3S_VERSION=v0.8.0"}},
	}}, nil
}

// CopyFromContainer streams a directory or file as the archive endpoint does: entry names start
// with the base name of the path. Reads are not events: the tree is read concurrently.
func (f *fakeEngine) CopyFromContainer(_ context.Context, _ string, opts client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src := opts.SourcePath
	var names []string
	for p := range f.files {
		if p == src || strings.HasPrefix(p, src+"/") {
			names = append(names, p)
		}
	}
	if len(names) == 0 {
		return client.CopyFromContainerResult{}, errdefs.ErrNotFound
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range names {
		name := path.Base(src) + strings.TrimPrefix(p, src)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(f.files[p])), Typeflag: tar.TypeReg})
		tw.Write(f.files[p])
	}
	tw.Close()
	return client.CopyFromContainerResult{Content: io.NopCloser(&buf)}, nil
}

func (f *fakeEngine) Stop(_ context.Context, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.event("stop"); err != nil {
		return err
	}
	f.state, f.exitAt = container.StateExited, time.Time{}
	return nil
}

// Start runs k3s and Rancher.
func (f *fakeEngine) Start(_ context.Context, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.event("start"); err != nil {
		return err
	}
	if f.state == container.StateRunning {
		return nil
	}
	f.restarts = 0 // docker start resets the count of the restart policy
	if f.boot() {
		after := 50 * time.Millisecond // Rancher ends a moment later
		if f.failsAt != nil {
			after = *f.failsAt
		}
		f.exitAt = time.Now().Add(after)
	}
	return nil
}

// settle lets a start that failed end: the container exits, and its restart policy, if it has
// one, starts it again — with the kubeconfig k3s rewrote, so that start works. Called with
// f.mu held, by every inspection.
func (f *fakeEngine) settle() {
	if f.exitAt.IsZero() || time.Now().Before(f.exitAt) {
		return
	}
	f.exitAt = time.Time{}
	f.state = container.StateExited
	if f.policy {
		f.restarts++
		f.boot()
	}
}

// boot is one start: CAs, leaves, listener, and Rancher, which fails when the CA is new. It
// tells whether the server CA was new.
func (f *fakeEngine) boot() bool {
	time.Sleep(2 * time.Millisecond) // starts are distinguishable in time
	f.startedAt, f.state = time.Now(), container.StateRunning
	f.starts++
	tls := rancher.ServerTLSDir + "/"
	caKeys := map[string]*ecdsa.PrivateKey{}
	cas := map[string]*x509.Certificate{}
	newCA := false
	for _, name := range []string{"server-ca", "client-ca"} {
		caKeys[name] = f.key(tls + name + ".key")
		if f.files[tls+name+".crt"] == nil {
			f.cert(tls+name+".crt", fmt.Sprintf("k3s-%s@%d", name, time.Now().UnixNano()), nil, caKeys[name], caKeys[name], true, time.Now().Add(3650*24*time.Hour))
			newCA = newCA || name == "server-ca"
		}
		block, _ := pem.Decode(f.files[tls+name+".crt"])
		cas[name], _ = x509.ParseCertificate(block.Bytes)
	}
	for p := range f.files {
		crt := strings.TrimSuffix(p, ".key") + ".crt"
		if !strings.HasSuffix(p, ".key") || strings.Contains(p, "-ca.") {
			continue
		}
		if block, _ := pem.Decode(f.files[crt]); block != nil {
			if c, _ := x509.ParseCertificate(block.Bytes); c != nil && signedByAny(c, []*x509.Certificate{cas["server-ca"]}) {
				continue
			}
		}
		f.cert(crt, path.Base(crt), cas["server-ca"], f.key(p), caKeys["server-ca"], false, time.Now().Add(365*24*time.Hour))
	}
	if !signedByAny(f.listener, []*x509.Certificate{cas["server-ca"]}) {
		f.listener = f.mint(cas["server-ca"], caKeys["server-ca"], time.Now().Add(365*24*time.Hour))
	}
	if newCA {
		f.logf("FATA Get https://localhost:6443/api: x509: certificate signed by unknown authority")
		return true
	}
	f.logf("I k3s is up")
	return false
}

// API is the container's API server: the 6443 listener, verified as a client verifies it.
func (f *fakeEngine) API(_ context.Context, _ string, acceptExpired bool) (ContainerAPI, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.event("api"); err != nil {
		return nil, err
	}
	block, _ := pem.Decode(f.files[rancher.ServerCAFile])
	ca, _ := x509.ParseCertificate(block.Bytes)
	return fakeAPI{listener: f.listener, ca: ca, up: f.state == container.StateRunning, acceptExpired: acceptExpired}, nil
}

type fakeAPI struct {
	listener, ca      *x509.Certificate
	up, acceptExpired bool
}

// The fake's 2.3 cluster holds none of Rancher's in-cluster certificates.
func (a fakeAPI) Get(context.Context, cluster.Object) ([]byte, bool, error) { return nil, false, nil }
func (a fakeAPI) Delete(context.Context, cluster.Object) (bool, error)      { return false, nil }
func (a fakeAPI) Put(_ context.Context, o cluster.Object, _ []byte) (string, error) {
	return "", fmt.Errorf("no %s in the fake", o)
}

func (a fakeAPI) ServingCertificate(context.Context) (*x509.Certificate, error) {
	roots := x509.NewCertPool()
	roots.AddCert(a.ca)
	switch {
	case !a.up:
		return nil, errors.New("connection refused")
	case !signedByAny(a.listener, []*x509.Certificate{a.ca}):
		return nil, errors.New("x509: certificate signed by unknown authority")
	case !a.acceptExpired && time.Now().After(a.listener.NotAfter):
		return nil, errors.New("x509: certificate has expired or is not yet valid")
	}
	return a.listener, nil
}

func (f *fakeEngine) RunHelper(_ context.Context, c rancher.Container, jobID string, cmd []string) error {
	id, err := f.createHelper(c, jobID)
	if err != nil {
		return err
	}
	f.point("remove")
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.event("helper-run"); err != nil {
		return err
	}
	if len(cmd) < 3 || strings.Join(cmd[:3], " ") != "rm -f --" {
		f.t.Fatalf("helper runs %v", cmd)
	}
	for _, p := range cmd[3:] {
		delete(f.files, p)
	}
	delete(f.helpers, id)
	return nil
}

func (f *fakeEngine) createHelper(c rancher.Container, jobID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.event("helper-create"); err != nil {
		return "", err
	}
	f.nextID++
	id := fmt.Sprint("helper", f.nextID)
	f.helpers[id] = map[string]string{rancher.RoleLabel: rancher.RoleHelper, rancher.LabelJob: jobID, rancher.LabelContainer: c.ID}
	return id, nil
}

func (f *fakeEngine) RemoveHelpers(_ context.Context, keep func(map[string]string) bool) ([]map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.event("remove-helpers"); err != nil {
		return nil, err
	}
	var removed []map[string]string
	for id, labels := range f.helpers {
		if !keep(labels) {
			delete(f.helpers, id)
			removed = append(removed, labels)
		}
	}
	return removed, nil
}

func (f *fakeEngine) CopyTo(_ context.Context, _ string, r io.Reader) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.event("copy-to"); err != nil {
		return err
	}
	return rancher.EachEntry(r, func(hdr *tar.Header, content io.Reader) error {
		if hdr.Typeflag == tar.TypeReg {
			data, _ := io.ReadAll(content)
			f.files["/"+hdr.Name] = data
		}
		return nil
	})
}

func (f *fakeEngine) Logs(_ context.Context, _ string, since time.Time) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.event("logs"); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range f.log {
		if !l.at.Before(since) {
			b.WriteString(l.text + "\n")
		}
	}
	return b.String(), nil
}

// snapshot copies the files.
func (f *fakeEngine) snapshot() map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]byte{}
	for p, d := range f.files {
		out[p] = d
	}
	return out
}
