package rotation

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// fixtureTree is the k3s v0.8.1 tree as the container paths it would have.
func fixtureTree(t *testing.T) tree {
	t.Helper()
	tr := tree{}
	for _, sub := range []struct{ dir, into string }{
		{"../testdata/k3s-v0.8.1-tls/server/tls", rancher.ServerTLSDir},
		{"../testdata/k3s-v0.8.1-tls/agent", rancher.AgentDir},
	} {
		files, _ := filepath.Glob(filepath.Join(sub.dir, "*.crt"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			cert, err := certs.Parse(f, data)
			if err != nil {
				t.Fatal(err)
			}
			tr[sub.into+"/"+filepath.Base(f)] = cert
		}
	}
	return tr
}

func TestPlans(t *testing.T) {
	tr := fixtureTree(t)
	tr[rancher.ServerTLSDir+"/dynamic-cert.json"] = tr[rancher.ServerTLSDir+"/serving-kube-apiserver.crt"]

	leaf := plan(Leaf, tr)
	all := plan(AllCerts, tr)
	if len(plan(Restart, tr)) != 0 {
		t.Fatal("restart plans removals")
	}
	for _, p := range append(append([]string{}, leaf...), all...) {
		if strings.HasSuffix(p, ".key") {
			t.Fatalf("plan removes a key: %s", p)
		}
	}
	has := func(files []string, p string) bool {
		for _, f := range files {
			if f == p {
				return true
			}
		}
		return false
	}
	tls := rancher.ServerTLSDir + "/"
	for _, p := range []string{"client-admin.crt", "serving-kube-apiserver.crt", "dynamic-cert.json"} {
		if !has(leaf, tls+p) {
			t.Errorf("leaf plan lacks %s", p)
		}
	}
	for _, p := range []string{tls + "server-ca.crt", tls + "client-ca.crt", rancher.AgentDir + "/server-ca.crt"} {
		if has(leaf, p) {
			t.Errorf("leaf plan removes CA %s", p)
		}
		if !has(all, p) {
			t.Errorf("all-certs plan keeps CA %s", p)
		}
	}
	if has(all, tls+"dynamic-cert.json") {
		t.Error("all-certs removes the listener cache: the field workaround removes *.crt only")
	}
	if len(leaf) != 11 { // 7 server leaves, 3 agent leaves, the listener cache
		t.Errorf("leaf plan has %d files: %v", len(leaf), leaf)
	}
}

func TestCheckRemovableRefusesKeysAndOutsidePaths(t *testing.T) {
	for _, p := range []string{
		rancher.ServerTLSDir + "/client-admin.key",
		rancher.ServerTLSDir + "/service.key",
		"/etc/passwd",
		rancher.ServerTLSDir + "/../../../../etc/x.crt",
		rancher.ServerTLSDir + "/*.crt/../a.crt",
		rancher.ServerTLSDir,
		"/var/lib/rancher/k3s/server/db/state.db",
	} {
		if err := checkRemovable([]string{p}); err == nil {
			t.Errorf("%s accepted", p)
		}
	}
	if err := checkRemovable([]string{rancher.ServerTLSDir + "/etcd/client.crt", rancher.ServerTLSDir + "/dynamic-cert.json"}); err != nil {
		t.Fatal(err)
	}
}

func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter, IsCA: isCA, BasicConstraintsValid: true}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestCheckTree(t *testing.T) {
	now := time.Now()
	ca, caKey := newCA(t, "k3s-server-ca@1", now)
	other, otherKey := newCA(t, "k3s-server-ca@2", now)
	oldLeaf, _ := newCert(t, "kube-apiserver", ca, caKey, false, now.Add(24*time.Hour))
	newLeaf, _ := newCert(t, "kube-apiserver", ca, caKey, false, now.Add(365*24*time.Hour))
	foreign, _ := newCert(t, "kube-apiserver", other, otherKey, false, now.Add(365*24*time.Hour))
	caPath, leafPath, dyn := rancher.ServerTLSDir+"/server-ca.crt", rancher.ServerTLSDir+"/serving-kube-apiserver.crt", rancher.ServerTLSDir+"/dynamic-cert.json"
	before := tree{caPath: ca, leafPath: oldLeaf, dyn: oldLeaf}

	tests := []struct {
		name  string
		after tree
		s     Strategy
		want  string
	}{
		{"renewed", tree{caPath: ca, leafPath: newLeaf, dyn: newLeaf}, Leaf, ""},
		{"not renewed", tree{caPath: ca, leafPath: oldLeaf, dyn: newLeaf}, Leaf, "still expires"},
		{"restart did not renew", tree{caPath: ca, leafPath: oldLeaf, dyn: newLeaf}, Restart, "a strategy that removes it"},
		{"leaf from another CA", tree{caPath: ca, leafPath: foreign, dyn: newLeaf}, Leaf, "not signed by any current CA"},
		{"listener cache from the old CA", tree{caPath: other, leafPath: foreign, dyn: newLeaf}, AllCerts, "not signed by the current server-ca"},
		{"leaf missing", tree{caPath: ca, dyn: newLeaf}, Leaf, "is missing"},
		{"listener cache reloaded unchanged while due", tree{caPath: ca, leafPath: newLeaf, dyn: oldLeaf}, Leaf, "dynamic-cert.json still expires"},
	}
	v23 := rancher.ProfileOf(rancher.Versions{Rancher: "v2.3.1", K3s: "v0.8.0"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkTree(before, tt.after, tt.s, v23, now)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestCheckTreeRestartWindow: a restart must renew what is due and what the release renews on
// start, nothing else.
func TestCheckTreeRestartWindow(t *testing.T) {
	now := time.Now()
	ca, caKey := newCA(t, "k3s-client-ca@1", now)
	leafPath := rancher.ServerTLSDir + "/client-admin.crt"
	at100, _ := newCert(t, "system:admin", ca, caKey, false, now.Add(100*24*time.Hour))
	before := tree{rancher.ServerTLSDir + "/client-ca.crt": ca, leafPath: at100}
	v27 := rancher.ProfileOf(rancher.Versions{Rancher: "v2.7.5", K3s: "v1.26.4+k3s1"})
	v212 := rancher.ProfileOf(rancher.Versions{Rancher: "v2.12.3", K3s: "v1.33.1+k3s1"})
	if err := checkTree(before, before, Restart, v27, now); err != nil {
		t.Fatalf("100 days left is outside 2.7's 90-day window, nothing to renew: %v", err)
	}
	if err := checkTree(before, before, Restart, v212, now); err == nil || !strings.Contains(err.Error(), "a strategy that removes it") {
		t.Fatalf("100 days left is inside 2.12's 120-day window and was not renewed: %v", err)
	}
}

func TestChooseAuto(t *testing.T) {
	now := time.Now()
	ca, caKey := newCA(t, "k3s-server-ca@1", now)
	tls := rancher.ServerTLSDir + "/"
	treeWith := func(leafDays, cacheDays int) tree {
		leaf, _ := newCert(t, "kube-apiserver", ca, caKey, false, now.Add(time.Duration(leafDays)*24*time.Hour))
		cache, _ := newCert(t, "k3s", ca, caKey, false, now.Add(time.Duration(cacheDays)*24*time.Hour))
		return tree{tls + "server-ca.crt": ca, tls + "serving-kube-apiserver.crt": leaf, tls + "dynamic-cert.json": cache}
	}
	profile := func(rancherV, k3s string) rancher.Profile {
		return rancher.ProfileOf(rancher.Versions{Rancher: rancherV, K3s: k3s})
	}
	for _, tt := range []struct {
		name         string
		p            rancher.Profile
		t            tree
		want         Strategy
		reasonSaying string
	}{
		{"2.3 never renews, and its 6443 certificate only for a new CA", profile("v2.3.1", "v0.8.0"), treeWith(3, 3), AllCerts, "ListenerConfig kube-system/tls-config"},
		{"unknown version", profile("", ""), treeWith(3, 3), Leaf, "unknown"},
		{"2.7 inside the window", profile("v2.7.5", "v1.26.4+k3s1"), treeWith(20, 20), Restart, "within 90-day"},
		{"2.7 expired: a start renews that too", profile("v2.7.5", "v1.26.4+k3s1"), treeWith(-2, -2), Restart, "all 2 due"},
		{"2.7 far from the window", profile("v2.7.5", "v1.26.4+k3s1"), treeWith(200, 200), Leaf, "restart would renew nothing"},
		{"2.12 at 100 days: 120-day window", profile("v2.12.3", "v1.33.1+k3s1"), treeWith(100, 100), Restart, "120-day"},
		{"2.4 serving certificate due", profile("v2.4.8", "v1.17.2+k3s1"), treeWith(20, 20), Leaf, "dynamic-cert.json expires within 30 days"},
		{"2.4 leaves due, serving not", profile("v2.4.8", "v1.17.2+k3s1"), treeWith(20, 200), Restart, "all 1 due"},
		{"2.4 serving certificate expired", profile("v2.4.8", "v1.17.2+k3s1"), treeWith(300, -2), Leaf, "dynamic-cert.json expires within 30 days"},
	} {
		got, reason := choose(Auto, tt.p, tt.t, now, false)
		if got != tt.want || !strings.Contains(reason, tt.reasonSaying) {
			t.Errorf("%s: %s (%s), want %s saying %q", tt.name, got, reason, tt.want, tt.reasonSaying)
		}
	}
	if got, _ := choose(AllCerts, profile("v2.7.5", ""), treeWith(20, 20), now, true); got != AllCerts {
		t.Error("an explicit strategy was replaced")
	}
	// An expired webhook certificate and nothing of k3s due: the restart alone, on a release that
	// never renews k3s's certificates too; with a k3s leaf due, the k3s plan stands.
	for _, p := range []rancher.Profile{profile("v2.5.7", "v1.18.8+k3s1"), profile("v2.6.0", "v1.21.3+k3s1")} {
		if got, reason := choose(Auto, p, treeWith(200, 200), now, true); got != Restart || !strings.Contains(reason, "no k3s certificate is due") {
			t.Errorf("%s, secrets only: %s (%s)", p.Rancher, got, reason)
		}
	}
	if got, _ := choose(Auto, profile("v2.4.8", "v1.17.2+k3s1"), treeWith(300, 20), now, true); got != Leaf {
		t.Errorf("2.4.8 with its serving certificate due and secrets: %s, want leaf", got)
	}
}

func newCA(t *testing.T, cn string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	return newCert(t, cn, nil, nil, true, now.Add(3650*24*time.Hour))
}

func TestReadBackupDetectsTampering(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		file := filepath.Join(dir, name)
		f, _ := os.Create(file)
		gz := gzip.NewWriter(f)
		tw := tar.NewWriter(gz)
		tw.WriteHeader(&tar.Header{Name: "var/lib/rancher/k3s/server/tls/a.crt", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
		tw.Write([]byte(content))
		tw.Close()
		gz.Close()
		f.Close()
		return file
	}
	good, _ := readBackup(write("good.tar.gz", "original"))
	tampered, _ := readBackup(write("bad.tar.gz", "changed!"))
	if err := sameManifest(good, good); err != nil {
		t.Fatal(err)
	}
	if err := sameManifest(good, tampered); err == nil {
		t.Fatal("a changed entry went unnoticed")
	}
	if err := sameManifest(good, manifest{}); err == nil {
		t.Fatal("a missing entry went unnoticed")
	}
	os.WriteFile(filepath.Join(dir, "trunc.tar.gz"), []byte{0x1f, 0x8b, 8, 0}, 0o600)
	if _, err := readBackup(filepath.Join(dir, "trunc.tar.gz")); err == nil {
		t.Fatal("a truncated archive read fine")
	}
}

// watchedFake is the exporter's view: the fake's container, by name and ID.
type watchedFake struct{}

func (watchedFake) Watched(context.Context) []rancher.Container {
	return []rancher.Container{{ID: fakeID, Name: "rancher"}}
}

func tokenFile(t *testing.T, token string) (*TokenFile, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tf, loose, err := OpenToken(file)
	if err != nil || loose {
		t.Fatalf("token file: %v, loose %v", err, loose)
	}
	return tf, file
}

// testToken is a token of 256 bits, as openssl rand -hex 32 makes.
const testToken = "6f1c0e8b2d9a4f7e3b5c8d1a0e9f2b4c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"

func TestAuthorization(t *testing.T) {
	tf, file := tokenFile(t, testToken)
	api := NewAPI(New(nil, Config{BackupDir: t.TempDir()}, slog.New(slog.DiscardHandler), nil), NewJobs(), tf, watchedFake{})
	now := time.Now()
	api.limits.now = func() time.Time { return now }
	mux := http.NewServeMux()
	api.Register(mux)
	do := func(from, method, path, auth string) int {
		req := httptest.NewRequest(method, path, nil)
		req.RemoteAddr = from + ":40000"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("401 without WWW-Authenticate: %v", rec.Header())
		}
		return rec.Code
	}
	const operator, stranger = "10.0.0.1", "10.0.0.66"
	if code := do(operator, "GET", "/api/v1/containers/x/rotate", "Bearer "+testToken); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET rotate: %d", code)
	}
	for _, auth := range []string{"Bearer " + testToken, "bearer " + testToken, "BEARER " + testToken} { // the scheme in any case (RFC 9110)
		if code := do(operator, "GET", "/api/v1/rotations/nope", auth); code != http.StatusNotFound {
			t.Fatalf("%q: %d, want through to 404", auth, code)
		}
	}
	for _, auth := range []string{"", "Bearer wrong", "Basic czNjcmV0", "Bearer " + testToken + " ", "Bearer" + testToken} {
		if code := do(stranger, "GET", "/api/v1/rotations/nope", auth); code != http.StatusUnauthorized {
			t.Fatalf("auth %q: %d", auth, code)
		}
	}
	// Five failures: the stranger's wrong tokens now get 429, and so would anyone's from its
	// address; the right token still passes from there, and from anywhere else.
	if code := do(stranger, "GET", "/api/v1/rotations/nope", "Bearer wrong"); code != http.StatusTooManyRequests {
		t.Fatalf("a wrong token after 5 failures: %d, want 429", code)
	}
	for i := 0; i < 20; i++ {
		do(stranger, "GET", "/api/v1/rotations/nope", "Bearer wrong")
		if code := do(stranger, "GET", "/api/v1/rotations/nope", "Bearer "+testToken); code != http.StatusNotFound {
			t.Fatalf("the right token from the hammering address (one reverse proxy for all): %d, want through", code)
		}
		if code := do(operator, "GET", "/api/v1/rotations/nope", "Bearer "+testToken); code != http.StatusNotFound {
			t.Fatalf("the operator while a stranger hammers: %d", code)
		}
	}
	now = now.Add(1100 * time.Millisecond)
	if code := do(stranger, "GET", "/api/v1/rotations/nope", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Fatalf("a second later a wrong token: %d, want 401 again", code)
	}

	// Replacing the file revokes the old token at once, even when the replacement keeps the
	// size, the times and the inode (cp -p, rsync -a, install -p over the same file).
	before, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Repeat("a", len(testToken))
	f, err := os.OpenFile(file, os.O_WRONLY, 0) // in place: the same inode
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(next), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(file, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(file); after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) {
		t.Fatalf("the test did not keep size, time and inode: %v %v", before, after)
	}
	if code := do(operator, "GET", "/api/v1/rotations/nope", "Bearer "+testToken); code != http.StatusUnauthorized {
		t.Fatalf("the old token after the file was rewritten with the same size, times and inode: %d", code)
	}
	if code := do(operator, "GET", "/api/v1/rotations/nope", "Bearer "+next); code != http.StatusNotFound {
		t.Fatalf("the new token: %d", code)
	}
}

func TestTokenFileLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	os.WriteFile(big, bytes.Repeat([]byte("x"), maxTokenSize+1), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	weak := filepath.Join(dir, "weak")
	os.WriteFile(weak, []byte("e2e-rotation-token\n"), 0o600) // 18 characters of base64url: 108 bits
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		big: "more than 4096 bytes", empty: "is empty", filepath.Join(dir, "none"): "no such file",
		weak: "holds at most 108 bits, under 128", fifo: "not a regular file", "/dev/zero": "not a regular file", dir: "not a regular file",
	} {
		done := make(chan error, 1)
		go func() {
			_, _, err := OpenToken(file)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want %q", file, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: OpenToken still waits after 5 s", file)
		}
	}
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, []byte(testToken), 0o644)
	if _, l, err := OpenToken(loose); err != nil || !l {
		t.Errorf("a token file readable by others: loose %v, %v", l, err)
	}
}

func TestTokenBits(t *testing.T) {
	for token, want := range map[string]int{
		strings.Repeat("7", 39):        129, // digits: 3.32 bits each
		strings.Repeat("f", 32):        128, // openssl rand -hex 16
		strings.Repeat("F", 31):        124,
		"q2vL8xZ0bN4mP7rT1wY5uA==":     144, // openssl rand -base64 16
		strings.Repeat("z", 25):        129, // lower-case letters and digits: 5.17 bits
		"correct horse battery staple": 183, // printable ASCII: 6.57 bits each
	} {
		if got := TokenBits(token); got != want {
			t.Errorf("TokenBits(%q) = %d, want %d", token, got, want)
		}
	}
}

// TestStrictRequests: a body the API does not understand exactly is refused, naming what is
// wrong; nothing starts. A mistyped dry run must never rotate.
func TestStrictRequests(t *testing.T) {
	f := newFakeEngine(t, 10)
	tf, _ := tokenFile(t, testToken)
	jobs := NewJobs()
	api := NewAPI(New(f, stallingIn(f, testConfig(t.TempDir())), slog.New(slog.DiscardHandler), nil), jobs, tf, watchedFake{})
	mux := http.NewServeMux()
	api.Register(mux)
	post := func(name, body string) (int, string) {
		req := httptest.NewRequest("POST", "/api/v1/containers/"+name+"/rotate", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var answer struct{ Error string }
		json.Unmarshal(rec.Body.Bytes(), &answer)
		return rec.Code, answer.Error
	}
	for _, tt := range []struct{ body, says string }{
		{`{"strategy":"leaf","dryRun":true}`, `unknown object member name "dryRun"`},
		{`{"strategy":"leaf","dry_run":false,"dry_run":true}`, `duplicate object member name "dry_run"`},
		{`{"dry_run":"yes"}`, `/dry_run`},
		{`{"dry_run":1}`, `/dry_run`},
		{`{"strategy":"leaf"} {"dry_run":true}`, `after top-level value`},
		{`{"Strategy":"leaf"}`, `unknown object member name "Strategy"`},
		{`[]`, `unmarshal JSON array`}, // the library words it "cannot" or "unable to" at random
		{`{"strategy":"all"}`, `unknown strategy "all"`},
		{strings.Repeat(" ", maxBody+1), `more than 65536 bytes`},
		// null is what clients send for an unset option: never the zero value (a rotation).
		{`{"dry_run":null}`, `/dry_run is null`},
		{`{"strategy":null,"dry_run":true}`, `/strategy is null`},
		{`null`, `the body is null: it must be a JSON object`},
		{" null ", `the body is null`},
	} {
		if code, body := post("rancher", tt.body); code != http.StatusBadRequest || !strings.Contains(body, tt.says) {
			t.Errorf("%.60s: %d %s, want 400 saying %s", tt.body, code, body, tt.says)
		}
	}
	for _, name := range []string{"other", "..%2Fcontainers%2Francher", fakeID[:6]} {
		if code, body := post(name, `{"dry_run":true}`); code != http.StatusNotFound {
			t.Errorf("container %q: %d %s, want 404: only watched containers", name, code, body)
		}
	}
	if len(jobs.All()) != 0 || len(f.events) != 0 {
		t.Fatalf("a refused request started %d jobs, made engine calls %v", len(jobs.All()), f.events)
	}
	if code, body := post("rancher", `{"strategy":"leaf","dry_run":true}`); code != http.StatusOK {
		t.Fatalf("a right request: %d %s", code, body)
	}
}

// TestDryRunWhileARotationRuns: a dry run of a container another job is changing answers 409
// with that job's Location, as a real request does, not a plan of a container half rotated.
func TestDryRunWhileARotationRuns(t *testing.T) {
	f := newFakeEngine(t, 10)
	tf, _ := tokenFile(t, testToken)
	rot := New(f, stallingIn(f, testConfig(t.TempDir())), slog.New(slog.DiscardHandler), nil)
	mux := http.NewServeMux()
	NewAPI(rot, NewJobs(), tf, watchedFake{}).Register(mux)
	c, err := rot.Lookup(context.Background(), fakeID)
	if err != nil {
		t.Fatal(err)
	}
	running, err := rot.NewRotation(c, Request{Strategy: Leaf}, TriggerCLI) // holds the lock, as a CLI rotation does
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"dry_run":true}`, `{}`} {
		req := httptest.NewRequest("POST", "/api/v1/containers/rancher/rotate", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if want := "/api/v1/rotations/" + running.Report().ID; rec.Code != http.StatusConflict || rec.Header().Get("Location") != want {
			t.Errorf("%s while a rotation runs: %d, Location %q, want 409 and %s: %s", body, rec.Code, rec.Header().Get("Location"), want, rec.Body)
		}
	}
	running.Run(context.Background(), nil)
	req := httptest.NewRequest("POST", "/api/v1/containers/rancher/rotate", strings.NewReader(`{"dry_run":true}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("a dry run once the rotation ended: %d %s", rec.Code, rec.Body)
	}
}

// TestDryRunsLeaveNothing: a dry run through the API answers with its plan at once, and leaves
// no journal, lock or directory behind, nor a job to look up; the container is only read.
func TestDryRunsLeaveNothing(t *testing.T) {
	f := newFakeEngine(t, 10)
	dir := filepath.Join(t.TempDir(), "backups")
	tf, _ := tokenFile(t, testToken)
	jobs := NewJobs()
	rot := New(f, stallingIn(f, testConfig(dir)), slog.New(slog.DiscardHandler), nil)
	mux := http.NewServeMux()
	NewAPI(rot, jobs, tf, watchedFake{}).Register(mux)
	do := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	rec := do("POST", "/api/v1/containers/rancher/rotate", `{"strategy":"leaf","dry_run":true}`)
	var rep Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("dry run: %d %s", rec.Code, rec.Body)
	}
	if rep.State != Succeeded || !rep.DryRun || rep.Strategy != Leaf || len(rep.Plan) != 3 || len(rep.Steps) != 1 || rep.Steps[0].Name != "preflight" {
		t.Fatalf("report %+v", rep)
	}
	if code := do("GET", "/api/v1/rotations/"+rep.ID, "").Code; code != http.StatusNotFound {
		t.Errorf("GET of the dry run's id: %d, want 404", code)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the backup directory: %v, want none", err)
	}
	if len(jobs.All()) != 0 {
		t.Errorf("%d jobs registered", len(jobs.All()))
	}
	if !slices.Contains(f.events, "inspect") {
		t.Errorf("engine calls %v: the container was not read", f.events)
	}
	for _, e := range f.events {
		if !strings.HasPrefix(e, "inspect") && !strings.HasPrefix(e, "copy-from") && !strings.HasPrefix(e, "api") {
			t.Errorf("engine call %s in a dry run", e)
		}
	}
}

// TestPlansLeaveWhatTheReleaseDoesNotUse: on a 2.11.3 server upgraded from 2.10, the server-side
// kube-proxy and k3s-controller certificates are leftovers its k3s neither writes nor renews: no
// plan removes them, no check requires their renewal, and a restart that did not renew them
// succeeds.
func TestPlansLeaveWhatTheReleaseDoesNotUse(t *testing.T) {
	p := rancher.ProfileOf(rancher.Versions{Rancher: "v2.11.3", K3s: "v1.32.1+k3s1"})
	tls := rancher.ServerTLSDir + "/"
	now := time.Now()
	ca, caKey := newCA(t, "k3s-client-ca@1", now)
	tr := tree{tls + "client-ca.crt": ca}
	for _, f := range []string{"client-admin.crt", "client-kube-proxy.crt", "client-k3s-controller.crt"} {
		tr[tls+f], _ = newCert(t, f, ca, caKey, false, now.Add(20*24*time.Hour))
	}
	inUse := tr.inUse(p)
	for _, s := range []Strategy{Leaf, AllCerts} {
		for _, f := range plan(s, inUse) {
			if strings.Contains(f, "kube-proxy") || strings.Contains(f, "k3s-controller") {
				t.Errorf("%s plan removes the leftover %s", s, f)
			}
		}
	}
	renewedAdmin := tree{}
	for f, c := range tr {
		renewedAdmin[f] = c
	}
	renewedAdmin[tls+"client-admin.crt"], _ = newCert(t, "client-admin", ca, caKey, false, now.Add(365*24*time.Hour))
	if err := checkTree(inUse, renewedAdmin.inUse(p), Restart, p, now); err != nil {
		t.Fatalf("a restart that renewed every file in use failed on the leftovers: %v", err)
	}
	if err := checkTree(tr, renewedAdmin, Restart, p, now); err == nil {
		t.Fatal("without the release's file set the leftovers would have failed the check: the test proves nothing")
	}
}

// TestClusterEntriesStayOutOfTheContainer: the objects of the cluster a backup holds are named
// apart from the container's files, read back as the objects they are, and left out of what is
// copied into the container.
func TestClusterEntriesStayOutOfTheContainer(t *testing.T) {
	for _, o := range []cluster.Object{cluster.Secret("cattle-system", "cattle-webhook-tls"), cluster.MutatingWebhook("rancher.cattle.io")} {
		if got, ok := objectOf(entryOf(o)); !ok || got != o {
			t.Errorf("%s: entry %s reads back as %v %v", o, entryOf(o), got, ok)
		}
	}
	for _, name := range []string{"var/lib/rancher/k3s/server/tls/server-ca.crt", "cluster/secrets/x.json", "cluster/other/a/b.json"} {
		if o, ok := objectOf(name); ok {
			t.Errorf("%s read as %v", name, o)
		}
	}
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, name := range []string{"var/lib/rancher/k3s/server/tls/a.crt", entryOf(cluster.Secret("ns", "n")), "var/lib/rancher/k3s/server/tls/b.key"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
	}
	tw.Close()
	var out bytes.Buffer
	if err := filesOnly(&in, &out); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&out)
	for hdr, err := tr.Next(); err == nil; hdr, err = tr.Next() {
		names = append(names, hdr.Name)
	}
	if strings.Join(names, " ") != "var/lib/rancher/k3s/server/tls/a.crt var/lib/rancher/k3s/server/tls/b.key" {
		t.Fatalf("copied %v", names)
	}
}
