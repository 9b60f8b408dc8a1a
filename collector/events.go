package collector

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// EventEngine is the part of the Docker Engine API that streams the engine's events; *client.Client
// has it. An engine without it is inspected at every scrape.
type EventEngine interface {
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
}

// DefaultResyncInterval is how often the containers are listed and inspected whole while the
// engine's events are followed: what an event could have missed is caught then.
const DefaultResyncInterval = 5 * time.Minute

// watchedActions are the container events that change what the exporter reports of a container:
// that it exists, runs, restarted, died, is paused, or what it is called.
var watchedActions = []events.Action{events.ActionCreate, events.ActionStart, events.ActionRestart,
	events.ActionDie, events.ActionPause, events.ActionUnPause, events.ActionDestroy, events.ActionRename}

// Event stream timing: how long a subscription may take to be answered, how long events are
// gathered before they are acted on (a restart is die, start and restart within milliseconds),
// and the backoff between subscriptions, from 1 s doubling to its maximum.
const (
	subscribeTimeout = 10 * time.Second
	eventSettle      = 50 * time.Millisecond
	maxResubscribe   = 30 * time.Second
)

// eventWatch follows the engine's events. While it does (up), the containers are inspected only
// when an event names one, on a resync, and when the subscription (re)starts; scrapes and page
// views read what it keeps. When the stream breaks, scrapes inspect as they did before, until
// it is back.
type eventWatch struct {
	d       *dockerSource
	eng     EventEngine
	resync  time.Duration
	started atomic.Bool // Run started it
	up      atomic.Bool
	told    atomic.Bool // that they are not followed was logged, since they last were
	// changed is signalled after each inspection the watch makes: the due reads start then.
	changed chan struct{}
}

// following tells whether the containers are kept current by the engine's events.
func (w *eventWatch) following() bool { return w != nil && w.up.Load() }

// running tells whether the watch was started.
func (w *eventWatch) running() bool { return w != nil && w.started.Load() }

// run subscribes until ctx ends, again after every break: at once after a stream that was
// followed, else after a backoff.
func (w *eventWatch) run(ctx context.Context) {
	wait := firstRetry
	for ctx.Err() == nil {
		followed, err := w.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		w.setUp(false, err)
		if followed {
			wait = firstRetry
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxResubscribe)
	}
}

// follow subscribes, resyncs, and acts on the events until the stream breaks or a resync fails;
// followed tells whether it got that far.
func (w *eventWatch) follow(ctx context.Context) (followed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := w.subscribe(ctx)
	if err != nil {
		return false, err
	}
	// Events from here on are delivered: a round now misses nothing.
	if r := w.d.roundNow(ctx); r.err != nil {
		return false, r.err
	}
	w.setUp(true, nil)
	w.notify()
	resync := time.NewTicker(w.resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-stream.Err:
			if err == nil {
				err = errors.New("the event stream ended")
			}
			return true, err
		case m := <-stream.Messages:
			w.act(ctx, m, stream.Messages)
		case <-resync.C:
			if r := w.d.roundNow(ctx); r.err != nil {
				return true, r.err
			}
			w.notify()
		}
	}
}

// subscribe asks for the container events of interest; an engine that does not answer within
// subscribeTimeout is not followed.
func (w *eventWatch) subscribe(ctx context.Context) (client.EventsResult, error) {
	filters := make(client.Filters).Add("type", string(events.ContainerEventType))
	for _, a := range watchedActions {
		filters = filters.Add("event", string(a))
	}
	done := make(chan client.EventsResult, 1)
	sub, cancel := context.WithCancel(ctx)
	go func() { done <- w.eng.Events(sub, client.EventsListOptions{Filters: filters}) }()
	select {
	case res := <-done:
		select {
		case err := <-res.Err: // the subscription itself failed
			cancel()
			if err == nil {
				err = errors.New("the event stream ended at once")
			}
			return client.EventsResult{}, err
		default:
		}
		context.AfterFunc(ctx, cancel)
		return res, nil
	case <-time.After(subscribeTimeout):
		cancel()
		return client.EventsResult{}, errors.New("the engine did not answer the event subscription within " + subscribeTimeout.String())
	case <-ctx.Done():
		cancel()
		return client.EventsResult{}, ctx.Err()
	}
}

// act handles one event and those that follow it within eventSettle: a container the exporter
// reads that started, died, restarted or was paused is inspected alone; anything else that concerns it — a
// Rancher container created, removed or renamed, or one discovery left out — takes a whole
// round, since it may change which containers are read.
func (w *eventWatch) act(ctx context.Context, first events.Message, more <-chan events.Message) {
	ids, whole := map[string]bool{}, false
	take := func(m events.Message) {
		if !w.concerns(m) {
			return
		}
		switch {
		case w.d.watches(m.Actor.ID) && m.Action != events.ActionCreate && m.Action != events.ActionDestroy && m.Action != events.ActionRename:
			ids[m.Actor.ID] = true
			if m.Action == events.ActionDie {
				w.d.died(m.Actor.ID)
			}
		default:
			whole = true
		}
	}
	take(first)
	settle := time.After(eventSettle)
gather:
	for {
		select {
		case m := <-more:
			take(m)
		case <-settle:
			break gather
		case <-ctx.Done():
			return
		}
	}
	switch {
	case whole:
		w.d.roundNow(ctx)
	case len(ids) > 0:
		w.d.inspectSome(ctx, ids)
	default:
		return
	}
	w.notify()
}

// concerns tells whether an event is about a container the exporter reads or might read: one it
// reads, one named by --rancher.container, or (discovering) one of a rancher/rancher image that is
// not a rotation's helper.
func (w *eventWatch) concerns(m events.Message) bool {
	if m.Type != events.ContainerEventType {
		return false
	}
	attrs := m.Actor.Attributes
	if w.d.watches(m.Actor.ID) {
		return true
	}
	for _, name := range w.d.cfg.Containers {
		if name == attrs["name"] || name == m.Actor.ID || len(name) >= 12 && strings.HasPrefix(m.Actor.ID, name) {
			return true
		}
	}
	return len(w.d.cfg.Containers) == 0 && w.d.cfg.Discover && attrs[rancher.RoleLabel] != rancher.RoleHelper && rancher.IsRancherImage(attrs["image"])
}

// notify wakes the reads after an inspection.
func (w *eventWatch) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// setUp records whether the events are followed, and logs when that changes — also the first
// time they cannot be, once.
func (w *eventWatch) setUp(up bool, err error) {
	was := w.up.Swap(up)
	switch {
	case up && !was:
		w.told.Store(false)
		w.d.logger.Info("following the Docker engine's events: containers are inspected when they change")
	case !up && !w.told.Swap(true):
		w.d.logger.Warn("not following the Docker engine's events: containers are inspected at every scrape until the event stream is back", "err", err)
	}
}
