package actors

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func countWorkers() int { return len(workerStacks()) }

// idleWorkers counts workers waiting for a run.
func idleWorkers() int {
	n := 0
	for _, stack := range workerStacks() {
		if strings.Contains(stack, "[select") {
			n++
		}
	}
	return n
}

func workerStacks() []string {
	buf := make([]byte, 1<<20)
	var stacks []string
	for _, stack := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(stack, "(*pooledDispatcher).worker") {
			stacks = append(stacks, stack)
		}
	}
	return stacks
}

// Runs that block (an actor waiting on the journal) must not hold up others:
// a busy pool starts another worker.
func TestPooledDispatcherRunsBlockedRunsSideBySide(t *testing.T) {
	d := newPooledDispatcher()
	const runs = 50
	release := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(runs)
	done.Add(runs)
	for range runs {
		d.Schedule(func() {
			started.Done()
			<-release
			done.Done()
		})
	}
	started.Wait() // every run is under way at once
	close(release)
	done.Wait()
	d.close() // waits for every worker's Done; its stack may linger an instant
	require.Eventually(t, func() bool { return countWorkers() == 0 }, roomyTimeout, time.Millisecond, "close ends every worker")
}

// Runs one after another reuse one worker and its grown stack.
func TestPooledDispatcherReusesIdleWorkers(t *testing.T) {
	d := newPooledDispatcher()
	defer d.close()
	var ran atomic.Int32
	for range 100 {
		finished := make(chan struct{})
		d.Schedule(func() { ran.Add(1); close(finished) })
		<-finished
		require.Eventually(t, func() bool { return idleWorkers() == 1 }, roomyTimeout, time.Millisecond, "the worker waits for the next run")
	}
	assert.Equal(t, int32(100), ran.Load())
	assert.Equal(t, 1, countWorkers())
}
