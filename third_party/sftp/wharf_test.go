package sftp

// Tests of wharf's changes to this package: requests dispatched without worker goroutines,
// packet pages taken only for long packets, and spare pages freed.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rawPacket(typ fxp, body []byte) []byte {
	b := marshalUint32(nil, uint32(1+len(body)))
	b = append(b, byte(typ))
	return append(b, body...)
}

func TestRecvPacketTakesPagesOnlyForLongPackets(t *testing.T) {
	alloc := newAllocator()
	short := rawPacket(sshFxpStat, make([]byte, 100))
	long := rawPacket(sshFxpWrite, make([]byte, 10<<10))

	typ, body, err := recvPacket(bytes.NewReader(short), alloc, 1)
	require.NoError(t, err)
	assert.Equal(t, fxp(sshFxpStat), typ)
	assert.Len(t, body, 100)
	assert.Equal(t, 0, alloc.countUsedPages(), "a short packet takes no page")

	typ, body, err = recvPacket(bytes.NewReader(long), alloc, 2)
	require.NoError(t, err)
	assert.Equal(t, fxp(sshFxpWrite), typ)
	assert.Len(t, body, 10<<10)
	assert.Equal(t, 1, alloc.countUsedPages(), "a long packet is read into a page")
	assert.True(t, alloc.isRequestOrderIDUsed(2))

	// Without the allocator both are read as before.
	_, body, err = recvPacket(bytes.NewReader(long), nil, 0)
	require.NoError(t, err)
	assert.Len(t, body, 10<<10)

	// A packet cut short is still an error, with or without a page.
	_, _, err = recvPacket(bytes.NewReader(long[:5000]), alloc, 3)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, _, err = recvPacket(bytes.NewReader(short[:50]), alloc, 4)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestAllocatorFreesSparePagesOnceQuiet(t *testing.T) {
	alloc := newAllocator()
	defer alloc.Free()
	for range 5 {
		alloc.GetPage(1)
	}
	alloc.ReleasePages(1)
	assert.Equal(t, 5, alloc.countAvailablePages())
	alloc.Lock()
	armed := alloc.trimmer != nil
	alloc.Unlock()
	require.True(t, armed, "released spares arm the trim timer")

	// A page taken since the timer was armed means the session is busy: nothing is freed.
	alloc.GetPage(2)
	alloc.trimSpares()
	assert.Equal(t, 4, alloc.countAvailablePages())
	alloc.ReleasePages(2)

	// Quiet for a whole period: the spares beyond sparePages go.
	alloc.trimSpares()
	assert.Equal(t, sparePages, alloc.countAvailablePages())
	alloc.Lock()
	armed = alloc.trimmer != nil
	alloc.Unlock()
	assert.False(t, armed, "nothing left to trim, no timer")

	// The kept spare is reused.
	alloc.GetPage(3)
	assert.Equal(t, 0, alloc.countAvailablePages())
	alloc.ReleasePages(3)
}

func TestAllocatorTrimTimerFires(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the trim delay")
	}
	alloc := newAllocator()
	defer alloc.Free()
	for range 4 {
		alloc.GetPage(1)
	}
	alloc.ReleasePages(1)
	deadline := time.Now().Add(3 * spareTrimDelay)
	for alloc.countAvailablePages() > sparePages {
		if time.Now().After(deadline) {
			t.Fatalf("%d spare pages still held after %v", alloc.countAvailablePages(), 3*spareTrimDelay)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAllocatorFreeStopsTrimming(t *testing.T) {
	alloc := newAllocator()
	alloc.GetPage(1)
	alloc.GetPage(1)
	alloc.ReleasePages(1)
	alloc.Free()
	alloc.trimSpares() // a timer that fired as Free ran finds nothing to do
	assert.Equal(t, 0, alloc.countAvailablePages())
	alloc.GetPage(2)
	alloc.GetPage(2)
	alloc.ReleasePages(2)
	alloc.Lock()
	armed := alloc.trimmer != nil
	alloc.Unlock()
	assert.False(t, armed, "a freed allocator arms no timer")
}

// TestRequestServerIdleRunsNoGoroutines checks that a served session that is waiting for
// its next request runs only the goroutine that called Serve.
func TestRequestServerIdleRunsNoGoroutines(t *testing.T) {
	for _, withAlloc := range []bool{false, true} {
		cli, srv := net.Pipe()
		var opts []RequestServerOption
		if withAlloc {
			opts = append(opts, WithRSAllocator())
		}
		rs := NewRequestServer(srv, InMemHandler(), opts...)
		done := make(chan error, 1)
		// A label of its own: the previous round's Serve goroutine may still be returning.
		label := fmt.Sprintf("idle-alloc-%v", withAlloc)
		go serveLabelled(rs, label, done)

		require.NoError(t, sendPacket(cli, &sshFxInitPacket{Version: sftpProtocolVersion}))
		typ, _, err := recvPacket(cli, nil, 0)
		require.NoError(t, err)
		require.Equal(t, fxp(sshFxpVersion), typ)
		require.NoError(t, sendPacket(cli, &sshFxpStatPacket{ID: 1, Path: "/"}))
		typ, _, err = recvPacket(cli, nil, 0)
		require.NoError(t, err)
		require.Equal(t, fxp(sshFxpAttrs), typ)

		assert.Equal(t, 1, goroutinesLabelled(t, label), "allocator %v: goroutines of an idle session", withAlloc)
		if withAlloc {
			assert.Equal(t, 0, rs.pktMgr.alloc.countUsedPages()+rs.pktMgr.alloc.countAvailablePages(),
				"an idle session that sent only short requests holds no page")
		}
		require.NoError(t, cli.Close())
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return after the client closed")
		}
	}
}

// slowWriter records how many WriteAt calls run at once.
type slowWriter struct {
	mu       sync.Mutex
	buf      []byte
	now, max atomic.Int32
}

func (w *slowWriter) WriteAt(p []byte, off int64) (int, error) {
	n := w.now.Add(1)
	defer w.now.Add(-1)
	for {
		m := w.max.Load()
		if n <= m || w.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(2 * time.Millisecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := int(off) + len(p); end > len(w.buf) {
		w.buf = append(w.buf, make([]byte, end-len(w.buf))...)
	}
	copy(w.buf[off:], p)
	return len(p), nil
}

type slowWriterHandler struct {
	Handlers
	w *slowWriter
}

func (h slowWriterHandler) Filewrite(*Request) (io.WriterAt, error) { return h.w, nil }

// TestRequestServerWritesOverlapWithinBound sends many writes at once: they run in parallel,
// never more than SftpServerWorkerCount at a time, and the file comes out whole.
func TestRequestServerWritesOverlapWithinBound(t *testing.T) {
	w := &slowWriter{}
	h := InMemHandler()
	h.FilePut = slowWriterHandler{h, w}
	p := clientRequestServerPairWithHandlers(t, h)
	defer p.Close()

	data := make([]byte, 64*1024)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f, err := p.cli.OpenFile("/big", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	require.NoError(t, err)
	p.cli.maxPacket = 1024 // 64 write requests
	p.cli.useConcurrentWrites = true
	_, err = f.ReadFrom(bytes.NewReader(data))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	w.mu.Lock()
	got := w.buf
	w.mu.Unlock()
	assert.True(t, bytes.Equal(data, got), "the file arrives whole")
	assert.Greater(t, w.max.Load(), int32(1), "writes overlap")
	assert.LessOrEqual(t, w.max.Load(), int32(SftpServerWorkerCount), "at most SftpServerWorkerCount writes at once")
}

// funcJob is a job that runs f.
func funcJob(f func()) rwJob { return rwJob{handle: func(orderedRequest) { f() }} }

// TestRWPoolBoundsReusesAndExits runs many jobs through the pool: never more than
// SftpServerWorkerCount at once, on at most that many workers (reused, not one per job), and
// the workers exit once idle for rwLinger.
func TestRWPoolBoundsReusesAndExits(t *testing.T) {
	p := newRWPool()
	var wg sync.WaitGroup
	var spawned, now, max, ran atomic.Int32
	spawn := func(f func()) {
		spawned.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	job := func() {
		n := now.Add(1)
		for {
			m := max.Load()
			if n <= m || max.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(200 * time.Microsecond)
		now.Add(-1)
		ran.Add(1)
	}
	for range 500 {
		p.run(funcJob(job), spawn)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ran.Load() < 500 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, int32(500), ran.Load(), "every job runs")
	assert.LessOrEqual(t, max.Load(), int32(SftpServerWorkerCount), "jobs at once")
	assert.LessOrEqual(t, spawned.Load(), int32(SftpServerWorkerCount), "workers started")

	exited := make(chan struct{})
	go func() { wg.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(rwLinger + 5*time.Second):
		t.Fatal("idle workers did not exit")
	}

	// After they exit, a new job starts a new worker.
	before := spawned.Load()
	done := make(chan struct{})
	p.run(funcJob(func() { close(done) }), spawn)
	<-done
	assert.Equal(t, before+1, spawned.Load())
	p.stop()
	wg.Wait()
}

// TestRWPoolStop: stop lets waiting workers exit at once, without waiting rwLinger.
func TestRWPoolStop(t *testing.T) {
	p := newRWPool()
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	for range 4 {
		p.run(funcJob(func() {}), spawn)
	}
	start := time.Now()
	p.stop()
	wg.Wait()
	assert.Less(t, time.Since(start), rwLinger/2, "workers exit on stop, not after the linger")
}

// TestRequestServerWorkersExitWhenIdle: after a transfer, the read/write workers go away, and
// a closed session leaves none behind.
func TestRequestServerWorkersExitWhenIdle(t *testing.T) {
	cli, srv := net.Pipe()
	rs := NewRequestServer(srv, InMemHandler(), WithRSAllocator())
	done := make(chan error, 1)
	go serveLabelled(rs, "transfer", done)
	c, err := NewClientPipe(cli, cli)
	require.NoError(t, err)
	_, err = c.Stat("/")
	require.NoError(t, err)
	connected := goroutinesLabelled(t, "transfer") // Serve's, no worker yet

	f, err := c.Create("/x")
	require.NoError(t, err)
	_, err = f.Write(make([]byte, 1<<20))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	deadline := time.Now().Add(rwLinger + 5*time.Second)
	n := goroutinesLabelled(t, "transfer")
	for n > connected && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = goroutinesLabelled(t, "transfer")
	}
	assert.LessOrEqual(t, n, connected, "goroutines once the transfer is over")

	require.NoError(t, c.Close())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the client closed")
	}
}

// serveLabelled runs rs.Serve under the pprof label wharf_test=label, which every goroutine it
// starts inherits, and sends its result to done.
func serveLabelled(rs *RequestServer, label string, done chan<- error) {
	pprof.Do(context.Background(), pprof.Labels("wharf_test", label), func(context.Context) {
		done <- rs.Serve()
	})
}

// goroutinesLabelled counts the live goroutines with the pprof label wharf_test=label. Unlike
// runtime.NumGoroutine it does not count other tests' goroutines, which may still be winding
// down (read/write workers linger for rwLinger).
func goroutinesLabelled(t *testing.T, label string) int {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&buf, 1))
	want := fmt.Sprintf("%q:%q", "wharf_test", label)
	n, count := 0, 0
	for _, line := range strings.Split(buf.String(), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "@" {
			count, _ = strconv.Atoi(f[0]) // a new record: its goroutine count
		} else if strings.HasPrefix(line, "# labels: ") && strings.Contains(line, want) {
			n += count
		}
	}
	return n
}

// TestDispatchRunsALoneReadOrWriteInline: with a connection that says whether input is
// waiting, a read or write runs on the dispatching goroutine only when nothing is waiting and
// no other read or write is in progress; otherwise it goes to a worker, as it always does
// without such a connection. Each case starts with a fresh manager, so a job that goes to the
// pool starts a worker (there is no idle one to take it).
func TestDispatchRunsALoneReadOrWriteInline(t *testing.T) {
	type job struct {
		p       requestPacket
		pending bool
		block   chan struct{} // the handler waits for it to close
	}
	run := func(t *testing.T, withPending bool, jobs ...job) (spawned int, doneAtReturn []bool) {
		t.Helper()
		sender := newTestSender()
		s := newPktMgr(sender)
		defer s.stopWorkers()
		var pending atomic.Bool
		if withPending {
			s.inputPending = pending.Load
		}
		var n atomic.Int32
		spawn := func(f func()) { n.Add(1); go f() }
		for _, j := range jobs {
			pending.Store(j.pending)
			var done atomic.Bool
			s.dispatch(s.newOrderedRequest(j.p), func(r orderedRequest) {
				if j.block != nil {
					<-j.block
				}
				done.Store(true)
				s.readyPacket(s.newOrderedResponse(&sshFxpStatusPacket{ID: r.id()}, r.orderID()))
			}, spawn)
			doneAtReturn = append(doneAtReturn, done.Load())
			if j.block != nil {
				defer close(j.block)
			}
		}
		return int(n.Load()), doneAtReturn
	}
	// A packet per dispatch: once its response is sent, the manager gives it back to its
	// pool (packet-pools.go).
	write := func() *sshFxpWritePacket { return &sshFxpWritePacket{ID: 1, Data: []byte("x")} }
	read := func() *sshFxpReadPacket { return &sshFxpReadPacket{ID: 2, Len: 10} }

	if n, done := run(t, true, job{p: write()}); n != 0 || !done[0] {
		t.Errorf("a lone write: %d workers started, done when dispatch returned: %v; want 0, true", n, done[0])
	}
	if n, done := run(t, true, job{p: read()}); n != 0 || !done[0] {
		t.Errorf("a lone read: %d workers started, done when dispatch returned: %v; want 0, true", n, done[0])
	}
	if n, _ := run(t, true, job{p: write(), pending: true}); n != 1 {
		t.Errorf("a write with input waiting: %d workers started, want 1", n)
	}
	if n, _ := run(t, false, job{p: write()}); n != 1 {
		t.Errorf("a write on a connection that cannot tell: %d workers started, want 1", n)
	}
	// The first write is held on its worker; the second, with nothing waiting, still goes
	// to a worker (a second one) because a write is in progress.
	if n, done := run(t, true, job{p: write(), pending: true, block: make(chan struct{})}, job{p: write()}); n != 2 || done[0] {
		t.Errorf("a write while another is in progress: %d workers started, want 2 (first done at return: %v)", n, done[0])
	}
}

// handleFileRecorder is the in-memory handlers, recording what HandleFile returns for the
// Stat and Setstat requests they get.
type handleFileRecorder struct {
	Handlers
	mu      sync.Mutex
	opened  []any
	fstat   []any
	setstat []any
}

func (h *handleFileRecorder) Filewrite(r *Request) (io.WriterAt, error) {
	w, err := h.Handlers.FilePut.Filewrite(r)
	h.mu.Lock()
	h.opened = append(h.opened, w)
	h.mu.Unlock()
	return w, err
}

func (h *handleFileRecorder) Filecmd(r *Request) error {
	if r.Method == "Setstat" {
		h.mu.Lock()
		h.setstat = append(h.setstat, r.HandleFile())
		h.mu.Unlock()
	}
	return h.Handlers.FileCmd.Filecmd(r)
}

func (h *handleFileRecorder) Filelist(r *Request) (ListerAt, error) {
	if r.Method == "Stat" {
		h.mu.Lock()
		h.fstat = append(h.fstat, r.HandleFile())
		h.mu.Unlock()
	}
	return h.Handlers.FileList.Filelist(r)
}

// Change 5: FSTAT and FSETSTAT requests carry what the handle's open returned; STAT and
// SETSTAT by path carry nothing.
func TestRequestHandleFileForFstatAndFsetstat(t *testing.T) {
	rec := &handleFileRecorder{Handlers: InMemHandler()}
	p := clientRequestServerPairWithHandlers(t, Handlers{FileGet: rec.FileGet, FilePut: rec, FileCmd: rec, FileList: rec})
	defer p.Close()
	f, err := p.cli.OpenFile("/f", os.O_WRONLY|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Stat(); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.cli.Stat("/f"); err != nil {
		t.Fatal(err)
	}
	if err := p.cli.Chmod("/f", 0o644); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.opened) != 1 || rec.opened[0] == nil {
		t.Fatalf("opened: %v", rec.opened)
	}
	if len(rec.fstat) != 2 || rec.fstat[0] != rec.opened[0] || rec.fstat[1] != nil {
		t.Errorf("HandleFile for FSTAT then STAT: %v, want [%v <nil>]", rec.fstat, rec.opened[0])
	}
	if len(rec.setstat) != 2 || rec.setstat[0] != rec.opened[0] || rec.setstat[1] != nil {
		t.Errorf("HandleFile for FSETSTAT then SETSTAT: %v, want [%v <nil>]", rec.setstat, rec.opened[0])
	}
}

// TestMaxOpenHandles: with WithMaxOpenHandles(n), the (n+1)th open file or directory handle
// is refused with SSH_FX_FAILURE and a message naming the limit; closing one frees a place.
func TestMaxOpenHandles(t *testing.T) {
	const limit = 5
	h := InMemHandler()
	p := clientRequestServerPairWithHandlers(t, h, WithMaxOpenHandles(limit))
	defer p.Close()
	f, err := p.cli.Create("/f")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, p.cli.Mkdir("/d"))

	var open []io.Closer
	for i := range limit {
		if i%2 == 0 {
			f, err := p.cli.Open("/f")
			require.NoError(t, err, "file handle %d", i)
			open = append(open, f)
		} else {
			d, err := p.cli.opendir(context.Background(), "/d")
			require.NoError(t, err, "directory handle %d", i)
			open = append(open, dirHandle{p.cli, d})
		}
	}
	refused := func(what string, err error) {
		t.Helper()
		var se *StatusError
		if !errors.As(err, &se) {
			t.Fatalf("%s beyond the limit: %v, want a status error", what, err)
		}
		if se.FxCode() != ErrSSHFxFailure || !strings.Contains(err.Error(), fmt.Sprintf("too many open handles (limit %d)", limit)) {
			t.Fatalf("%s beyond the limit: %v, want SSH_FX_FAILURE naming the limit", what, err)
		}
	}
	_, err = p.cli.Open("/f")
	refused("open", err)
	_, err = p.cli.opendir(context.Background(), "/d")
	refused("opendir", err)
	// A refused create reaches no handler: the file is not created.
	_, err = p.cli.Create("/new")
	refused("create", err)
	_, err = p.cli.Stat("/new")
	require.ErrorIs(t, err, os.ErrNotExist)
	// Requests that open no handle still work.
	_, err = p.cli.Stat("/f")
	require.NoError(t, err)

	require.NoError(t, open[0].Close())
	f, err = p.cli.Open("/f")
	require.NoError(t, err, "open after a close")
	open[0] = f
	_, err = p.cli.Open("/f")
	refused("open", err)
	for _, c := range open {
		require.NoError(t, c.Close())
	}
}

type dirHandle struct {
	c      *Client
	handle string
}

func (d dirHandle) Close() error { return d.c.close(d.handle) }

// TestMaxOpenHandlesDefault: without the option there is no cap.
func TestMaxOpenHandlesDefault(t *testing.T) {
	p := clientRequestServerPair(t)
	defer p.Close()
	f, err := p.cli.Create("/f")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	var open []*File
	for i := range 600 {
		f, err := p.cli.Open("/f")
		require.NoError(t, err, "handle %d", i)
		open = append(open, f)
	}
	for _, f := range open {
		require.NoError(t, f.Close())
	}
}

// TestPagesFitTheirPacket: the packets of an ordinary transfer (32 KiB writes, replies to
// 32 KiB reads) take small pages; only longer ones take a page of maxMsgLength; a released
// page goes back to its own size's spares.
func TestPagesFitTheirPacket(t *testing.T) {
	alloc := newAllocator()
	defer alloc.Free()
	handle := make([]byte, 4+64)
	write := append(append(append([]byte{0, 0, 0, 7}, handle...), make([]byte, 8)...), marshalUint32(nil, 32<<10)...)
	write = rawPacket(sshFxpWrite, append(write, make([]byte, 32<<10)...))
	// The body follows the type byte, at the start of the page.
	_, body, err := recvPacket(bytes.NewReader(write), alloc, 1)
	require.NoError(t, err)
	assert.Equal(t, smallPage-1, cap(body), "a 32 KiB write is read into a small page")

	long := rawPacket(sshFxpWrite, make([]byte, 100<<10))
	_, body, err = recvPacket(bytes.NewReader(long), alloc, 2)
	require.NoError(t, err)
	assert.Equal(t, maxMsgLength-1, cap(body), "a 100 KiB write needs a full page")

	read := &sshFxpReadPacket{ID: 1, Len: 32 << 10}
	data := read.getDataSlice(alloc, 3, defaultMaxTxPacket)
	assert.Len(t, data, 32<<10)
	assert.Equal(t, smallPage, cap(data), "the reply to a 32 KiB read fits a small page")
	reply := &sshFxpDataPacket{ID: 1, Length: uint32(len(data)), Data: data}
	b, err := reply.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, unsafe.SliceData(data), unsafe.SliceData(b), "the reply is marshalled in its page")

	alloc.ReleasePages(1)
	alloc.ReleasePages(2)
	alloc.ReleasePages(3)
	alloc.Lock()
	small, big := len(alloc.availableSmall), len(alloc.available)
	alloc.Unlock()
	assert.Equal(t, 2, small)
	assert.Equal(t, 1, big)
	// The spare small page is taken again rather than a new one made.
	again := alloc.getPageFor(4, 1000+dataHeaderLen+4096)
	assert.Equal(t, smallPage, cap(again))
	assert.Equal(t, 2, alloc.countAvailablePages())
}

// countingPages is a PageSource that counts what it lends and gets back.
type countingPages struct {
	mu        sync.Mutex
	lent, got int
	out       map[*byte]bool
	sizes     []int
}

func (c *countingPages) Get(size int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := make([]byte, size)
	c.lent++
	c.sizes = append(c.sizes, size)
	if c.out == nil {
		c.out = map[*byte]bool{}
	}
	c.out[unsafe.SliceData(b)] = true
	return b
}

func (c *countingPages) Put(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out[unsafe.SliceData(b)] && len(b) == SmallPageSize {
		c.got++
		delete(c.out, unsafe.SliceData(b))
	}
}

// TestPageSourceLendsSmallPages: with WithRSPageSource, the small pages of a pipelined
// transfer's requests and replies come from the source and all go back to it, whole, once
// answered; the session keeps none of its own, and long packets still take pages of their
// own.
func TestPageSourceLendsSmallPages(t *testing.T) {
	alloc := newAllocator()
	src := &countingPages{}
	alloc.src = src
	small := alloc.getPageFor(1, 1000)
	long := alloc.getPageFor(2, 100<<10)
	assert.Equal(t, SmallPageSize, len(small))
	assert.Equal(t, maxMsgLength, len(long))
	alloc.ReleasePages(1)
	alloc.ReleasePages(2)
	assert.Equal(t, 1, src.lent, "only the small page is lent")
	assert.Equal(t, 1, src.got, "and given back")
	assert.Equal(t, 0, len(alloc.availableSmall), "the session keeps no small page")
	assert.Equal(t, 1, len(alloc.available), "long pages are the session's own")
	alloc.Free()

	// -allocator would add WithRSAllocator after this test's option, replacing its source.
	defer func(v bool) { *testAllocator = v }(*testAllocator)
	*testAllocator = false
	src = &countingPages{}
	p := clientRequestServerPairWithHandlers(t, InMemHandler(), WithRSPageSource(src))
	defer p.Close()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 13)
	}
	f, err := p.cli.OpenFile("/f", os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	require.NoError(t, err)
	p.cli.useConcurrentWrites = true
	_, err = f.ReadFrom(bytes.NewReader(data))
	require.NoError(t, err)
	_, err = f.Seek(0, io.SeekStart)
	require.NoError(t, err)
	back, err := io.ReadAll(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.True(t, bytes.Equal(data, back), "the file reads back whole")

	src.mu.Lock()
	defer src.mu.Unlock()
	assert.GreaterOrEqual(t, src.lent, 2*(1<<20)/(32<<10), "a page lent for each 32 KiB write and read")
	assert.Equal(t, src.lent, src.got, "every page lent came back once its request was answered")
	for _, n := range src.sizes {
		assert.Equal(t, SmallPageSize, n)
	}
}
