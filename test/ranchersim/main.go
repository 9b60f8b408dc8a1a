// Command ranchersim behaves like the certificate handling of a single-node Rancher server
// with embedded k3s, for the end-to-end tests of rancher-cert-exporter. It runs as PID 1 of a
// FROM-scratch image; see README.md beside it for its settings.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/signal"
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
	renewal      string        // never (Rancher v2.3 / k3s v0.8) or on-start (newer k3s)
	uiCheck      time.Duration // how often the UI certificate is checked for renewal
	waitInterval time.Duration // how often a start stuck on an untrusted cache logs it
	httpsAddr    string
	httpAddr     string
	k3sDir       string
}

func loadConfig() (config, error) {
	cfg := config{renewal: env("SIM_RENEWAL", renewNever), httpsAddr: ":443", httpAddr: ":80", k3sDir: k3sDir}
	var err error
	if cfg.leafDays, err = strconv.Atoi(env("SIM_LEAF_DAYS", "365")); err != nil {
		return cfg, fmt.Errorf("SIM_LEAF_DAYS: %w", err)
	}
	if cfg.uiDays, err = strconv.Atoi(env("SIM_UI_DAYS", "365")); err != nil {
		return cfg, fmt.Errorf("SIM_UI_DAYS: %w", err)
	}
	if cfg.uiCheck, err = time.ParseDuration(env("SIM_UI_CHECK_INTERVAL", "5m")); err != nil {
		return cfg, fmt.Errorf("SIM_UI_CHECK_INTERVAL: %w", err)
	}
	if cfg.waitInterval, err = time.ParseDuration(env("SIM_WAIT_INTERVAL", "2s")); err != nil {
		return cfg, fmt.Errorf("SIM_WAIT_INTERVAL: %w", err)
	}
	if cfg.renewal != renewNever && cfg.renewal != renewOnStart {
		return cfg, fmt.Errorf("SIM_RENEWAL=%q: want %s or %s", cfg.renewal, renewNever, renewOnStart)
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
	log.info("Starting k3s (simulated, renewal %s)", cfg.renewal)
	k := &k3s{dir: cfg.k3sDir, cfg: cfg, now: now, log: log}
	if err := k.ensureCAs(); err != nil {
		return err
	}
	if err := k.ensureLeaves(); err != nil {
		return err
	}
	if file, cert := k.expiredLeaf(); cert != nil {
		return fmt.Errorf("starting tls server: %s: x509: certificate has expired or is not yet valid: current time %s is after %s",
			file, now.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	trusted, err := k.checkDynamicCert()
	if err != nil {
		return err
	}
	if !trusted {
		return waitForever(ctx, cfg, log)
	}
	log.info("Running kube-apiserver (simulated); k3s is up")

	u, err := newUI(cfg, log, now)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, u)
}

// waitForever is the start that a listener cache from another CA causes: Rancher retries
// forever and never becomes ready. The cache has been rewritten, so the next start is fine.
func waitForever(ctx context.Context, cfg config, log *logger) error {
	t := time.NewTicker(cfg.waitInterval)
	defer t.Stop()
	for {
		log.line("ERRO", "Waiting for server to become available: Get https://localhost:6443/version?timeout=30s: x509: certificate signed by unknown authority")
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func serve(ctx context.Context, cfg config, log *logger, u *ui) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "pong") })
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
