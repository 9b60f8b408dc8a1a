// Package enginetest is the fake Docker engine of the unit tests: containers to list and
// inspect, their files served by the archive endpoint the way the engine serves them (a
// directory as a tar of its whole subtree, a file as a tar of itself), an event stream the test
// feeds and breaks, a failure or a hold to inject, and every call recorded. It has the reads of rancher.Engine; the rotation's fake adds
// the calls that change a container to its own state machine.
package enginetest

import (
	"archive/tar"
	"bytes"
	"context"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Container is one container of the fake.
type Container struct {
	ID, Name, Image string
	Env             []string
	Labels          map[string]string
	Mounts          []container.MountPoint
	Created         int64
	State           container.ContainerState
	StartedAt       time.Time
	Restarts        int
	HostNetwork     bool // --network host: its API server is at 127.0.0.1

	// Files are its files by absolute path.
	Files map[string][]byte
}

// Engine is the fake. Change it through Change while it serves.
type Engine struct {
	mu         sync.Mutex
	containers []*Container
	fail       map[string]error // by call kind ("" for every call)
	hold       chan struct{}    // archive calls wait for it to close
	calls      []string         // "list", "inspect <id>", "archive <id> <path>", "events"
	streams    []*stream        // the event subscriptions that are open
}

// stream is one event subscription.
type stream struct {
	ctx  context.Context
	msgs chan events.Message
	errs chan error
}

// New is a fake engine with these containers.
func New(containers ...*Container) *Engine { return &Engine{containers: containers} }

// Change changes the fake under its lock: a container, a failure, a hold.
func (e *Engine) Change(fn func(e *Engine)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(e)
}

// Add adds a container, for Change.
func (e *Engine) Add(c *Container) { e.containers = append(e.containers, c) }

// Container is the container with the ID, for Change.
func (e *Engine) Container(id string) *Container {
	for _, c := range e.containers {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Fail makes the calls of a kind — "list", "inspect", "archive", or "" for every call — fail
// with err (nil: no more); Hold makes archive calls wait until ch is closed (nil: none). Call
// them inside Change.
func (e *Engine) Fail(kind string, err error) {
	if e.fail == nil {
		e.fail = map[string]error{}
	}
	e.fail[kind] = err
}

func (e *Engine) Hold(ch chan struct{}) { e.hold = ch }

// failure is the error a call of the kind fails with, if any. Called with e.mu held.
func (e *Engine) failure(kind string) error {
	if err := e.fail[kind]; err != nil {
		return err
	}
	return e.fail[""]
}

// Calls lists the calls so far whose record starts with prefix ("archive", "inspect c1").
func (e *Engine) Calls(prefix string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, c := range e.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// Events subscribes to what Emit sends, until ctx ends or Break ends the stream; a failure of
// kind "events" refuses the subscription.
func (e *Engine) Events(ctx context.Context, _ client.EventsListOptions) client.EventsResult {
	st := &stream{ctx: ctx, msgs: make(chan events.Message), errs: make(chan error, 1)}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, "events")
	if err := e.failure("events"); err != nil {
		st.errs <- err
		return client.EventsResult{Messages: st.msgs, Err: st.errs}
	}
	e.streams = append(e.streams, st)
	context.AfterFunc(ctx, func() {
		select {
		case st.errs <- ctx.Err():
		default:
		}
	})
	return client.EventsResult{Messages: st.msgs, Err: st.errs}
}

// Emit sends a container event to every open subscription, as the engine does.
func (e *Engine) Emit(action events.Action, c *Container) {
	m := events.Message{Type: events.ContainerEventType, Action: action, TimeNano: time.Now().UnixNano(),
		Actor: events.Actor{ID: c.ID, Attributes: map[string]string{"name": c.Name, "image": c.Image}}}
	e.mu.Lock()
	streams := slices.Clone(e.streams)
	e.mu.Unlock()
	for _, st := range streams {
		select {
		case st.msgs <- m:
		case <-st.ctx.Done():
		}
	}
}

// Break ends every open subscription with err, as a daemon that stops or restarts does.
func (e *Engine) Break(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, st := range e.streams {
		select {
		case st.errs <- err:
		default:
		}
	}
	e.streams = nil
}

// DaemonHost is the address errors name.
func (e *Engine) DaemonHost() string { return "unix:///fake.sock" }

func (e *Engine) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, "list")
	if err := e.failure("list"); err != nil {
		return client.ContainerListResult{}, err
	}
	var out client.ContainerListResult
	for _, c := range e.containers {
		out.Items = append(out.Items, container.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Image, State: c.State,
			Labels: c.Labels, Mounts: c.Mounts, Created: c.Created})
	}
	return out, nil
}

func (e *Engine) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, "inspect "+id)
	if err := e.failure("inspect"); err != nil {
		return client.ContainerInspectResult{}, err
	}
	c := e.find(id)
	if c == nil {
		return client.ContainerInspectResult{}, errdefs.ErrNotFound
	}
	started := ""
	if !c.StartedAt.IsZero() {
		started = c.StartedAt.Format(time.RFC3339Nano)
	}
	return client.ContainerInspectResult{Container: container.InspectResponse{ID: c.ID, Name: "/" + c.Name, RestartCount: c.Restarts,
		State:  &container.State{Status: c.State, Running: c.State == container.StateRunning, StartedAt: started},
		Config: &container.Config{Image: c.Image, Env: c.Env, Labels: c.Labels}, Mounts: c.Mounts, HostConfig: hostConfig(c)}}, nil
}

// find is a container by ID, ID prefix or name. Called with e.mu held.
func (e *Engine) find(id string) *Container {
	for _, c := range e.containers {
		if c.ID == id || c.Name == id || len(id) >= 4 && strings.HasPrefix(c.ID, id) {
			return c
		}
	}
	return nil
}

func (e *Engine) CopyFromContainer(ctx context.Context, id string, opts client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	src := opts.SourcePath
	e.mu.Lock()
	e.calls = append(e.calls, "archive "+id+" "+src)
	fail, hold, c := e.failure("archive"), e.hold, e.find(id)
	var files map[string][]byte
	if c != nil {
		files = make(map[string][]byte, len(c.Files))
		for p, d := range c.Files {
			files[p] = d
		}
	}
	e.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return client.CopyFromContainerResult{}, ctx.Err()
		}
	}
	if fail != nil {
		return client.CopyFromContainerResult{}, fail
	}
	if c == nil {
		return client.CopyFromContainerResult{}, errdefs.ErrNotFound
	}
	var names []string
	entries := map[string][]byte{}
	for p, data := range files {
		switch {
		case p == src:
			entries[path.Base(src)] = data
		case strings.HasPrefix(p, src+"/"):
			entries[path.Base(src)+"/"+strings.TrimPrefix(p, src+"/")] = data
		default:
			continue
		}
	}
	if len(entries) == 0 {
		return client.CopyFromContainerResult{}, errdefs.ErrNotFound
	}
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		_ = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(entries[n])), Typeflag: tar.TypeReg})
		_, _ = tw.Write(entries[n])
	}
	_ = tw.Close()
	return client.CopyFromContainerResult{Content: readCloser{&buf}}, nil
}

func hostConfig(c *Container) *container.HostConfig {
	if c.HostNetwork {
		return &container.HostConfig{NetworkMode: "host"}
	}
	return &container.HostConfig{}
}

type readCloser struct{ *bytes.Buffer }

func (readCloser) Close() error { return nil }
