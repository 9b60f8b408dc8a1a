package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Rancher's settings (settings.management.cattle.io/v3, cluster-scoped) that decide what the
// agents of downstream clusters trust, kept in the datastore beside the secrets. Served from
// Rancher 2.5 on, once Rancher has started.
const settingStoreFile = "k3s/server/db/settings.json"

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

// initSettings writes the settings as Rancher does at start: cacerts as SetupListener sets it
// (sslConfig.cacerts); server-url as the admin set it (rancher/rancher v2.9.0
// pkg/settings/setting.go:101, no default); agent-tls-mode from 2.9, default strict, but on a
// server that had settings before the setting existed its default is system-store
// (setting.go:63 WithDefaultOnUpgrade; pkg/controllers/dashboardapi/settings/settings.go:109-111
// on creation, :131-134 on later starts). The value stays empty unless an admin sets it.
func initSettings(dataDir string, cacerts string) (map[string]setting, error) {
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
	stored["cacerts"] = setting{Value: cacerts}
	if _, ok := stored["server-url"]; !ok {
		stored["server-url"] = setting{Value: env("SIM_SERVER_URL", defaultServerURL)}
	}
	if atLeast(2, 9) {
		if _, ok := stored["agent-tls-mode"]; !ok {
			mode := setting{Default: "strict"}
			if upgraded {
				mode.Default = "system-store"
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
func servesSettings() bool { return atLeast(2, 5) }

// servesCACerts: /cacerts, the value agents download and check against their checksum, is
// served from 2.6 (v2.6.0 pkg/ui/routes.go:17; 2.5 agents read /v3/settings/cacerts, v2.5.7
// pkg/multiclustermanager/routes.go:70).
func servesCACerts() bool { return atLeast(2, 6) }

func atLeast(major, minor int) bool {
	v := rancherVersion()
	return v[0] > major || v[0] == major && v[1] >= minor
}

// getManagementResources lists Rancher's own resources served here: clusters (every release),
// settings (from 2.5).
func (a *api) getManagementResources(w http.ResponseWriter, _ *http.Request) {
	resources := []metav1.APIResource{{Name: "clusters", SingularName: "cluster", Kind: "Cluster", Verbs: metav1.Verbs{"get", "list"}}}
	if servesSettings() {
		resources = append(resources, metav1.APIResource{Name: "settings", SingularName: "setting", Kind: "Setting", Verbs: metav1.Verbs{"get"}})
	}
	writeJSON(w, http.StatusOK, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "management.cattle.io/v3",
		APIResources: resources})
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
// one, nothing when it is blank (rancher/rancher v2.9.0 pkg/cacerts/handler.go:35-66).
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
