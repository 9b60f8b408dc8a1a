package rotation

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failureLimits slows down guessing the token without letting anyone lock the operator out:
// failed attempts are limited per client address (5 at once, then one a second), so a client
// that keeps failing gets 429 before its token is even looked at, while every other client is
// served. Overall, failures are limited only at a rate no single client reaches; past it a
// wrong token gets 429 too, but a right one still passes.
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

// blocked tells whether a client has failed too often to be heard now.
func (l *failureLimits) blocked(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.clients[addr]
	return ok && c.lim.TokensAt(l.now()) < 1
}

// failed counts a failure of a client, and tells whether failures overall are over their rate.
func (l *failureLimits) failed(addr string) (overall bool) {
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
	c.lim.AllowN(now, 1)
	return !l.global.AllowN(now, 1)
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
