package sftp

import (
	"sync"
	"sync/atomic"
	"time"
)

// wharf: reads and writes run on a pool of workers started when needed. Starting a goroutine
// per request cost 5% of the server's CPU on a 1 GiB transfer (mostly growing each new
// goroutine's stack through the handler's calls); keeping SftpServerWorkerCount workers for
// the session's life is what an idle session could not afford.

// rwLinger is how long a worker waits for its next request before it exits.
const rwLinger = time.Second

// rwPool runs jobs on at most SftpServerWorkerCount workers at once. A job goes to a waiting
// worker if there is one, else to a new worker; a worker that gets no job for rwLinger, or
// finds the pool stopped, exits.
type rwPool struct {
	slots chan struct{} // one per job in progress
	jobs  chan rwJob    // jobs promised to waiting workers
	done  chan struct{} // closed by stop
	once  sync.Once

	mu sync.Mutex
	// idle counts the waiting workers not yet promised a job. Waiting workers always number
	// idle plus the jobs in the channel.
	idle int
}

func newRWPool() *rwPool {
	return &rwPool{
		slots: make(chan struct{}, SftpServerWorkerCount),
		jobs:  make(chan rwJob, SftpServerWorkerCount),
		done:  make(chan struct{}),
	}
}

// run starts job on a worker, first waiting while SftpServerWorkerCount jobs are in progress;
// spawn starts a new worker's goroutine.
func (p *rwPool) run(job rwJob, spawn func(func())) {
	p.slots <- struct{}{} // the worker that runs job gives it back once it waits again
	p.mu.Lock()
	if p.idle > 0 {
		p.idle--
		p.mu.Unlock()
		p.jobs <- job // never blocks: the channel holds at most one job per waiting worker
		return
	}
	p.mu.Unlock()
	first := job // captured here, so that only a spawn allocates
	spawn(func() { p.work(first) })
}

// stop makes waiting workers exit once the jobs promised to them are done. Call it after the
// last run.
func (p *rwPool) stop() {
	p.once.Do(func() { close(p.done) })
}

// rwJob is one read or write for a worker. It is a value rather than a closure so that
// handing a request to a worker allocates nothing.
type rwJob struct {
	handle func(orderedRequest)
	pkt    orderedRequest
	busy   *atomic.Int32 // if not nil, decremented once handle returns
}

func (j rwJob) run() {
	if j.busy != nil {
		defer j.busy.Add(-1)
	}
	j.handle(j.pkt)
}

func (p *rwPool) work(job rwJob) {
	t := time.NewTimer(rwLinger)
	defer t.Stop()
	for ok := true; ok; {
		job.run()
		job, ok = p.next(t)
	}
}

// next gives back the worker's slot and waits for its next job; false means exit. The worker
// counts as waiting before its slot is free, so run, once it has the slot, finds it: there
// are never more workers than slots.
func (p *rwPool) next(t *time.Timer) (rwJob, bool) {
	p.mu.Lock()
	p.idle++
	p.mu.Unlock()
	<-p.slots
	t.Reset(rwLinger)
	select {
	case job := <-p.jobs:
		return job, true
	case <-t.C:
	case <-p.done:
	}
	p.mu.Lock()
	if p.idle > 0 {
		p.idle--
		p.mu.Unlock()
		return rwJob{}, false
	}
	p.mu.Unlock()
	// Every waiting worker, this one included, has been promised a job: take one.
	return <-p.jobs, true
}
