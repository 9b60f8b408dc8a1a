package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sync"
)

// objectStore keeps the objects of one kind by key (namespace/name, or name) in a JSON file of
// the volume: the simulator's stand-in for the cluster's datastore, so that they survive
// restarts.
type objectStore[T any] struct {
	file string
	mu   sync.Mutex
}

func (s *objectStore[T]) load() (map[string]T, error) {
	all := map[string]T{}
	data, err := os.ReadFile(s.file)
	if errors.Is(err, fs.ErrNotExist) {
		return all, nil
	}
	if err != nil {
		return nil, err
	}
	return all, json.Unmarshal(data, &all)
}

// get returns the object under key, and whether it is there.
func (s *objectStore[T]) get(key string) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.load()
	obj, ok := all[key]
	return obj, ok && err == nil
}

// update changes the objects under the store's lock; they are written back when fn says they
// changed.
func (s *objectStore[T]) update(fn func(all map[string]T) (changed bool, err error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.load()
	if err != nil {
		return err
	}
	changed, err := fn(all)
	if err != nil || !changed {
		return err
	}
	data, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return writeFile(s.file, data, 0o600)
}

// list returns every object, in the order of their keys.
func (s *objectStore[T]) list() ([]T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(all))
	for _, k := range slices.Sorted(maps.Keys(all)) {
		out = append(out, all[k])
	}
	return out, nil
}
