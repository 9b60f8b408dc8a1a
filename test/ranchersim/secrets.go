package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"sync"
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
	file string
	mu   sync.Mutex
	// admit, when set, is the admission of a secret created (not of one replaced), given the
	// secrets stored.
	admit func(s secret, stored map[string]secret) error
}

func (s *secretStore) load() (map[string]secret, error) {
	all := map[string]secret{}
	data, err := os.ReadFile(s.file)
	if errors.Is(err, fs.ErrNotExist) {
		return all, nil
	}
	if err != nil {
		return nil, err
	}
	return all, json.Unmarshal(data, &all)
}

func (s *secretStore) save(all map[string]secret) error {
	data, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return writeFile(s.file, data, 0o600)
}

func (s *secretStore) get(namespace, name string) (secret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.load()
	sec, ok := all[namespace+"/"+name]
	return sec, ok && err == nil
}

// put writes secrets, keeping the identity of those that exist.
func (s *secretStore) put(secs ...secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.load()
	if err != nil {
		return err
	}
	for _, sec := range secs {
		key := sec.Namespace + "/" + sec.Name
		if old, ok := all[key]; ok {
			sec.UID, sec.CreationTimestamp = old.UID, old.CreationTimestamp
		} else {
			if s.admit != nil {
				if err := s.admit(sec, all); err != nil {
					return err
				}
			}
			sec.UID, sec.CreationTimestamp = newUID(), metav1.Now()
		}
		sec.ResourceVersion = strconv.FormatInt(time.Now().UnixNano(), 10) // grows with every write, as the datastore's does
		all[key] = sec
	}
	return s.save(all)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.load()
	if err != nil {
		return false, err
	}
	key := namespace + "/" + name
	if _, ok := all[key]; !ok {
		return false, nil
	}
	delete(all, key)
	return true, s.save(all)
}

// list returns every secret, by namespace and name.
func (s *secretStore) list() ([]secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.load()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]secret, 0, len(keys))
	for _, k := range keys {
		out = append(out, all[k])
	}
	return out, nil
}
