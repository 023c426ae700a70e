package actors

import (
	"sync"
	"time"
)

// Mailbox runs: protoactor's default dispatcher starts a goroutine every time
// a mailbox goes from idle to busy, which for orderd is every command (an
// order rarely has two queued). A fresh goroutine starts on a small stack and
// grows it on each run (newstack and copystack were ~4% of the server's CPU
// under load). The pool below keeps goroutines whose stacks have grown and
// hands them the next mailbox run.
const (
	// dispatcherThroughput is how many messages a mailbox run handles
	// before yielding the processor: protoactor's default.
	dispatcherThroughput = 300
	// dispatcherWorkerIdle is how long a worker waits for another mailbox
	// run before it exits, so that a burst's workers do not stay forever.
	dispatcherWorkerIdle = 5 * time.Second
)

// pooledDispatcher runs mailbox runs on idle workers, starting a new worker
// when none is idle: as many run at once as protoactor's own dispatcher
// would, since a run blocks for as long as its actor waits on the journal.
type pooledDispatcher struct {
	work    chan func() // unbuffered: a send succeeds only if a worker is idle
	stop    chan struct{}
	workers sync.WaitGroup
}

func newPooledDispatcher() *pooledDispatcher {
	return &pooledDispatcher{work: make(chan func()), stop: make(chan struct{})}
}

// Schedule implements actor.Dispatcher.
func (d *pooledDispatcher) Schedule(run func()) {
	select {
	case d.work <- run:
	default:
		d.workers.Add(1)
		go d.worker(run)
	}
}

// Throughput implements actor.Dispatcher.
func (d *pooledDispatcher) Throughput() int { return dispatcherThroughput }

func (d *pooledDispatcher) worker(run func()) {
	defer d.workers.Done()
	idle := time.NewTimer(dispatcherWorkerIdle)
	defer idle.Stop()
	for {
		run()
		idle.Reset(dispatcherWorkerIdle)
		select {
		case run = <-d.work:
		case <-idle.C:
			return
		case <-d.stop:
			return
		}
	}
}

// close ends the idle workers and waits for the busy ones to finish their
// run; the actor system must be shut down first, so that nothing more is
// scheduled.
func (d *pooledDispatcher) close() {
	close(d.stop)
	d.workers.Wait()
}
