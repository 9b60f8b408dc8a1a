package cluster

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPutFromBackup: an object put back from its backup is created without what the API server
// set on it (a resourceVersion on a create is refused), or replaced as the current version;
// a MutatingWebhookConfiguration has no namespace in its path.
func TestPutFromBackup(t *testing.T) {
	var mu sync.Mutex
	stored := map[string]map[string]any{} // path → object
	var methods []string
	s := newAPIServer(t, time.Now().AddDate(1, 0, 0), func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		methods = append(methods, r.Method+" "+r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		var obj map[string]any
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			json.Unmarshal(b, &obj)
		}
		switch r.Method {
		case http.MethodGet:
			if o, ok := stored[r.URL.Path]; ok {
				json.NewEncoder(w).Encode(o)
				return
			}
			status(w, http.StatusNotFound, metav1.StatusReasonNotFound)
		case http.MethodPost:
			meta := obj["metadata"].(map[string]any)
			if meta["resourceVersion"] != nil || meta["uid"] != nil || meta["creationTimestamp"] != nil {
				status(w, http.StatusInternalServerError, metav1.StatusReasonInternalError)
				return
			}
			meta["resourceVersion"], meta["uid"] = "1", "new-uid"
			stored[r.URL.Path+"/"+meta["name"].(string)] = obj
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(obj)
		case http.MethodPut:
			meta := obj["metadata"].(map[string]any)
			if cur := stored[r.URL.Path]["metadata"].(map[string]any); meta["resourceVersion"] != cur["resourceVersion"] {
				status(w, http.StatusConflict, metav1.StatusReasonConflict)
				return
			}
			meta["resourceVersion"] = "2"
			stored[r.URL.Path] = obj
			json.NewEncoder(w).Encode(obj)
		}
	})
	c := s.client(t, false)
	ctx := context.Background()
	backup := []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"cattle-webhook-tls","namespace":"cattle-system","uid":"old","resourceVersion":"812","creationTimestamp":"2025-01-01T00:00:00Z","annotations":{"a":"b"}},"type":"kubernetes.io/tls","data":{"tls.crt":"Y2VydA=="}}`)
	o := Secret("cattle-system", "cattle-webhook-tls")
	if how, err := c.Put(ctx, o, backup); err != nil || how != "created" {
		t.Fatalf("put of a missing secret: %q %v", how, err)
	}
	raw, found, err := c.Get(ctx, o)
	if err != nil || !found {
		t.Fatalf("get after create: %v %v", found, err)
	}
	var got struct {
		Metadata struct {
			UID         string            `json:"uid"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Data map[string][]byte `json:"data"`
	}
	json.Unmarshal(raw, &got)
	if got.Metadata.UID != "new-uid" || got.Metadata.Annotations["a"] != "b" || string(got.Data["tls.crt"]) != "cert" {
		t.Fatalf("created %s", raw)
	}
	if how, err := c.Put(ctx, o, backup); err != nil || how != "replaced" {
		t.Fatalf("put of an existing secret: %q %v", how, err)
	}
	w := MutatingWebhook("rancher.cattle.io")
	if how, err := c.Put(ctx, w, []byte(`{"apiVersion":"admissionregistration.k8s.io/v1","kind":"MutatingWebhookConfiguration","metadata":{"name":"rancher.cattle.io","resourceVersion":"9"}}`)); err != nil || how != "created" {
		t.Fatalf("put of a webhook configuration: %q %v", how, err)
	}
	if _, err := c.Put(ctx, o, []byte(`{"metadata":{"name":"other","namespace":"cattle-system"}}`)); err == nil {
		t.Fatal("a backup of another object was put")
	}
	want := []string{
		"GET /api/v1/namespaces/cattle-system/secrets/cattle-webhook-tls", "POST /api/v1/namespaces/cattle-system/secrets",
		"GET /api/v1/namespaces/cattle-system/secrets/cattle-webhook-tls",
		"GET /api/v1/namespaces/cattle-system/secrets/cattle-webhook-tls", "PUT /api/v1/namespaces/cattle-system/secrets/cattle-webhook-tls",
		"GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/rancher.cattle.io", "POST /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
	}
	mu.Lock()
	defer mu.Unlock()
	if len(methods) != len(want) {
		t.Fatalf("requests %q, want %q", methods, want)
	}
	for i := range want {
		if methods[i] != want[i] {
			t.Fatalf("request %d: %q, want %q", i, methods[i], want[i])
		}
	}
}
