package images

import (
	"container/list"
	"context"
	"sync"
)

// gate lets n jobs run at once and queues the rest in arrival order. A buffered
// channel would bound them too, but the order in which blocked senders win is not
// something the language promises, and a photo uploaded first should be done first.
type gate struct {
	mu    sync.Mutex
	free  int
	queue list.List // of chan struct{}, closed when that waiter is handed a slot
}

func newGate(n int) *gate { return &gate{free: n} }

// acquire waits for a slot until ctx ends.
func (g *gate) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	if g.free > 0 && g.queue.Len() == 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	ready := make(chan struct{})
	e := g.queue.PushBack(ready)
	g.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		select {
		case <-ready:
			// Handed a slot while giving up: pass it on.
			g.mu.Unlock()
			g.release()
		default:
			g.queue.Remove(e)
			g.mu.Unlock()
		}
		return ctx.Err()
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if front := g.queue.Front(); front != nil {
		close(g.queue.Remove(front).(chan struct{}))
		return
	}
	g.free++
}

// waiting is how many jobs are queued, for tests and metrics.
func (g *gate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.queue.Len()
}
