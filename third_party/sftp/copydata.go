package sftp

import (
	"context"
	"errors"
	"io"
)

// The copy-data extension (OpenSSH's PROTOCOL, section 4.10; wharf): the server copies bytes
// from one open handle to another, so a client copies a file on the server without sending
// it twice over the network. OpenSSH's sftp (9.0 and later) uses it for its cp command.
const extCopyData = "copy-data"

// copyDataChunk is how much one step of a copy reads and then writes.
const copyDataChunk = 256 << 10

// sshFxpExtendedPacketCopyData is a copy-data request.
type sshFxpExtendedPacketCopyData struct {
	ID              uint32
	ExtendedRequest string
	ReadHandle      string
	ReadOffset      uint64
	ReadLength      uint64 // 0: until the end of the file
	WriteHandle     string
	WriteOffset     uint64
}

func (p *sshFxpExtendedPacketCopyData) id() uint32     { return p.ID }
func (p *sshFxpExtendedPacketCopyData) readonly() bool { return false }

func (p *sshFxpExtendedPacketCopyData) UnmarshalBinary(b []byte) error {
	var err error
	if p.ID, b, err = unmarshalUint32Safe(b); err != nil {
		return err
	} else if p.ExtendedRequest, b, err = unmarshalStringSafe(b); err != nil {
		return err
	} else if p.ReadHandle, b, err = unmarshalStringSafe(b); err != nil {
		return err
	} else if p.ReadOffset, b, err = unmarshalUint64Safe(b); err != nil {
		return err
	} else if p.ReadLength, b, err = unmarshalUint64Safe(b); err != nil {
		return err
	} else if p.WriteHandle, b, err = unmarshalStringSafe(b); err != nil {
		return err
	} else if p.WriteOffset, _, err = unmarshalUint64Safe(b); err != nil {
		return err
	}
	return nil
}

// respond: the plain Server does not copy.
func (p *sshFxpExtendedPacketCopyData) respond(*Server) responsePacket {
	return statusFromError(p.ID, ErrSSHFxOpUnsupported)
}

var errCopyDataOffset = errors.New("copy-data: offset or length out of range")

// copyData copies through the handles' own ReaderAt and WriterAt, so that whatever a
// handler does for reads and writes (permissions checked at open, quotas, throttling,
// atomic uploads) applies to the copy as it would to the client's own reads and writes.
// A copy that reaches the end of the file before the length asked answers EOF, as OpenSSH's
// server does; one of length 0 copies to the end and answers OK.
func (rs *RequestServer) copyData(ctx context.Context, pkt *sshFxpExtendedPacketCopyData) responsePacket {
	src, ok := rs.getRequest(pkt.ReadHandle)
	if !ok {
		return statusFromError(pkt.ID, EBADF)
	}
	dst, ok := rs.getRequest(pkt.WriteHandle)
	if !ok {
		return statusFromError(pkt.ID, EBADF)
	}
	if pkt.ReadHandle == pkt.WriteHandle || src.Filepath == dst.Filepath {
		// As OpenSSH's server: a copy onto the file it reads could read what it writes, and
		// grow the file until the disk or the quota is full.
		return statusFromError(pkt.ID, errors.New("copy-data: the source and the target are the same file"))
	}
	var rd io.ReaderAt = src.getReaderAt()
	if rd == nil {
		if rw := src.getWriterAtReaderAt(); rw != nil {
			rd = rw
		}
	}
	var wr io.WriterAt = dst.getWriterAt()
	if wr == nil {
		if rw := dst.getWriterAtReaderAt(); rw != nil {
			wr = rw
		}
	}
	if rd == nil || wr == nil {
		return statusFromError(pkt.ID, errors.New("copy-data: the handles must be a file open for reading and one open for writing"))
	}
	const maxOffset = 1 << 62
	if pkt.ReadOffset > maxOffset || pkt.ReadLength > maxOffset || pkt.WriteOffset > maxOffset {
		return statusFromError(pkt.ID, errCopyDataOffset)
	}
	roff, woff := int64(pkt.ReadOffset), int64(pkt.WriteOffset)
	left, toEOF := int64(pkt.ReadLength), pkt.ReadLength == 0
	buf := make([]byte, copyDataChunk)
	for toEOF || left > 0 {
		if err := ctx.Err(); err != nil {
			return statusFromError(pkt.ID, err)
		}
		want := int64(len(buf))
		if !toEOF {
			want = min(want, left)
		}
		n, rerr := rd.ReadAt(buf[:want], roff)
		if n > 0 {
			if _, err := wr.WriteAt(buf[:n], woff); err != nil {
				return statusFromError(pkt.ID, err)
			}
			roff, woff, left = roff+int64(n), woff+int64(n), left-int64(n)
		}
		switch {
		case rerr == io.EOF || (rerr == nil && n == 0):
			if toEOF {
				return statusFromError(pkt.ID, nil)
			}
			return statusFromError(pkt.ID, io.EOF)
		case rerr != nil:
			return statusFromError(pkt.ID, rerr)
		}
	}
	return statusFromError(pkt.ID, nil)
}
