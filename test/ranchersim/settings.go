package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Rancher's settings (settings.management.cattle.io/v3, cluster-scoped) that decide what the
// agents of downstream clusters trust, kept in the datastore beside the secrets. Served from
// Rancher 2.5 on, once Rancher has started.
const settingStoreFile = "k3s/server/db/settings.json"

// What an operator mounts to bring their own certificate (Rancher's single-node install
// options B and C): the chain and key Rancher serves instead of its own, and the CA agents
// are told to trust; --no-cacerts (option C) leaves cacerts empty.
const (
	customCertFile    = "/etc/rancher/ssl/cert.pem"
	customKeyFile     = "/etc/rancher/ssl/key.pem"
	customCACertsFile = "/etc/rancher/ssl/cacerts.pem"
	noCACertsArg      = "--no-cacerts"
)

// defaultServerURL is the server-url an admin sets at the first login; the UI certificate
// names its host.
const defaultServerURL = "https://rancher.local"

type setting struct {
	Value   string `json:"value"`
	Default string `json:"default"`
}

// settings are the ones served, or nil before Rancher has started (and on 2.3 and 2.4).
type settings struct {
	all atomic.Pointer[map[string]setting]
}

// rancherVersion is [major, minor] of CATTLE_SERVER_VERSION.
func rancherVersion() [2]int {
	r := releaseOf(os.Getenv("CATTLE_SERVER_VERSION"))
	return [2]int{r.version[0], r.version[1]}
}

// initSettings writes the settings as Rancher does at start: cacerts from the mounted CA, empty
// with --no-cacerts, else the PEM of its own cattle-ca; server-url as the admin set it;
// agent-tls-mode from 2.9, strict by default, but system-store on a server upgraded from an
// earlier release (rancher/rancher pkg/settings: WithDefaultOnUpgrade).
func initSettings(dataDir string, cattleCA []byte, args []string) (map[string]setting, error) {
	file := filepath.Join(dataDir, settingStoreFile)
	stored := map[string]setting{}
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(data, &stored); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	upgraded := len(stored) > 0
	cacerts := string(cattleCA)
	if mounted, err := os.ReadFile(customCACertsFile); err == nil {
		cacerts = string(mounted)
	} else if slices.Contains(args, noCACertsArg) {
		cacerts = ""
	}
	stored["cacerts"] = setting{Value: cacerts}
	if _, ok := stored["server-url"]; !ok {
		stored["server-url"] = setting{Value: env("SIM_SERVER_URL", defaultServerURL)}
	}
	if v := rancherVersion(); v[0] > 2 || v[0] == 2 && v[1] >= 9 {
		if _, ok := stored["agent-tls-mode"]; !ok {
			mode := setting{Default: "strict"}
			if upgraded {
				mode.Value = "system-store"
			}
			stored["agent-tls-mode"] = mode
		}
	}
	data, err = json.Marshal(stored)
	if err != nil {
		return nil, err
	}
	return stored, writeFile(file, data, 0o600)
}

// servesSettings: Rancher's settings are served from 2.5 on.
func servesSettings() bool {
	v := rancherVersion()
	return v[0] > 2 || v[0] == 2 && v[1] >= 5
}

func (a *api) getSettingResources(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "management.cattle.io/v3",
		APIResources: []metav1.APIResource{{Name: "settings", SingularName: "setting", Kind: "Setting", Verbs: metav1.Verbs{"get"}}}})
}

func (a *api) getSetting(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	all := a.settings.all.Load()
	s, ok := setting{}, false
	if all != nil {
		s, ok = (*all)[name]
	}
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("settings.management.cattle.io %q not found", name))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"apiVersion": "management.cattle.io/v3", "kind": "Setting",
		"metadata": metav1.ObjectMeta{Name: name}, "value": s.Value, "default": s.Default})
}

// serveCACerts is Rancher's /cacerts: the cacerts setting with a newline added when it lacks
// one, nothing when it is blank (rancher/rancher pkg/cacerts/handler.go).
func serveCACerts(all map[string]setting) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		ca := all["cacerts"].Value
		if strings.TrimSpace(ca) == "" {
			return
		}
		if !strings.HasSuffix(ca, "\n") {
			ca += "\n"
		}
		_, _ = w.Write([]byte(ca))
	}
}
