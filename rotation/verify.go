package rotation

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// errUnknownAuthority is the start that fails on a listener cache from an older CA; one more
// restart fixes it.
var errUnknownAuthority = errors.New("the log shows x509: certificate signed by unknown authority")

// settle watches the container for the settle time after a start: it must keep running
// without restarting, and its log since the start must be free of x509 errors.
func (j *Job) settle(ctx context.Context, id string, started time.Time) error {
	first, err := rancher.Inspect(ctx, j.eng, id)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(j.cfg.SettleTime)
	for {
		c, err := rancher.Inspect(ctx, j.eng, id)
		if err != nil {
			return err
		}
		if c.State != container.StateRunning || c.RestartCount != first.RestartCount {
			return fmt.Errorf("container is %s with %d restarts since the start%s", c.State, c.RestartCount-first.RestartCount, j.logTail(ctx, id, started))
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	logs, err := j.eng.Logs(ctx, id, started)
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	if strings.Contains(logs, "x509: certificate signed by unknown authority") {
		return errUnknownAuthority
	}
	if line := firstLineWith(logs, "x509:"); line != "" {
		return fmt.Errorf("x509 error in the log since the start: %s", line)
	}
	return nil
}

// checkTree verifies the certificates after a start: what the strategy set out to renew is
// renewed, every leaf is signed by a current CA, the listener cache by the current server CA.
func checkTree(before, after tree, s Strategy, p rancher.Profile, now time.Time) error {
	var problems []string
	for _, f := range before.renewable() {
		old := before[f]
		if !mustRenew(f, old.NotAfter.Sub(now), s, p) {
			continue
		}
		cur, ok := after[f]
		switch {
		case !ok:
			problems = append(problems, f+" is missing")
		case !cur.NotAfter.After(old.NotAfter):
			msg := fmt.Sprintf("%s still expires %s", f, cur.NotAfter.UTC().Format(time.RFC3339))
			if s == Restart {
				msg += ": k3s did not renew it on start; a stronger strategy (leaf) is needed"
			}
			problems = append(problems, msg)
		}
	}
	cas := after.cas()
	for _, f := range after.leaves() {
		if !signedByAny(after[f], cas) {
			problems = append(problems, f+" is not signed by any current CA")
		}
	}
	serverCA, ok := after[rancher.ServerCAFile]
	for f, c := range after {
		if rancher.IsListenerCache(f) && (!ok || !signedByAny(c, []*x509.Certificate{serverCA})) {
			problems = append(problems, f+" is not signed by the current server-ca")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// mustRenew tells whether a strategy must have renewed a certificate that had left to live:
// leaf and all-certs re-issue every leaf, and the listener cache when it was due; a restart
// must renew what is due and what the release renews on start.
func mustRenew(f string, left time.Duration, s Strategy, p rancher.Profile) bool {
	due := left < dueWithin
	switch {
	case s == Restart:
		return due || p.RenewsOnStart(f, left)
	case rancher.IsListenerCache(f):
		return due && s == Leaf
	}
	return true
}

func signedByAny(cert *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if bytes.Equal(cert.RawIssuer, ca.RawSubject) && cert.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func firstLineWith(logs, substr string) string {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, substr) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// logTail is the end of the container's log since a time, for error messages.
func (j *Job) logTail(ctx context.Context, id string, since time.Time) string {
	logs, err := j.eng.Logs(ctx, id, since)
	if err != nil || logs == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return "; log: " + strings.Join(lines, " | ")
}
