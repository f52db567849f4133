package sftp

import (
	"encoding"
	"sort"
	"sync"
	"sync/atomic"
)

// The goal of the packetManager is to keep the outgoing packets in the same
// order as the incoming as is requires by section 7 of the RFC.

// wharf: the packetManager no longer keeps goroutines of its own. Upstream it started a
// controller, a dispatcher, one command worker and SftpServerWorkerCount read/write workers
// for every session, 11 goroutines that an idle session kept for its whole life, and every
// request crossed three goroutines on its way to the response. Here the caller of readyPacket
// sends the responses that are due, under a mutex, and dispatch runs other requests on the
// receiving goroutine and reads and writes on workers that exit when idle (rwpool.go).
type packetManager struct {
	mu sync.Mutex
	// wharf: slices of the two concrete types, where upstream boxed every request and
	// response into an orderedPacket interface (two allocations per request).
	incoming    []orderedRequest
	outgoing    []orderedResponse
	sender      packetSender // connection object
	working     *sync.WaitGroup
	packetCount uint32
	// rw runs the reads and writes.
	rw *rwPool
	// rwBusy counts the reads and writes running on rw's workers.
	rwBusy atomic.Int32
	// inputPending, if set, reports whether another request has arrived and is waiting to
	// be read: see dispatch.
	inputPending func() bool
	// it is not nil if the allocator is enabled
	alloc *allocator
}

type packetSender interface {
	sendPacket(encoding.BinaryMarshaler) error
}

func newPktMgr(sender packetSender) *packetManager {
	s := &packetManager{
		sender:  sender,
		working: &sync.WaitGroup{},
		rw:      newRWPool(),
	}
	return s
}

// // packet ordering
func (s *packetManager) newOrderID() uint32 {
	s.packetCount++
	return s.packetCount
}

// returns the next orderID without incrementing it.
// This is used before receiving a new packet, with the allocator enabled, to associate
// the slice allocated for the received packet with the orderID that will be used to mark
// the allocated slices for reuse once the request is served
func (s *packetManager) getNextOrderID() uint32 {
	return s.packetCount + 1
}

type orderedRequest struct {
	requestPacket
	orderid uint32
}

func (s *packetManager) newOrderedRequest(p requestPacket) orderedRequest {
	return orderedRequest{requestPacket: p, orderid: s.newOrderID()}
}
func (p orderedRequest) orderID() uint32 { return p.orderid }

type orderedResponse struct {
	responsePacket
	orderid uint32
}

func (s *packetManager) newOrderedResponse(p responsePacket, id uint32,
) orderedResponse {
	return orderedResponse{responsePacket: p, orderid: id}
}
func (p orderedResponse) orderID() uint32 { return p.orderid }

type orderedPacket interface {
	id() uint32
	orderID() uint32
}

// insertOrdered adds p to o, keeping o sorted by order id.
func insertOrdered[T orderedPacket](o []T, p T) []T {
	i := sort.Search(len(o), func(i int) bool { return o[i].orderID() > p.orderID() })
	var zero T
	o = append(o, zero)
	copy(o[i+1:], o[i:])
	o[i] = p
	return o
}

// // packet registry
// register incoming packets to be handled
func (s *packetManager) incomingPacket(pkt orderedRequest) {
	s.working.Add(1)
	s.mu.Lock()
	s.incoming = insertOrdered(s.incoming, pkt)
	s.mu.Unlock()
}

// readyPacket registers a response and sends every response that is now due, in the order
// of the requests.
func (s *packetManager) readyPacket(pkt orderedResponse) {
	s.mu.Lock()
	s.outgoing = insertOrdered(s.outgoing, pkt)
	s.maybeSendPackets()
	s.mu.Unlock()
	s.working.Done()
}

// stopWorkers lets the read/write workers exit once they are done.
func (s *packetManager) stopWorkers() { s.rw.stop() }

// close waits until the responses of the requests in progress are sent.
func (s *packetManager) close() {
	s.working.Wait()
}

// inputPender is a connection that can say whether input is waiting to be read, as
// wharf's x/crypto/ssh channel can.
type inputPender interface {
	InputPending() bool
}

// dispatch runs one request with handle. Reads and writes run on workers (started with
// spawn when none is waiting), at most SftpServerWorkerCount at once, so that a transfer's
// requests overlap; every other request runs on the caller's goroutine, in order, and a close
// first waits for the reads and writes before it. Call stopWorkers after the last dispatch.
//
// wharf: a read or write runs on the caller's goroutine too when there is nothing for it to
// overlap with: no read or write in progress, and no other request waiting in the
// connection. That is a client waiting for each reply before it sends the next request (a
// small file's one write or read, or a client that does not pipeline); waking a worker for
// it cost more than a small write. A transfer's pipelined requests find the next ones
// waiting, and go to the workers as before.
func (s *packetManager) dispatch(pkt orderedRequest, handle func(orderedRequest),
	spawn func(func())) {
	switch p := pkt.requestPacket.(type) {
	case *sshFxpReadPacket, *sshFxpWritePacket:
		s.incomingPacket(pkt)
		if s.inputPending != nil && s.rwBusy.Load() == 0 && !s.inputPending() {
			handle(pkt)
			return
		}
		s.rwBusy.Add(1)
		// wharf: a job value rather than a closure, which would be allocated per request.
		s.rw.run(rwJob{handle: handle, pkt: pkt, busy: &s.rwBusy}, spawn)
		return
	case *sshFxpClosePacket:
		// wait for reads/writes to finish when file is closed
		// incomingPacket() call must occur after this
		s.working.Wait()
	case *sshFxpExtendedPacket:
		// wharf: a copy reads and writes the files itself, after the writes sent before it.
		if _, ok := p.SpecificPacket.(*sshFxpExtendedPacketCopyData); ok {
			s.working.Wait()
		}
	}
	s.incomingPacket(pkt)
	handle(pkt)
}

// send as many packets as are ready; the caller holds s.mu.
func (s *packetManager) maybeSendPackets() {
	for {
		if len(s.outgoing) == 0 || len(s.incoming) == 0 {
			debug("break! -- outgoing: %v; incoming: %v",
				len(s.outgoing), len(s.incoming))
			break
		}
		out := s.outgoing[0]
		in := s.incoming[0]
		// debug("incoming: %v", ids(s.incoming))
		// debug("outgoing: %v", ids(s.outgoing))
		if in.orderID() == out.orderID() {
			debug("Sending packet: %v", out.id())
			s.sender.sendPacket(out.responsePacket)
			if s.alloc != nil {
				// mark for reuse the slices allocated for this request
				s.alloc.ReleasePages(in.orderID())
			}
			// wharf: the request and its response are done with; the hot ones go back to
			// their pools (packet-pools.go).
			releasePackets(in.requestPacket, out.responsePacket)
			// pop off heads
			copy(s.incoming, s.incoming[1:])                  // shift left
			s.incoming[len(s.incoming)-1] = orderedRequest{}  // clear last
			s.incoming = s.incoming[:len(s.incoming)-1]       // remove last
			copy(s.outgoing, s.outgoing[1:])                  // shift left
			s.outgoing[len(s.outgoing)-1] = orderedResponse{} // clear last
			s.outgoing = s.outgoing[:len(s.outgoing)-1]       // remove last
		} else {
			break
		}
	}
}

// func oids(o []orderedPacket) []uint32 {
// 	res := make([]uint32, 0, len(o))
// 	for _, v := range o {
// 		res = append(res, v.orderId())
// 	}
// 	return res
// }
// func ids(o []orderedPacket) []uint32 {
// 	res := make([]uint32, 0, len(o))
// 	for _, v := range o {
// 		res = append(res, v.id())
// 	}
// 	return res
// }
