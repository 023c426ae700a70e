package actors

import (
	"context"
	"slices"
	"sync"

	"github.com/orderd/orderd/order"
)

// fakeJournal is an in-memory journal whose Append can be intercepted by a
// function field: small enough to see exactly what each fault does.
type fakeJournal struct {
	mu     sync.Mutex
	events []order.Event
	loads  int

	// beforeAppend, when set, runs before the event is stored. Returning
	// written=false leaves the event out of the log; err is Append's result.
	beforeAppend func(ctx context.Context, ev order.Event) (written bool, err error)
}

var _ order.Journal = (*fakeJournal)(nil)

func (j *fakeJournal) Append(ctx context.Context, ev order.Event) error {
	written, err := true, error(nil)
	if j.beforeAppend != nil {
		written, err = j.beforeAppend(ctx, ev)
	}
	if written {
		j.mu.Lock()
		j.events = append(j.events, ev)
		j.mu.Unlock()
	}
	return err
}

func (j *fakeJournal) Replay(_ context.Context, fn func(order.Event) error) (order.ReplayStats, error) {
	events := j.all()
	for _, ev := range events {
		if err := fn(ev); err != nil {
			return order.ReplayStats{Records: len(events)}, err
		}
	}
	return order.ReplayStats{Records: len(events)}, nil
}

func (j *fakeJournal) Load(_ context.Context, id string) ([]order.Event, error) {
	j.mu.Lock()
	j.loads++
	j.mu.Unlock()
	var out []order.Event
	for _, ev := range j.all() {
		if ev.OrderID == id {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (j *fakeJournal) Close() error { return nil }

func (j *fakeJournal) all() []order.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

func (j *fakeJournal) of(id string) []order.Event {
	return slices.DeleteFunc(j.all(), func(ev order.Event) bool { return ev.OrderID != id })
}
