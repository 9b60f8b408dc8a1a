// Command ranchersim behaves like the certificate handling of a single-node Rancher server
// with embedded k3s, for the end-to-end tests of rancher-cert-exporter. It runs as PID 1 of a
// FROM-scratch image; see README.md beside it for its settings.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

const (
	renewNever   = "never"
	renewOnStart = "on-start"
)

type config struct {
	leafDays     int           // validity left on k3s leaves issued at first start; negative: expired
	uiDays       int           // validity left on the UI certificate issued at first start
	uiCheck      time.Duration // how often the UI certificate is checked for renewal
	clusterCheck time.Duration // how often Rancher checks the downstream agents (15 s)
	waitInterval time.Duration // how often a start stuck on its 6443 certificate logs it
	httpsAddr    string
	httpAddr     string
	dataDir      string
	profile
}

// profile is what one Rancher release does with its certificates, set by the image.
type profile struct {
	renewal string        // never (k3s before v0.10) or on-start
	window  time.Duration // on-start: leaves expiring within it are re-issued
	agent   bool          // k3s runs its agent (Rancher 2.5 and later)
	// legacyTLS: management-state/tls left by Rancher 2.0–2.2 on a server upgraded into 2.3.
	legacyTLS     bool
	containerdMB  int    // layer-like files under agent/containerd, as a real server holds
	webhook       string // none (before 2.5), never (renewed: 2.5.0 to 2.5.11) or renew
	webhookDays   int    // the webhook's certificate at the install: days left (SIM_WEBHOOK_DAYS)
	webhookDown   bool   // its pod does not start after the install (SIM_WEBHOOK_DOWN)
	internal      bool   // tls-rancher-internal(-ca), from 2.5.7
	tokenSecrets  int    // service-account token secrets with ca.crt (Kubernetes before 1.24)
	opaqueSecrets int    // helm release secrets, the bulk of a real secret list
	apiStall      time.Duration
}

func loadConfig() (config, error) {
	cfg := config{httpsAddr: ":443", httpAddr: ":80", dataDir: dataDir}
	var err error
	ints := []struct {
		name, def string
		into      *int
	}{
		{"SIM_LEAF_DAYS", "365", &cfg.leafDays},
		{"SIM_UI_DAYS", "365", &cfg.uiDays},
		{"SIM_WEBHOOK_DAYS", env("SIM_LEAF_DAYS", "365"), &cfg.webhookDays},
		{"SIM_CONTAINERD_MB", "0", &cfg.containerdMB},
		{"SIM_TOKEN_SECRETS", "0", &cfg.tokenSecrets},
		{"SIM_OPAQUE_SECRETS", "0", &cfg.opaqueSecrets},
	}
	for _, i := range ints {
		if *i.into, err = strconv.Atoi(env(i.name, i.def)); err != nil {
			return cfg, fmt.Errorf("%s: %w", i.name, err)
		}
	}
	windowDays, err := strconv.Atoi(env("SIM_RENEW_WINDOW_DAYS", "90"))
	if err != nil {
		return cfg, fmt.Errorf("SIM_RENEW_WINDOW_DAYS: %w", err)
	}
	cfg.window = time.Duration(windowDays) * day
	bools := []struct {
		name string
		into *bool
	}{
		{"SIM_AGENT", &cfg.agent}, {"SIM_LEGACY_TLS", &cfg.legacyTLS},
		{"SIM_INTERNAL", &cfg.internal}, {"SIM_WEBHOOK_DOWN", &cfg.webhookDown},
	}
	for _, b := range bools {
		if *b.into, err = strconv.ParseBool(env(b.name, "false")); err != nil {
			return cfg, fmt.Errorf("%s: %w", b.name, err)
		}
	}
	if cfg.uiCheck, err = time.ParseDuration(env("SIM_UI_CHECK_INTERVAL", "5m")); err != nil {
		return cfg, fmt.Errorf("SIM_UI_CHECK_INTERVAL: %w", err)
	}
	if cfg.clusterCheck, err = time.ParseDuration(env("SIM_CLUSTER_CHECK_INTERVAL", "15s")); err != nil {
		return cfg, fmt.Errorf("SIM_CLUSTER_CHECK_INTERVAL: %w", err)
	}
	if cfg.waitInterval, err = time.ParseDuration(env("SIM_WAIT_INTERVAL", "2s")); err != nil {
		return cfg, fmt.Errorf("SIM_WAIT_INTERVAL: %w", err)
	}
	if cfg.apiStall, err = time.ParseDuration(env("SIM_API_STALL", "0s")); err != nil {
		return cfg, fmt.Errorf("SIM_API_STALL: %w", err)
	}
	if cfg.renewal = env("SIM_RENEWAL", renewNever); cfg.renewal != renewNever && cfg.renewal != renewOnStart {
		return cfg, fmt.Errorf("SIM_RENEWAL=%q: want %s or %s", cfg.renewal, renewNever, renewOnStart)
	}
	if cfg.webhook = env("SIM_WEBHOOK", webhookNone); cfg.webhook != webhookNone && cfg.webhook != webhookNever && cfg.webhook != webhookRenews {
		return cfg, fmt.Errorf("SIM_WEBHOOK=%q: want %s, %s or %s", cfg.webhook, webhookNone, webhookNever, webhookRenews)
	}
	return cfg, nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

type logger struct{}

func (logger) line(level, format string, args ...any) {
	fmt.Printf("%s %s %s\n", time.Now().UTC().Format(time.RFC3339), level, fmt.Sprintf(format, args...))
}
func (l *logger) info(format string, args ...any) { l.line("INFO", format, args...) }
func (l *logger) rancher(format string, args ...any) {
	fmt.Printf("%s [INFO] %s\n", time.Now().UTC().Format("2006/01/02 15:04:05"), fmt.Sprintf(format, args...))
}

func main() {
	log := &logger{}
	if len(os.Args) > 1 && os.Args[1] == "cluster" { // a command run in the container
		if err := clusterCommand(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ranchersim cluster:", err)
			os.Exit(2)
		}
		return
	}
	cfg, err := loadConfig()
	if err != nil {
		log.line("FATA", "%v", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.line("FATA", "%v", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, log *logger) error {
	now := time.Now()
	rel := releaseOf(os.Getenv("CATTLE_K3S_VERSION"))
	log.info("Starting k3s %s (simulated, renewal %s)", os.Getenv("CATTLE_K3S_VERSION"), cfg.renewal)
	// Rancher uses the kubeconfig of the previous start as soon as it exists.
	previousKubeconfig, _ := os.ReadFile(kubeconfigFile)
	k := &k3s{dir: filepath.Join(cfg.dataDir, "k3s"), cfg: cfg, rel: rel, now: now, log: log,
		store:    &secretStore{objectStore: objectStore[secret]{file: filepath.Join(cfg.dataDir, secretStoreFile)}},
		webhooks: &webhookStore{file: filepath.Join(cfg.dataDir, webhookStoreFile)},
		services: &serviceStore{objectStore: objectStore[service]{file: filepath.Join(cfg.dataDir, serviceStoreFile)}},
		clusters: clusterStore{file: filepath.Join(cfg.dataDir, clusterStoreFile)}}
	k.store.admit = func(s secret, stored map[string]secret) error { return k.admit(s, stored, time.Now()) }
	for _, step := range []func() error{k.ensureCAs, k.cleanUp, k.ensureLeaves, k.ensurePasswd, k.ensureLegacyTLS, k.ensureContainerdState,
		k.installServing, k.installSecrets, k.startWebhook, k.ensureServices, k.ensureInternalCert, k.ensureLocalCluster} {
		if err := step(); errors.Is(err, errRefused) {
			k.log.line("ERRO", "%v", err) // Rancher goes on without it, and tries again at its next start
		} else if err != nil {
			return err
		}
	}
	listeners := &listenerStore{file: filepath.Join(cfg.dataDir, listenerStoreFile)}
	if k.fresh { // the install wrote these when it ran, before anything expired
		if rel.listenerConfig {
			if _, err := newListener(listeners, k.cas["server/tls/server-ca"], log, k.notAfter); err != nil {
				return err
			}
		}
		if err := k.writeKubeconfig(); err != nil {
			return err
		}
	}
	if file, cert := k.expiredLeaf(); cert != nil {
		return fmt.Errorf("starting tls server: %s: x509: certificate has expired or is not yet valid: current time %s is after %s",
			file, now.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	var l *listener
	var stuck string
	var err error
	if rel.listenerConfig {
		l, err = newListener(listeners, k.cas["server/tls/server-ca"], log, time.Time{})
	} else {
		stuck, err = k.checkDynamicCert()
	}
	if err != nil {
		return err
	}
	// kube-apiserver runs from here on, also when Rancher cannot reach it.
	a, err := k.newAPI(l)
	if err != nil {
		return err
	}
	apiServer := a.server(":6443")
	apiListener, err := net.Listen("tcp", apiServer.Addr) // bound before anything dials it
	if err != nil {
		return err
	}
	go func() {
		if err := apiServer.ServeTLS(apiListener, "", ""); err != nil && err != http.ErrServerClosed {
			log.line("ERRO", "kube-apiserver: %v", err)
		}
	}()
	defer apiServer.Close()
	log.info("Running kube-apiserver (simulated) on :6443")
	k.applyWebhookConfigLater(ctx.Done())
	served, err := a.served(rel.kubeconfigHost)
	if err != nil {
		return err
	}
	if k.listenerTrusted(served) {
		if err := k.writeKubeconfig(); err != nil {
			return err
		}
	}
	if stuck != "" {
		return waitForever(ctx, cfg, log, stuck)
	}
	if rel.listenerConfig {
		kubeconfig := previousKubeconfig
		if kubeconfig == nil {
			kubeconfig, _ = os.ReadFile(kubeconfigFile)
		}
		if err := rancherConnects(kubeconfig, now); err != nil {
			return err
		}
	}
	log.info("k3s is up")

	ssl, err := readSSLConfig(os.Args[1:])
	if err != nil {
		return err
	}
	u, err := newUI(cfg, log, k.store, ssl, now)
	if err != nil {
		return err
	}
	if err := k.installWebhookConfig(); err != nil {
		return err
	}
	var all map[string]setting
	if servesSettings() {
		if all, err = initSettings(cfg.dataDir, ssl.cacerts(string(encodeCerts(u.ca.cert)))); err != nil {
			return err
		}
		a.settings.all.Store(&all)
	}
	checksum := checksumOf(all["cacerts"].Value)
	if err := k.checkAgents(checksum, time.Now()); err != nil {
		return err
	}
	go func() { // Rancher's controllers go on checking the agents' tunnels
		t := time.NewTicker(cfg.clusterCheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if err := k.checkAgents(checksum, now); err != nil {
					log.line("ERRO", "check cluster agents: %v", err)
				}
			}
		}
	}()
	return serve(ctx, cfg, log, u, all)
}

// waitForever is a start that cannot reach its own API server on 6443 because of the serving
// certificate (signed by another CA, or expired): Rancher retries forever and never becomes
// ready.
func waitForever(ctx context.Context, cfg config, log *logger, why string) error {
	t := time.NewTicker(cfg.waitInterval)
	defer t.Stop()
	for {
		log.line("ERRO", "Waiting for server to become available: Get https://localhost:6443/version?timeout=30s: x509: %s", why)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func serve(ctx context.Context, cfg config, log *logger, u *ui, settings map[string]setting) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "pong") })
	if settings != nil && servesCACerts() {
		mux.HandleFunc("GET /cacerts", serveCACerts(settings))
	}
	https := &http.Server{Addr: cfg.httpsAddr, Handler: mux, TLSConfig: &tls.Config{GetCertificate: u.getCertificate}}
	plain := &http.Server{Addr: cfg.httpAddr, Handler: mux}
	errc := make(chan error, 2)
	go func() { errc <- https.ListenAndServeTLS("", "") }()
	go func() { errc <- plain.ListenAndServe() }()
	log.rancher("Listening on :443 and :80; Rancher is ready")

	t := time.NewTicker(cfg.uiCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			https.Close()
			plain.Close()
			return nil
		case err := <-errc:
			return err
		case now := <-t.C:
			if err := u.renewIfDue(now); err != nil {
				log.line("ERRO", "renew UI certificate: %v", err)
			}
		}
	}
}
