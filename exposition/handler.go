// Package exposition serves /metrics from the model: the certificate series, encoded (and
// compressed) again only when a certificate changed, and the health of each source, live, for
// every scrape; scrapes that arrive together share one render. It reads snapshots through an
// interface (the collector's) and does no collection of its own.
package exposition

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sync/singleflight"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/metrics"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
)

// Scrape budget: Prometheus says how long it waits (X-Prometheus-Scrape-Timeout-Seconds);
// the exporter answers that much earlier, as blackbox_exporter does. Without the header, its
// default timeout applies.
const (
	budgetOffset  = 500 * time.Millisecond
	defaultBudget = 10*time.Second - budgetOffset
	minBudget     = 100 * time.Millisecond
)

// Budget is how long a request may take before it must answer.
func Budget(r *http.Request) time.Duration {
	secs, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64)
	if err != nil || secs <= 0 {
		return defaultBudget
	}
	return max(time.Duration(secs*float64(time.Second))-budgetOffset, minBudget)
}

var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// Source is what the exposition reads: the snapshot a scrape reports (*collector.Collector), and
// the counters of failed reads.
type Source interface {
	Gather(ctx context.Context) model.Snapshot
	ReadErrors() prometheus.Collector
}

// Exposition serves /metrics from a Source, keeping the encoded certificate series between
// scrapes.
type Exposition struct {
	src     Source
	certs   certCache
	renders singleflight.Group // responses rendered for concurrent scrapes
}

// New is the exposition of a source.
func New(src Source) *Exposition { return &Exposition{src: src} }

// Encodes is how many times the certificate series were encoded.
func (e *Exposition) Encodes() int {
	e.certs.mu.Lock()
	defer e.certs.mu.Unlock()
	return e.certs.encodes
}

// Handler serves /metrics: the certificate series as encoded when a certificate changed,
// everything else — source health, durations, and what live gathers (Go, process, build and
// rotation metrics) — gathered and encoded live. Scrapes that arrive while one is being
// rendered share it, as they share the inspection of the containers.
func (e *Exposition) Handler(live prometheus.Gatherer, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		budget := Budget(r)
		deadline := time.Now().Add(budget)
		// A scrape only joins renders with its own budget: it never waits on a longer one.
		key := strconv.FormatInt(int64(budget/(100*time.Millisecond)), 10)
		v, _, _ := e.renders.Do(key, func() (any, error) {
			ctx, cancel := context.WithDeadline(context.WithoutCancel(r.Context()), deadline)
			defer cancel()
			return e.render(ctx, live, logger), nil
		})
		out := v.(rendered)
		w.Header().Set("Content-Type", string(textFormat))
		if gzipAccepted(r) {
			w.Header().Set("Content-Encoding", "gzip")
			for _, part := range [][]byte{gzipHeader, out.certs.blocks, out.gzipTail} {
				if _, err := w.Write(part); err != nil {
					return // the client went away
				}
			}
			return
		}
		if out.certs.writePlain(w) == nil {
			_, _ = w.Write(out.rest) // an error is the client going away
		}
	})
}

// rendered is one response: the certificate series as kept, the rest as text, and the rest
// compressed into the end of a gzip member that starts with the certificate series.
type rendered struct {
	certs    compressedText
	rest     []byte
	gzipTail []byte
}

func (e *Exposition) render(ctx context.Context, live prometheus.Gatherer, logger *slog.Logger) rendered {
	start := time.Now()
	snap := e.src.Gather(ctx)
	out := rendered{certs: e.certs.text(snap)}
	scrape := prometheus.NewRegistry()
	scrape.MustRegister(health{snap: snap, errs: e.src.ReadErrors(), start: start})
	mfs, err := prometheus.Gatherers{live, scrape}.Gather()
	if err != nil {
		logger.Error("gathering metrics", "err", err) // the rest is still served
	}
	var rest bytes.Buffer
	enc := expfmt.NewEncoder(&rest, textFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			logger.Error("encoding metrics", "family", mf.GetName(), "err", err)
		}
	}
	out.rest = rest.Bytes()
	var tail bytes.Buffer
	_ = out.certs.writeGzipTail(&tail, out.rest) // to memory: cannot fail
	out.gzipTail = tail.Bytes()
	return out
}

func gzipAccepted(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if enc, _, _ := strings.Cut(strings.TrimSpace(part), ";"); enc == "gzip" {
			return true
		}
	}
	return false
}

// certCache is the text of the certificate series, encoded again only when the snapshot holds
// other certificates than the last one encoded: sources keep their certificate slices while
// nothing changes, so comparing the slices tells.
type certCache struct {
	mu      sync.Mutex
	key     []certSlice
	encoded compressedText
	encodes int // how many times it was encoded
}

type certSlice struct {
	container, source string
	first             *model.CertFile
	n                 int
}

func fingerprint(snap model.Snapshot) []certSlice {
	key := make([]certSlice, 0, len(snap.Sources))
	for _, s := range snap.Sources {
		if len(s.Certs) > 0 {
			key = append(key, certSlice{s.Container, s.Source, &s.Certs[0], len(s.Certs)})
		}
	}
	return key
}

func (e *certCache) text(snap model.Snapshot) compressedText {
	key := fingerprint(snap)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.encodes > 0 && slices.Equal(key, e.key) {
		return e.encoded
	}
	e.encoded, e.key = compress(encodeCerts(snap.Certs())), key
	e.encodes++
	if e.encoded.size > bigExposition {
		// Encoding many series made megabytes of garbage, and certificates change a few times a
		// year: hand it back now rather than keep it resident until the next collection.
		go debug.FreeOSMemory()
	}
	return e.encoded
}

// bigExposition is the size above which an encoding is worth returning its garbage for
// (about 2,500 certificate files).
const bigExposition = 1 << 20

// encodeCerts encodes the two certificate families, sorted by container, source and path,
// one family at a time.
func encodeCerts(files []model.CertFile) []byte {
	slices.SortFunc(files, func(a, b model.CertFile) int {
		return strings.Compare(a.Container+"\x00"+a.Source+"\x00"+a.Path, b.Container+"\x00"+b.Source+"\x00"+b.Path)
	})
	size := 0
	for _, f := range files {
		size += 2 * (len(f.Container) + len(f.Path) + len(f.Cert.SubjectCN) + len(f.Cert.IssuerCN) + len(f.Cert.Serial) + 130)
	}
	var buf bytes.Buffer
	buf.Grow(size)
	for _, fam := range []struct {
		name, help string
		value      func(*certs.Info) time.Time
	}{
		{metrics.CertNotAfter.Name, metrics.CertNotAfter.Help, func(c *certs.Info) time.Time { return c.NotAfter }},
		{metrics.CertNotBefore.Name, metrics.CertNotBefore.Help, func(c *certs.Info) time.Time { return c.NotBefore }},
	} {
		if len(files) == 0 {
			break
		}
		known := files
		if fam.name == metrics.CertNotBefore.Name {
			known = slices.DeleteFunc(slices.Clone(files), func(f model.CertFile) bool { return f.Cert.NotBefore.IsZero() }) // a downstream certificate's is not known
		}
		mf := &dto.MetricFamily{Name: proto(fam.name), Help: proto(fam.help), Type: dto.MetricType_GAUGE.Enum(), Metric: make([]*dto.Metric, len(known))}
		metrics, gauges, values := make([]dto.Metric, len(known)), make([]dto.Gauge, len(known)), make([]float64, len(known))
		for i, f := range known {
			values[i] = float64(fam.value(f.Cert).Unix())
			gauges[i].Value = &values[i]
			metrics[i].Label = prometheus.MakeLabelPairs(notAfter, []string{f.Container, f.Source, f.Path,
				f.Cert.SubjectCN, f.Cert.IssuerCN, f.Cert.Serial, strconv.FormatBool(f.Cert.IsCA)})
			metrics[i].Gauge = &gauges[i]
			mf.Metric[i] = &metrics[i]
		}
		_, _ = expfmt.MetricFamilyToText(&buf, mf) // fixed, valid names into memory: cannot fail
	}
	return buf.Bytes()
}

func proto[T any](v T) *T { return &v }
