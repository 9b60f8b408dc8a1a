package main

import (
	"errors"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// secretStoreFile stands in for the datastore of the embedded cluster (kine's state.db, or
// etcd): the cluster's secrets, kept in the volume so that they survive restarts.
const secretStoreFile = "k3s/server/db/secrets.json"

type secret = corev1.Secret

// newSecret makes a kubernetes.io/tls secret, or an Opaque one when it has no tls.crt.
func newSecret(namespace, name string, data map[string][]byte) secret {
	typ := corev1.SecretTypeTLS
	if _, ok := data[corev1.TLSCertKey]; !ok {
		typ = corev1.SecretTypeOpaque
	}
	return secret{TypeMeta: metav1.TypeMeta{Kind: "Secret", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Type: typ, Data: data}
}

type secretStore struct {
	objectStore[secret]
	// admit, when set, is the admission of a secret created (not of one replaced), given the
	// secrets stored.
	admit func(s secret, stored map[string]secret) error
}

func (s *secretStore) get(namespace, name string) (secret, bool) {
	return s.objectStore.get(namespace + "/" + name)
}

// put writes secrets, keeping the identity of those that exist.
func (s *secretStore) put(secs ...secret) error {
	return s.update(func(all map[string]secret) (bool, error) {
		for _, sec := range secs {
			key := sec.Namespace + "/" + sec.Name
			if old, ok := all[key]; ok {
				sec.UID, sec.CreationTimestamp = old.UID, old.CreationTimestamp
			} else {
				if s.admit != nil {
					if err := s.admit(sec, all); err != nil {
						return false, err
					}
				}
				sec.UID, sec.CreationTimestamp = newUID(), metav1.Now()
			}
			sec.ResourceVersion = strconv.FormatInt(time.Now().UnixNano(), 10) // grows with every write, as the datastore's does
			all[key] = sec
		}
		return true, nil
	})
}

// create writes a new secret as the API server's create does: refused when it exists or when
// it carries a resourceVersion.
func (s *secretStore) create(sec secret) (bool, error) {
	if sec.ResourceVersion != "" {
		return false, errors.New("resourceVersion should not be set on objects to be created")
	}
	if _, ok := s.get(sec.Namespace, sec.Name); ok {
		return false, nil
	}
	return true, s.put(sec)
}

// remove deletes a secret and tells whether it existed.
func (s *secretStore) remove(namespace, name string) (bool, error) {
	found := false
	err := s.update(func(all map[string]secret) (bool, error) {
		key := namespace + "/" + name
		_, found = all[key]
		delete(all, key)
		return found, nil
	})
	return found, err
}
