package scripting

import (
	"context"
	"sync"
)

// pool holds up to max Lua states. A state is created on demand and kept for reuse; its
// environment is rebuilt for every run, so reuse carries nothing over. A state serves one run
// at a time (an LState is not safe for concurrent use).
type pool struct {
	slots chan struct{} // one token per state in use: bounds parallel runs
	newVM func() *vm

	mu     sync.Mutex
	idle   []*vm
	closed bool
}

func newPool(max int, newVM func() *vm) *pool {
	return &pool{slots: make(chan struct{}, max), newVM: newVM}
}

// get returns a state, waiting for one to be free until ctx is done.
func (p *pool) get(ctx context.Context) (*vm, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.take()
}

// tryGet returns a state if one is free at once.
func (p *pool) tryGet() (*vm, bool, error) {
	select {
	case p.slots <- struct{}{}:
		v, err := p.take()
		return v, true, err
	default:
		return nil, false, nil
	}
}

// take returns an idle state or a new one; the caller holds a slot.
func (p *pool) take() (*vm, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.slots
		return nil, errClosed
	}
	if n := len(p.idle); n > 0 {
		v := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return v, nil
	}
	p.mu.Unlock()
	return p.newVM(), nil
}

// put returns a state after a run; after close it is closed instead.
func (p *pool) put(v *vm) {
	p.mu.Lock()
	if p.closed || v.broken {
		p.mu.Unlock()
		v.close()
	} else {
		p.idle = append(p.idle, v)
		p.mu.Unlock()
	}
	<-p.slots
}

// close closes the idle states; states in use are closed when they come back.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, v := range p.idle {
		v.close()
	}
	p.idle = nil
}
