package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"sort"
	"sync"
)

// secretStoreFile stands in for the datastore of the embedded cluster (kine's state.db, or
// etcd): the cluster's secrets, kept in the volume so that they survive restarts.
const secretStoreFile = "k3s/server/db/secrets.json"

// secret is a Kubernetes Secret as its JSON form has it.
type secret struct {
	Kind       string            `json:"kind"`
	APIVersion string            `json:"apiVersion"`
	Metadata   objectMeta        `json:"metadata"`
	Type       string            `json:"type"`
	Data       map[string][]byte `json:"data"`
}

type objectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

func newSecret(namespace, name string, data map[string][]byte) secret {
	return secret{Kind: "Secret", APIVersion: "v1", Type: "kubernetes.io/tls",
		Metadata: objectMeta{Name: name, Namespace: namespace}, Data: data}
}

type secretStore struct {
	file string
	mu   sync.Mutex
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

func (s *secretStore) put(sec secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.load()
	if err != nil {
		return err
	}
	all[sec.Metadata.Namespace+"/"+sec.Metadata.Name] = sec
	return s.save(all)
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
