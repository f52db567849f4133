package sftp

import "sync"

// wharf: the packets of the requests and responses a transfer is made of (READ, WRITE,
// DATA, STATUS) come from pools and go back once the response is sent, instead of four
// allocations per request. The packet manager gives them back in maybeSendPackets: by then
// the handler has returned (readyPacket is the last thing a request's handling does), the
// response has been written (and the connection's Write keeps nothing), and the request and
// response leave the manager's queues, so nothing refers to them any more. A pooled packet
// that never reaches that point (a packet made and not sent, a session cut short) is simply
// collected.

var (
	readPacketPool   = sync.Pool{New: func() any { return new(sshFxpReadPacket) }}
	writePacketPool  = sync.Pool{New: func() any { return new(sshFxpWritePacket) }}
	dataPacketPool   = sync.Pool{New: func() any { return new(sshFxpDataPacket) }}
	statusPacketPool = sync.Pool{New: func() any { return new(sshFxpStatusPacket) }}
)

// newDataPacket returns a DATA response for data from the pool.
func newDataPacket(id uint32, data []byte) *sshFxpDataPacket {
	p := dataPacketPool.Get().(*sshFxpDataPacket)
	*p = sshFxpDataPacket{ID: id, Length: uint32(len(data)), Data: data}
	return p
}

// releasePackets gives a request and its response, now sent, back to their pools: the
// caller must be done with both, and nothing else may refer to them.
func releasePackets(req requestPacket, resp responsePacket) {
	switch p := req.(type) {
	case *sshFxpReadPacket:
		*p = sshFxpReadPacket{}
		readPacketPool.Put(p)
	case *sshFxpWritePacket:
		*p = sshFxpWritePacket{}
		writePacketPool.Put(p)
	}
	switch p := resp.(type) {
	case *sshFxpDataPacket:
		*p = sshFxpDataPacket{}
		dataPacketPool.Put(p)
	case *sshFxpStatusPacket:
		*p = sshFxpStatusPacket{}
		statusPacketPool.Put(p)
	}
}
