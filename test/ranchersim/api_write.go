package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// The writes a rotation makes, as kube-apiserver answers them: a secret created (409 when it
// exists; a resourceVersion refused, k8s.io/apiserver pkg/storage ErrResourceVersionSetOnCreate;
// the admission webhook may refuse it) or replaced (409 on a stale resourceVersion, none given
// is an unconditional update, as secrets allow: kubernetes v1.30.0
// pkg/registry/core/secret/strategy.go:100-102), and rancher-webhook's
// MutatingWebhookConfiguration read, deleted and created.

func (a *api) writes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/namespaces/{namespace}/secrets", a.createSecret)
	mux.HandleFunc("PUT /api/v1/namespaces/{namespace}/secrets/{name}", a.replaceSecret)
	mux.HandleFunc("GET /apis/admissionregistration.k8s.io/v1", a.getAdmissionResources)
	mux.HandleFunc("GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", a.listWebhooks)
	mux.HandleFunc("GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}", a.getWebhook)
	mux.HandleFunc("DELETE /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}", a.deleteWebhook)
	mux.HandleFunc("POST /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", a.createWebhook)
}

// codecs decode a body as kube-apiserver does: JSON, YAML or protobuf (kubectl sends the built-in
// types as protobuf).
var codecs = func() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := admissionv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(scheme)
}()

func decodeBody(w http.ResponseWriter, r *http.Request, v runtime.Object) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		_, _, err = codecs.UniversalDeserializer().Decode(body, nil, v)
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "the body of the request was in an unknown format: "+err.Error())
		return false
	}
	return true
}

func (a *api) createSecret(w http.ResponseWriter, r *http.Request) {
	var s corev1.Secret
	if !decodeBody(w, r, &s) {
		return
	}
	if s.Namespace == "" {
		s.Namespace = r.PathValue("namespace")
	}
	if s.Namespace != r.PathValue("namespace") {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "the namespace of the provided object does not match the namespace sent on the request")
		return
	}
	created, err := a.store.create(s)
	switch {
	case errors.Is(err, errRefused):
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
	case err != nil:
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
	case !created:
		writeStatus(w, http.StatusConflict, metav1.StatusReasonAlreadyExists, fmt.Sprintf("secrets %q already exists", s.Name))
	default:
		stored, _ := a.store.get(s.Namespace, s.Name)
		writeJSON(w, http.StatusCreated, stored)
	}
}

func (a *api) replaceSecret(w http.ResponseWriter, r *http.Request) {
	var s corev1.Secret
	if !decodeBody(w, r, &s) {
		return
	}
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	cur, ok := a.store.get(ns, name)
	switch {
	case s.Name != name || s.Namespace != "" && s.Namespace != ns:
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "the name of the object does not match the name on the URL")
		return
	case !ok:
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("secrets %q not found", name))
		return
	case s.ResourceVersion != "" && s.ResourceVersion != cur.ResourceVersion:
		writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("Operation cannot be fulfilled on secrets %q: the object has been modified; please apply your changes to the latest version and try again", name))
		return
	}
	s.Namespace = ns
	if err := a.store.put(s); err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	stored, _ := a.store.get(ns, name)
	writeJSON(w, http.StatusOK, stored)
}

func (a *api) getAdmissionResources(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "admissionregistration.k8s.io/v1",
		APIResources: []metav1.APIResource{{Name: "mutatingwebhookconfigurations", SingularName: "mutatingwebhookconfiguration", Kind: "MutatingWebhookConfiguration",
			Verbs: metav1.Verbs{"create", "delete", "get", "list"}}}})
}

func (a *api) listWebhooks(w http.ResponseWriter, _ *http.Request) {
	items, err := a.webhooks.list()
	list := admissionv1.MutatingWebhookConfigurationList{TypeMeta: metav1.TypeMeta{Kind: "MutatingWebhookConfigurationList", APIVersion: "admissionregistration.k8s.io/v1"},
		Items: items}
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *api) getWebhook(w http.ResponseWriter, r *http.Request) {
	c, ok := a.webhooks.get(r.PathValue("name"))
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("mutatingwebhookconfigurations.admissionregistration.k8s.io %q not found", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *api) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	found := false
	err := a.webhooks.update(func(all map[string]admissionv1.MutatingWebhookConfiguration) (bool, error) {
		_, found = all[name]
		delete(all, name)
		return found, nil
	})
	switch {
	case err != nil:
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
	case !found:
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("mutatingwebhookconfigurations.admissionregistration.k8s.io %q not found", name))
	default:
		writeJSON(w, http.StatusOK, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess,
			Details: &metav1.StatusDetails{Name: name, Group: "admissionregistration.k8s.io", Kind: "mutatingwebhookconfigurations"}})
	}
}

func (a *api) createWebhook(w http.ResponseWriter, r *http.Request) {
	var c admissionv1.MutatingWebhookConfiguration
	if !decodeBody(w, r, &c) {
		return
	}
	if c.ResourceVersion != "" {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "resourceVersion should not be set on objects to be created")
		return
	}
	exists := false
	err := a.webhooks.update(func(all map[string]admissionv1.MutatingWebhookConfiguration) (bool, error) {
		if _, exists = all[c.Name]; exists {
			return false, nil
		}
		c.UID, c.CreationTimestamp, c.ResourceVersion = newUID(), metav1.Now(), fmt.Sprint(metav1.Now().UnixNano())
		all[c.Name] = c
		return true, nil
	})
	switch {
	case err != nil:
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
	case exists:
		writeStatus(w, http.StatusConflict, metav1.StatusReasonAlreadyExists, fmt.Sprintf("mutatingwebhookconfigurations.admissionregistration.k8s.io %q already exists", c.Name))
	default:
		writeJSON(w, http.StatusCreated, c)
	}
}
