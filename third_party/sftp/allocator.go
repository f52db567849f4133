package sftp

import (
	"sync"
	"time"
)

// wharf: spare pages are freed when the session stops taking them. Upstream kept every page
// until the session ended, so a session held the pages of its busiest moment (64 pages,
// 16 MiB, after one pipelined transfer) for as long as it stayed connected.
const (
	// sparePages is how many released pages a quiet session keeps for its next request.
	sparePages = 1
	// spareTrimDelay is how long no page may be taken before the spares beyond sparePages
	// are freed.
	spareTrimDelay = 2 * time.Second
)

// smallPage is the size of the pages for the packets of ordinary transfers: a 32 KiB write
// request, or the reply to a 32 KiB read, with its header and a handle of up to 1 KiB.
//
// wharf: upstream had one page size, maxMsgLength (256 KiB), for every packet. A pipelined
// transfer (64 requests of 32 KiB in flight, as OpenSSH's sftp and most clients send) then
// kept 64 × 256 KiB = 16 MiB of pages live in the heap, about 14 of them never written, and
// the garbage collector let the heap grow to twice that before collecting.
const smallPage = 33 << 10

// SmallPageSize is the size of the pages a PageSource lends (wharf).
const SmallPageSize = smallPage

// PageSource lends an allocator its pages of SmallPageSize bytes (wharf; see
// WithRSPageSource). Get returns a slice of length size; Put takes back a page once its
// request is answered. Pages of other sizes, and the pages of requests still in progress
// when the session ends, are never given back.
type PageSource interface {
	Get(size int) []byte
	Put(page []byte)
}

type allocator struct {
	sync.Mutex
	available      [][]byte // pages of maxMsgLength
	availableSmall [][]byte // pages of smallPage
	// map key is the request order. wharf: the pages of a request are a value with room for
	// one page (a request takes at most one in practice), where upstream appended to a
	// new slice per request.
	used map[uint32]usedPages

	gets     uint64      // pages handed out so far
	trimGets uint64      // gets when the trim timer was last armed
	trimmer  *time.Timer // armed while there are spares beyond sparePages
	freed    bool

	src PageSource // lends the small pages; nil: availableSmall keeps them
}

// usedPages are the pages one request took.
type usedPages struct {
	first []byte
	more  [][]byte
}

func (u usedPages) add(page []byte) usedPages {
	if u.first == nil {
		u.first = page
	} else {
		u.more = append(u.more, page)
	}
	return u
}

func (u usedPages) count() int {
	if u.first == nil {
		return 0
	}
	return 1 + len(u.more)
}

func newAllocator() *allocator {
	return &allocator{
		// micro optimization: initialize available pages with an initial capacity
		available: make([][]byte, 0, SftpServerWorkerCount*2),
		used:      make(map[uint32]usedPages),
	}
}

// GetPage returns a previously allocated and unused []byte or create a new one.
// The slice have a fixed size = maxMsgLength, this value is suitable for both
// receiving new packets and reading the files to serve
func (a *allocator) GetPage(requestOrderID uint32) []byte {
	return a.getPage(requestOrderID, maxMsgLength)
}

// getPageFor returns a page of at least size bytes: a small one when size fits.
func (a *allocator) getPageFor(requestOrderID uint32, size int) []byte {
	if size <= smallPage {
		return a.getPage(requestOrderID, smallPage)
	}
	return a.getPage(requestOrderID, maxMsgLength)
}

func (a *allocator) getPage(requestOrderID uint32, size int) []byte {
	a.Lock()
	defer a.Unlock()

	var result []byte
	if size == smallPage && a.src != nil {
		result = a.src.Get(smallPage)
		a.used[requestOrderID] = a.used[requestOrderID].add(result)
		a.gets++
		return result
	}

	// get an available page and remove it from the available ones.
	list := &a.available
	if size == smallPage {
		list = &a.availableSmall
	}
	if n := len(*list); n > 0 {
		result = (*list)[n-1]
		(*list)[n-1] = nil    // clear out the internal pointer
		*list = (*list)[:n-1] // truncate the slice
	}

	// no preallocated slice found, just allocate a new one
	if result == nil {
		result = make([]byte, size)
	}

	// put result in used pages
	a.used[requestOrderID] = a.used[requestOrderID].add(result)
	a.gets++

	return result
}

// release puts a page back with the available ones of its size; the caller holds a.Mutex.
func (a *allocator) release(p []byte) {
	if cap(p) == smallPage && a.src != nil {
		a.src.Put(p)
		return
	}
	if cap(p) == smallPage {
		a.availableSmall = append(a.availableSmall, p)
	} else {
		a.available = append(a.available, p)
	}
}

// ReleasePages marks unused all pages in use for the given requestID
func (a *allocator) ReleasePages(requestOrderID uint32) {
	a.Lock()
	defer a.Unlock()

	if used, ok := a.used[requestOrderID]; ok {
		if used.first != nil {
			a.release(used.first)
		}
		for _, p := range used.more {
			a.release(p)
		}
	}
	delete(a.used, requestOrderID)
	if (len(a.available) > sparePages || len(a.availableSmall) > sparePages) && a.trimmer == nil && !a.freed {
		a.trimGets = a.gets
		a.trimmer = time.AfterFunc(spareTrimDelay, a.trimSpares)
	}
}

// trimSpares frees the spare pages beyond sparePages if no page was taken since the timer
// was armed, and otherwise waits another spareTrimDelay.
func (a *allocator) trimSpares() {
	a.Lock()
	defer a.Unlock()

	if a.freed {
		return
	}
	if a.gets != a.trimGets {
		a.trimGets = a.gets
		a.trimmer.Reset(spareTrimDelay)
		return
	}
	if len(a.available) > sparePages {
		clear(a.available[sparePages:])
		a.available = a.available[:sparePages]
	}
	if len(a.availableSmall) > sparePages {
		clear(a.availableSmall[sparePages:])
		a.availableSmall = a.availableSmall[:sparePages]
	}
	a.trimmer = nil
}

// Free removes all the used and available pages.
// Call this method when the allocator is not needed anymore
func (a *allocator) Free() {
	a.Lock()
	defer a.Unlock()

	a.available = nil
	a.availableSmall = nil
	a.used = make(map[uint32]usedPages)
	a.freed = true
	if a.trimmer != nil {
		a.trimmer.Stop()
		a.trimmer = nil
	}
}

func (a *allocator) countUsedPages() int {
	a.Lock()
	defer a.Unlock()

	num := 0
	for _, p := range a.used {
		num += p.count()
	}
	return num
}

func (a *allocator) countAvailablePages() int {
	a.Lock()
	defer a.Unlock()

	return len(a.available) + len(a.availableSmall)
}

func (a *allocator) isRequestOrderIDUsed(requestOrderID uint32) bool {
	a.Lock()
	defer a.Unlock()

	_, ok := a.used[requestOrderID]
	return ok
}
