package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// API serves the rotation endpoints behind a bearer token, for the containers the exporter
// watches only.
type API struct {
	rot     *Rotator
	token   *TokenFile
	limits  *failureLimits
	jobs    *Jobs
	watched Watched
}

// Watched lists the Rancher containers the exporter watches (discovered or named): the only ones
// the API acts on.
type Watched interface {
	Watched(ctx context.Context) []rancher.Container
}

// NewAPI serves rot behind the token, running its jobs in jobs, on the watched containers.
func NewAPI(rot *Rotator, jobs *Jobs, token *TokenFile, watched Watched) *API {
	return &API{rot: rot, token: token, limits: newFailureLimits(), jobs: jobs, watched: watched}
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
	Strategy string   `json:"strategy"`
	DryRun   bool     `json:"dry_run"`
	Secrets  []string `json:"secrets"`
}

// maxBody bounds a request body.
const maxBody = 1 << 16

// decodeStrict reads a JSON object into v: an unknown or repeated member, a value of the wrong
// type, a null anywhere or anything after the object is an error naming it — a typo must fail,
// never fall back to a default (a mistyped dry run must not rotate). An empty body is the empty
// object.
func decodeStrict(r io.Reader, v any) error {
	body, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	switch {
	case err != nil:
		return err
	case len(body) > maxBody:
		return fmt.Errorf("more than %d bytes", maxBody)
	case len(bytes.TrimSpace(body)) == 0:
		return nil
	}
	if err := refuseNull(body); err != nil {
		return err
	}
	return jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true))
}

// refuseNull names the first null of a JSON text. null is what many clients send for an option
// they leave unset, and it would decode as the zero value: {"dry_run": null} as a real rotation.
// A text that does not parse is left to the decoder, which names the error.
func refuseNull(body []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	tok, err := dec.ReadToken()
	switch {
	case err != nil || tok.Kind() != '{' && tok.Kind() != 'n':
		return nil // not an object: the decoder says so
	case tok.Kind() == 'n':
		return errors.New("the body is null: it must be a JSON object ({} for the defaults)")
	}
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil
		}
		if tok.Kind() == 'n' {
			return fmt.Errorf("%s is null: give it a value, or leave it out for its default", dec.StackPointer())
		}
	}
}

// containerName is what Docker accepts as a container name or ID.
var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)

// CheckContainerName refuses what cannot be a container name or ID before it reaches the engine.
func CheckContainerName(name string) error {
	if !containerName.MatchString(name) {
		return fmt.Errorf("%q is not a container name or ID", name)
	}
	return nil
}

// lookupWatched finds a container the exporter watches by name, ID or ID prefix of 12 or more,
// and inspects it by its ID: a name is never passed to the engine as it came.
func (a *API) lookupWatched(ctx context.Context, name string) (rancher.Container, int, error) {
	if err := CheckContainerName(name); err != nil {
		return rancher.Container{}, http.StatusNotFound, err
	}
	for _, c := range a.watched.Watched(ctx) {
		if c.Name == name || c.ID == name || len(name) >= 12 && strings.HasPrefix(c.ID, name) {
			found, err := a.rot.Lookup(ctx, c.ID)
			if err != nil {
				status := http.StatusServiceUnavailable
				if readerr.ReasonOf(err) == readerr.ContainerNotFound {
					status = http.StatusNotFound
				}
				return rancher.Container{}, status, err
			}
			return found, 0, nil
		}
	}
	return rancher.Container{}, http.StatusNotFound, fmt.Errorf("container %s is not one this exporter watches", name)
}

func (a *API) rotate(w http.ResponseWriter, r *http.Request) {
	var req rotateRequest
	if err := decodeStrict(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return
	}
	strategy, err := ParseStrategy(req.Strategy)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, key := range req.Secrets {
		if err := rancher.CheckRotatable(key); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	rr := Request{Strategy: strategy, Secrets: req.Secrets, DryRun: req.DryRun}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	c, status, err := a.lookupWatched(ctx, r.PathValue("name"))
	if err != nil {
		writeError(w, status, err.Error())
		return
	}

	if req.DryRun {
		if busy, ok := holder(a.rot.cfg.BackupDir, c.ID); ok {
			conflict(w, c, busy) // its plan would be of a container the job is changing
			return
		}
		a.dryRun(w, r, c, rr)
		return
	}
	a.rot.Resume(r.Context(), a.jobs, false) // one of this container holds its lock: 409 below
	job, err := a.rot.NewRotation(c, rr, TriggerAPI)
	var busy *ErrBusy
	switch {
	case errors.As(err, &busy):
		conflict(w, c, busy)
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

// conflict answers 409 for a container another job rotates or restores, with that job's
// Location.
func conflict(w http.ResponseWriter, c rancher.Container, busy *ErrBusy) {
	if busy.JobID != "" {
		w.Header().Set("Location", "/api/v1/rotations/"+busy.JobID)
	}
	writeError(w, http.StatusConflict, fmt.Sprintf("container %s: %v", c.Name, busy))
}

// dryRun plans a rotation and answers with its report at once: the job is not kept, so a
// GET of its id answers 404, and nothing is written.
func (a *API) dryRun(w http.ResponseWriter, r *http.Request, c rancher.Container, req Request) {
	job, err := a.rot.NewRotation(c, req, TriggerAPI)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	rep := job.Run(r.Context(), nil)
	writeJSON(w, http.StatusOK, rep)
}

// status reports a job of this process, else of an earlier one from its journal.
func (a *API) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rep, err := a.rot.Report(a.jobs, id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeError(w, http.StatusNotFound, "no rotation "+id)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}

// list reports the recent jobs of every process, newest first.
func (a *API) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.rot.Reports(a.jobs))
}

// authorized checks the bearer token (the scheme in any case, RFC 9110) in constant time. The
// right token always passes; a client whose wrong tokens went over its limit gets 429 for the
// next ones instead of 401, and every other client is served as before.
func (a *API) authorized(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, given, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if strings.EqualFold(scheme, "Bearer") && a.token.Matches(given) {
			next(w, r)
			return
		}
		client := clientAddr(r)
		if a.limits.failed(client) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "too many failed authentications from "+client)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="rancher-cert-exporter"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
	})
}

// clientAddr is the address a request comes from, without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
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
