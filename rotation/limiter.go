package rotation

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failureLimits tells a client that keeps sending wrong tokens to slow down: failed attempts
// are counted per client address (5 at once, then one a second), and past that its wrong tokens
// get 429 instead of 401. Overall, failures are limited only at a rate no single client reaches.
// The right token always passes (the API compares it first): an address shared by a stranger
// and the operator — a local user, a reverse proxy — never locks the operator out. Guessing is
// no way in either way: tokens hold at least 128 bits (MinTokenBits).
type failureLimits struct {
	mu      sync.Mutex
	clients map[string]*clientLimit
	global  *rate.Limiter
	now     func() time.Time
}

type clientLimit struct {
	lim  *rate.Limiter
	seen time.Time
}

// Per client and overall: the burst, and one failure regained per interval.
const (
	clientBurst  = 5
	clientEvery  = time.Second
	globalBurst  = 200
	globalPerSec = 50
	// maxClients bounds the table; clients idle for idleClient are dropped first.
	maxClients = 10000
	idleClient = time.Minute
)

func newFailureLimits() *failureLimits {
	return &failureLimits{clients: map[string]*clientLimit{}, global: rate.NewLimiter(globalPerSec, globalBurst), now: time.Now}
}

// failed counts a failure of a client, and tells whether the client (or failures overall) went
// over its limit.
func (l *failureLimits) failed(addr string) (over bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	c, ok := l.clients[addr]
	if !ok {
		l.sweep(now)
		c = &clientLimit{lim: rate.NewLimiter(rate.Every(clientEvery), clientBurst)}
		l.clients[addr] = c
	}
	c.seen = now
	client := c.lim.AllowN(now, 1)
	overall := l.global.AllowN(now, 1)
	return !client || !overall
}

// sweep drops idle clients when the table is full. Called with l.mu held.
func (l *failureLimits) sweep(now time.Time) {
	if len(l.clients) < maxClients {
		return
	}
	for addr, c := range l.clients {
		if now.Sub(c.seen) > idleClient {
			delete(l.clients, addr)
		}
	}
	for addr := range l.clients { // all busy: forget one, at random
		if len(l.clients) < maxClients {
			break
		}
		delete(l.clients, addr)
	}
}
