package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// Object names an object a rotation deletes for its owner to issue anew, and may put back from
// its backup: a secret, or a MutatingWebhookConfiguration.
type Object struct {
	Resource        string // secrets or mutatingwebhookconfigurations
	Namespace, Name string
}

// Secret names a secret.
func Secret(namespace, name string) Object { return Object{"secrets", namespace, name} }

// MutatingWebhook names a MutatingWebhookConfiguration.
func MutatingWebhook(name string) Object { return Object{"mutatingwebhookconfigurations", "", name} }

// String is namespace/name for a secret, mutatingwebhookconfigurations/name otherwise.
func (o Object) String() string {
	if o.Resource == "secrets" {
		return o.Namespace + "/" + o.Name
	}
	return o.Resource + "/" + o.Name
}

func (o Object) collection() string {
	if o.Resource == "secrets" {
		return "/api/v1/namespaces/" + o.Namespace + "/secrets"
	}
	return "/apis/admissionregistration.k8s.io/v1/" + o.Resource
}

// Get returns the object as the API server returned it, and whether it exists.
func (c *Client) Get(ctx context.Context, o Object) ([]byte, bool, error) {
	raw, err := c.rc.Get().AbsPath(o.collection(), o.Name).DoRaw(ctx)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, classify("get "+o.String(), err)
	}
	return raw, true, nil
}

// Delete deletes the object and tells whether it was there.
func (c *Client) Delete(ctx context.Context, o Object) (bool, error) {
	err := c.rc.Delete().AbsPath(o.collection(), o.Name).Do(ctx).Error()
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, classify("delete "+o.String(), err)
	}
	return true, nil
}

// Put writes an object from its backup: created when it is missing, else replaced (as the
// current version). What the API server sets on each write (uid, resourceVersion, creation
// time, managed fields) is dropped from the backup first. It tells which it did.
func (c *Client) Put(ctx context.Context, o Object, backup []byte) (string, error) {
	var obj map[string]any
	if err := json.Unmarshal(backup, &obj); err != nil {
		return "", readerr.Newf(readerr.ParseError, "backup of %s: %v", o, err)
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil || meta["name"] != o.Name || o.Namespace != "" && meta["namespace"] != o.Namespace {
		return "", readerr.Newf(readerr.ParseError, "backup of %s holds another object", o)
	}
	for _, k := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink", "generation"} {
		delete(meta, k)
	}
	current, found, err := c.Get(ctx, o)
	if err != nil {
		return "", err
	}
	if !found {
		body, _ := json.Marshal(obj)
		if err := c.rc.Post().AbsPath(o.collection()).Body(body).Do(ctx).Error(); err != nil {
			return "", classify("create "+o.String(), err)
		}
		return "created", nil
	}
	var cur struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(current, &cur); err != nil {
		return "", readerr.Newf(readerr.ParseError, "%s: %v", o, err)
	}
	meta["resourceVersion"] = cur.Metadata.ResourceVersion
	body, _ := json.Marshal(obj)
	if err := c.rc.Put().AbsPath(o.collection(), o.Name).Body(body).Do(ctx).Error(); err != nil {
		return "", classify(fmt.Sprintf("replace %s", o), err)
	}
	return "replaced", nil
}
