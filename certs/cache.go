package certs

import (
	"crypto/sha256"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/sweepmap"
)

// Cache remembers parse results by file name and content, so an unchanged file is hashed but
// not parsed again. Entries not used between two calls of Sweep are dropped.
type Cache struct {
	results sweepmap.Map[[sha256.Size]byte, result]
}

type result struct {
	info *Info
	err  error
}

// Parse is the cached form of ParseInfo.
func (c *Cache) Parse(name string, data []byte) (*Info, error) {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(data)
	var key [sha256.Size]byte
	h.Sum(key[:0])

	r, ok := c.results.Get(key)
	if !ok {
		r.info, r.err = ParseInfo(name, data)
		c.results.Put(key, r)
	}
	return r.info, r.err
}

// Sweep drops the entries not used since the previous Sweep.
func (c *Cache) Sweep() { c.results.Sweep() }

// Len reports the number of cached entries.
func (c *Cache) Len() int { return c.results.Len() }
