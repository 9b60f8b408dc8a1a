// Package sweepmap is a map whose entries live while they are used: Sweep drops every entry
// not read or written since the previous Sweep. The caches between scrapes use it, so a file
// or container that disappears is forgotten after one scrape.
package sweepmap

import "sync"

// Map is safe for concurrent use. The zero value is ready.
type Map[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*entry[V]
}

type entry[V any] struct {
	v    V
	used bool
}

// Get returns the value for k and marks it used.
func (m *Map[K, V]) Get(k K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	e.used = true
	return e.v, true
}

// Put stores v for k, marked used.
func (m *Map[K, V]) Put(k K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[K]*entry[V]{}
	}
	m.m[k] = &entry[V]{v: v, used: true}
}

// Sweep drops the entries not used since the previous Sweep.
func (m *Map[K, V]) Sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.m {
		if !e.used {
			delete(m.m, k)
		}
		e.used = false
	}
}

// Len is the number of entries.
func (m *Map[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}
