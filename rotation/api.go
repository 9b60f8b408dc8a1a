package rotation

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// API serves the rotation endpoints behind a bearer token.
type API struct {
	rot      *Rotator
	token    [sha256.Size]byte
	failures *rate.Limiter // failed authentications allowed: 5 at once, then one a second
	jobs     *Jobs
}

// ReadToken reads the bearer token from a file and reports whether the file is readable by
// group or others.
func ReadToken(file string) (token string, loose bool, err error) {
	info, err := os.Stat(file)
	if err != nil {
		return "", false, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", false, err
	}
	token = strings.TrimSpace(string(data))
	if token == "" {
		return "", false, fmt.Errorf("%s is empty", file)
	}
	return token, info.Mode().Perm()&0o077 != 0, nil
}

// NewAPI serves rot behind token, running its jobs in jobs.
func NewAPI(rot *Rotator, jobs *Jobs, token string) *API {
	return &API{
		rot:      rot,
		token:    sha256.Sum256([]byte(token)),
		failures: rate.NewLimiter(rate.Every(time.Second), 5),
		jobs:     jobs,
	}
}

// Register adds the endpoints, and 405 for their other methods (without the method-less
// patterns, a catch-all "/" such as the landing page would answer them).
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/containers/{name}/rotate", a.authorized(a.rotate))
	mux.Handle("/api/v1/containers/{name}/rotate", methodNotAllowed("POST"))
	mux.Handle("GET /api/v1/rotations/{id}", a.authorized(a.status))
	mux.Handle("/api/v1/rotations/{id}", methodNotAllowed("GET, HEAD"))
	mux.Handle("GET /api/v1/rotations", a.authorized(a.list))
	mux.Handle("/api/v1/rotations", methodNotAllowed("GET, HEAD"))
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed; use "+allow)
	})
}

type rotateRequest struct {
	Strategy string `json:"strategy"`
	DryRun   bool   `json:"dry_run"`
}

func (a *API) rotate(w http.ResponseWriter, r *http.Request) {
	var req rotateRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return
	}
	strategy, err := ParseStrategy(req.Strategy)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	c, err := a.rot.Lookup(ctx, r.PathValue("name"))
	if err != nil {
		status := http.StatusServiceUnavailable
		if readerr.ReasonOf(err) == readerr.ContainerNotFound {
			status = http.StatusNotFound
		}
		writeError(w, status, err.Error())
		return
	}

	a.rot.FinishAbandoned(a.jobs) // one of this container holds its lock: 409 below
	job, err := a.rot.NewRotation(c, strategy, req.DryRun, TriggerAPI)
	var busy *ErrBusy
	switch {
	case errors.As(err, &busy):
		if busy.JobID != "" {
			w.Header().Set("Location", "/api/v1/rotations/"+busy.JobID)
		}
		writeError(w, http.StatusConflict, fmt.Sprintf("container %s: %v", c.Name, err))
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	a.jobs.Start(job)
	rep := job.Report()
	w.Header().Set("Location", "/api/v1/rotations/"+rep.ID)
	writeJSON(w, http.StatusAccepted, rep)
}

// status reports a job of this process, else of an earlier one from its journal.
func (a *API) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if job, ok := a.jobs.Get(id); ok {
		writeJSON(w, http.StatusOK, job.Report())
		return
	}
	j, err := readJournal(a.rot.cfg.BackupDir, id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeError(w, http.StatusNotFound, "no rotation "+id)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, j.Report)
	}
}

// list reports the recent jobs of every process, newest first.
func (a *API) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.rot.Reports(a.jobs))
}

// authorized checks the bearer token in constant time. After repeated failures every request
// waits its turn: 429 until the limiter refills, whatever the token.
func (a *API) authorized(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.failures.Tokens() < 1 {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "too many failed authentications")
			return
		}
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(given))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
			a.failures.Allow()
			w.Header().Set("WWW-Authenticate", `Bearer realm="rancher-cert-exporter"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // an error is the client going away
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
