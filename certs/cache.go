package certs

import (
	"crypto/sha256"
	"sync"
)

// Cache remembers parse results by file name and content, so an unchanged file is hashed but
// not parsed again. Entries not used between two calls of Sweep are dropped.
type Cache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]*cached
}

type cached struct {
	cert *Info
	err  error
	used bool
}

// Parse is the cached form of ParseInfo.
func (c *Cache) Parse(name string, data []byte) (*Info, error) {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(data)
	var key [sha256.Size]byte
	h.Sum(key[:0])

	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok {
		cert, err := ParseInfo(name, data)
		e = &cached{cert: cert, err: err}
		c.mu.Lock()
		if c.entries == nil {
			c.entries = make(map[[sha256.Size]byte]*cached)
		}
		c.entries[key] = e
		c.mu.Unlock()
	}
	c.mu.Lock()
	e.used = true
	c.mu.Unlock()
	return e.cert, e.err
}

// Sweep drops the entries not used since the previous Sweep.
func (c *Cache) Sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if !e.used {
			delete(c.entries, k)
		}
		e.used = false
	}
}

// Len reports the number of cached entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
