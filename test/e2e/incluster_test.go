package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

const (
	webhookSecret = "cattle-system/cattle-webhook-tls"
	webhookPath   = webhookSecret + "/tls.crt"
)

// kubectlIn runs kubectl against the container's cluster; it returns the output and the error.
func kubectlIn(t *testing.T, sim *harness.Sim, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "kubectl", "kubernetes-client"), append([]string{"--kubeconfig", kubeconfig(t, sim)}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// clusterSecrets lists the secrets of the container's cluster with kubectl: the hash of each
// one's data and type, by namespace/name.
func clusterSecrets(t *testing.T, sim *harness.Sim) map[string]string {
	t.Helper()
	out, err := kubectlIn(t, sim, "get", "secrets", "--all-namespaces", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl get secrets: %v\n%s", err, out)
	}
	var list struct {
		Items []struct {
			Metadata struct{ Namespace, Name string }
			Type     string
			Data     map[string]string
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, s := range list.Items {
		b, _ := json.Marshal([]any{s.Type, s.Data})
		sum := sha256.Sum256(b)
		sums[s.Metadata.Namespace+"/"+s.Metadata.Name] = hex.EncodeToString(sum[:])
	}
	return sums
}

// secretCert reads the certificate of a secret with kubectl.
func secretCert(t *testing.T, sim *harness.Sim, key string) *x509.Certificate {
	t.Helper()
	ns, name, _ := strings.Cut(key, "/")
	out, err := kubectlIn(t, sim, "-n", ns, "get", "secret", name, "-o", "jsonpath={.data.tls\\.crt}")
	if err != nil {
		t.Fatalf("kubectl get secret %s: %v\n%s", key, err, out)
	}
	der, _ := base64.StdEncoding.DecodeString(out)
	block, _ := pem.Decode(der)
	if block == nil {
		t.Fatalf("secret %s holds no PEM certificate", key)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createProbe creates a secret in the cluster: what every change in Rancher does, which the
// 2.6 webhook admits only while its certificate is valid.
func createProbe(t *testing.T, sim *harness.Sim, name string) error {
	t.Helper()
	out, err := kubectlIn(t, sim, "-n", "default", "create", "secret", "generic", name, "--from-literal=a=b")
	if err != nil {
		return &probeError{strings.TrimSpace(out)}
	}
	return nil
}

type probeError struct{ out string }

func (e *probeError) Error() string { return e.out }

// TestExpiredWebhookRenewedByRotation: on a 2.5.7 and a 2.6.0 server (2.6.0 stands for 2.6.0 to
// 2.6.2: rancher-webhook v0.2.0 and v0.2.1 neither renew) whose webhook certificate expired two
// days ago while everything of k3s is a year from expiry, a dry run names the secret and why;
// POST rotate {} renews it by a restart alone, with a verified backup of the old secret (and, on
// 2.6, of the admission configuration that refused every new secret); nothing else of the
// cluster and no key of k3s changes; restore puts the expired secret back.
func TestExpiredWebhookRenewedByRotation(t *testing.T) {
	t.Parallel()
	for _, p := range []harness.Profile{harness.V257, harness.V260} {
		t.Run(p.Rancher, func(t *testing.T) {
			t.Parallel()
			sim := engine.StartSim(t, harness.SimOptions{Profile: p, Env: []string{"SIM_WEBHOOK_DAYS=-2"}})
			engine.WaitLog(t, sim.ID, simReady, time.Minute)
			admission := p.Rancher == harness.V260.Rancher
			if admission {
				// The field's symptom: every change fails on the webhook's expired certificate.
				if err := createProbe(t, sim, "before"); err == nil || !strings.Contains(err.Error(), `failed calling webhook "rancher.cattle.io"`) || !strings.Contains(err.Error(), "x509: certificate has expired") {
					t.Fatalf("creating a secret with the webhook expired: %v", err)
				}
			}
			old := secretCert(t, sim, webhookSecret)
			ca := secretCert(t, sim, "cattle-system/cattle-webhook-ca")
			secrets := clusterSecrets(t, sim)
			tree := copyTree(t, sim.Name)
			keys, certs := fileHashes(t, tree, ".key"), fileHashes(t, tree, ".crt")

			e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.owner-wait", "1m")
			var dry rotation.Report
			if resp := e.api(t, "POST", "/api/v1/containers/"+sim.Name+"/rotate", token, `{"dry_run": true}`, &dry); resp.StatusCode != http.StatusOK {
				t.Fatalf("dry run: %s", resp.Status)
			}
			why := dry.DeleteWhy[webhookSecret]
			if !slices.Equal(dry.DeleteSecrets, []string{webhookSecret}) || !strings.Contains(why, "expired") || !strings.Contains(why, "never renews it") ||
				dry.Strategy != rotation.Restart || len(dry.Plan) != 0 || admission != slices.Equal(dry.DeleteWebhooks, []string{"rancher.cattle.io"}) {
				t.Fatalf("dry run: %+v", dry)
			}
			if got := clusterSecrets(t, sim); !maps.Equal(got, secrets) {
				t.Fatal("the dry run changed the cluster's secrets")
			}

			rep := e.rotate(t, sim.Name, `{}`)
			if rep.State != rotation.Succeeded {
				t.Fatalf("rotation: %+v\n%s", rep, e.log)
			}
			renewed := secretCert(t, sim, webhookSecret)
			after, _ := time.Parse(time.RFC3339, rep.NotAfterAfter[webhookPath])
			if !renewed.NotAfter.After(time.Now().Add(300*day)) || !after.Equal(renewed.NotAfter.UTC().Truncate(time.Second)) || renewed.CheckSignatureFrom(ca) != nil ||
				rep.NotAfterBefore[webhookPath] != old.NotAfter.UTC().Format(time.RFC3339) {
				t.Fatalf("webhook certificate after the rotation: until %s, signed by the kept CA: %v; report %s → %s", renewed.NotAfter, renewed.CheckSignatureFrom(ca), rep.NotAfterBefore[webhookPath], rep.NotAfterAfter[webhookPath])
			}
			if !bytes.Equal(secretCert(t, sim, "cattle-system/cattle-webhook-ca").Raw, ca.Raw) {
				t.Fatal("the webhook's CA changed")
			}
			got := clusterSecrets(t, sim)
			for key, sum := range secrets {
				if key != webhookSecret && got[key] != sum {
					t.Errorf("secret %s changed", key)
				}
			}
			sameFiles(t, "keys", keys, fileHashes(t, copyTree(t, sim.Name), ".key"), releaseOf(t, p).keys())
			sameFiles(t, "certificates", certs, fileHashes(t, copyTree(t, sim.Name), ".crt"), releaseOf(t, p).certFiles()-1)
			var backedUp struct {
				Data map[string][]byte
			}
			json.Unmarshal(backupFile(t, rep.Backup, "cluster/secrets/cattle-system/cattle-webhook-tls.json"), &backedUp)
			if block, _ := pem.Decode(backedUp.Data["tls.crt"]); block == nil || !bytes.Equal(block.Bytes, old.Raw) {
				t.Fatal("the backup does not hold the old webhook certificate")
			}
			if admission {
				backupFile(t, rep.Backup, "cluster/mutatingwebhookconfigurations/rancher.cattle.io.json")
				if out, err := kubectlIn(t, sim, "get", "mutatingwebhookconfigurations", "rancher.cattle.io"); err != nil {
					t.Fatalf("the webhook did not apply its configuration again: %v\n%s", err, out)
				}
				if err := createProbe(t, sim, "after"); err != nil {
					t.Fatalf("creating a secret with the renewed webhook: %v", err)
				}
			}
			if state, _ := inspect(t, sim.ID); state != "running" {
				t.Fatalf("container %s", state)
			}
			mfs := e.scrape(t)
			if v := value(t, mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "secret", "path": webhookPath}); v < float64(time.Now().Add(300*day).Unix()) {
				waitFor(t, "the exporter to show the renewed webhook certificate", func() bool {
					return value(t, e.scrape(t), "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "secret", "path": webhookPath}) > float64(time.Now().Add(300*day).Unix())
				})
			}
			s := series(mfs, "rancher_cert_exporter_rotation_secret_last_timestamp_seconds", map[string]string{"container": sim.Name, "secret": webhookSecret, "result": "succeeded"})
			if len(s) != 1 {
				t.Fatalf("rotation_secret_last_timestamp_seconds: %v", s)
			}

			if p.Rancher != harness.V257.Rancher {
				return
			}
			// restore puts the backup's secret back as it was: the expired certificate again.
			out, code := runCLI(t, "restore", "--rancher.container", sim.Name, "--backup", rep.Backup, "--rotation.backup-dir", e.backups, "--rotation.settle-time", "2s")
			if code != 0 || !strings.Contains(out, `"state": "succeeded"`) || !strings.Contains(out, "cattle-system/cattle-webhook-tls replaced") {
				t.Fatalf("restore: exit %d\n%s", code, out)
			}
			if !bytes.Equal(secretCert(t, sim, webhookSecret).Raw, old.Raw) {
				t.Fatal("restore did not put the old webhook certificate back")
			}
			if out, err := exec.Command("docker", "cp", sim.Name+":/cluster", t.TempDir()).CombinedOutput(); err == nil {
				t.Fatalf("restore copied the backup's cluster objects into the container's files:\n%s", out)
			}
		})
	}
}

// TestWebhookThatDoesNotComeBackRollsBack: a 2.6.0 server whose rancher-webhook does not start
// again after its install (its image missing, rancher#36892): the rotation deletes the expired
// certificate and the admission configuration, the owner never issues them, and the job fails
// saying so, puts both back from the backup and leaves the container running — as it was.
func TestWebhookThatDoesNotComeBackRollsBack(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V260, Env: []string{"SIM_WEBHOOK_DAYS=-2", "SIM_WEBHOOK_DOWN=true"}})
	engine.WaitLog(t, sim.ID, simReady, time.Minute)
	old := secretCert(t, sim, webhookSecret)
	secrets := clusterSecrets(t, sim)
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.owner-wait", "20s")

	rep := e.rotate(t, sim.Name, `{"secrets": ["cattle-system/cattle-webhook-tls"]}`)
	if rep.State != rotation.Failed || !strings.Contains(rep.Error, "cattle-system/cattle-webhook-tls has not been issued again by rancher-webhook") ||
		!strings.Contains(rep.Error, "the webhook has not applied its configuration rancher.cattle.io again") {
		t.Fatalf("rotation: %+v", rep)
	}
	last := rep.Steps[len(rep.Steps)-1]
	if last.Name != rotation.StepRestoreObjs || last.Outcome != rotation.StepOK || !strings.Contains(last.Detail, "cattle-system/cattle-webhook-tls created") ||
		!strings.Contains(last.Detail, "mutatingwebhookconfigurations/rancher.cattle.io created") {
		t.Fatalf("last step %+v", last)
	}
	if !bytes.Equal(secretCert(t, sim, webhookSecret).Raw, old.Raw) {
		t.Fatal("the webhook certificate was not put back")
	}
	if out, err := kubectlIn(t, sim, "get", "mutatingwebhookconfigurations", "rancher.cattle.io"); err != nil {
		t.Fatalf("the admission configuration was not put back: %v\n%s", err, out)
	}
	if got := clusterSecrets(t, sim); !maps.Equal(got, secrets) {
		t.Fatal("the cluster's secrets differ from before the rotation")
	}
	if state, _ := inspect(t, sim.ID); state != "running" {
		t.Fatalf("container %s", state)
	}
	// A secret no owner issues again is refused before anything starts.
	var refused map[string]string
	resp := e.api(t, "POST", "/api/v1/containers/"+sim.Name+"/rotate", token, `{"secrets": ["cattle-system/tls-rancher"]}`, &refused)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(refused["error"], "cattle-system/tls-rancher") || !strings.Contains(refused["error"], "agents") {
		t.Fatalf("rotation of cattle-ca: %s %v", resp.Status, refused)
	}
}

// TestAutoRotationRenewsAnExpiredWebhook: --rotation.auto=on renews a 2.6.0 server's expired
// webhook certificate at once — every change fails meanwhile — with nothing of k3s due.
func TestAutoRotationRenewsAnExpiredWebhook(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V260, Env: []string{"SIM_WEBHOOK_DAYS=-2"}})
	engine.WaitLog(t, sim.ID, simReady, time.Minute)
	keys := fileHashes(t, copyTree(t, sim.Name), ".key")
	window, _ := closedWindow()
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.auto=on", "--rotation.window", window, "--rotation.owner-wait", "1m")
	scrapeEverySecond(t, e)
	got := waitAutoRotation(t, e, sim.Name, 2*time.Minute)
	if got["succeeded"] != 1 || len(got) != 1 {
		t.Fatalf("automatic rotations %v:\n%s", got, e.log)
	}
	if c := secretCert(t, sim, webhookSecret); !c.NotAfter.After(time.Now().Add(300 * day)) {
		t.Fatalf("webhook certificate until %s", c.NotAfter)
	}
	if err := createProbe(t, sim, "after"); err != nil {
		t.Fatalf("creating a secret after the automatic rotation: %v", err)
	}
	sameFiles(t, "keys", keys, fileHashes(t, copyTree(t, sim.Name), ".key"), releaseOf(t, harness.V260).keys())
	if !strings.Contains(e.log.String(), "cattle-system/cattle-webhook-tls expired") {
		t.Errorf("the decision does not name the webhook:\n%s", e.log)
	}
}

// TestOwnerRenewalWindows: the exporter publishes, per release, how long before expiry each
// owner renews its certificate — the webhook's 30 days from 2.5.12/2.6.3, the internal
// listener's 30 before 2.6.7 and 90 after, the UI's 7 — and nothing where nothing renews.
func TestOwnerRenewalWindows(t *testing.T) {
	t.Parallel()
	sims, _ := fleet(t)
	for _, tc := range []struct {
		release               string
		webhook, internal, ui float64 // days; 0: no series
	}{
		{"v2.5.7", 0, 30, 7},
		{"v2.6.0", 0, 30, 7},
		{"v2.7.5", 30, 90, 7},
		{"v2.12.3", 30, 90, 7},
	} {
		sim := sims[tc.release]
		e := startExporter(t, nil, "--rancher.container", sim.Name)
		var mfs = e.scrape(t)
		waitFor(t, "the secrets of "+tc.release, func() bool {
			mfs = e.scrape(t)
			return len(series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "path": webhookPath})) == 1
		})
		for path, want := range map[string]float64{webhookPath: tc.webhook, "cattle-system/tls-rancher-internal/tls.crt": tc.internal, "cattle-system/serving-cert/tls.crt": tc.ui} {
			s := series(mfs, "rancher_cert_exporter_owner_renewal_window_seconds", map[string]string{"container": sim.Name, "source": "secret", "path": path})
			switch {
			case want == 0 && len(s) != 0:
				t.Errorf("%s %s: %v, want no series", tc.release, path, s)
			case want > 0 && (len(s) != 1 || s[0].value != want*86400):
				t.Errorf("%s %s: %v, want %v days", tc.release, path, s, want)
			}
		}
	}
}
