package sftp

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// copyDataRequest is a copy-data request as a client sends it.
type copyDataRequest struct {
	ID                     uint32
	Read, Write            string
	ReadOffset, ReadLength uint64
	WriteOffset            uint64
}

func (p *copyDataRequest) id() uint32 { return p.ID }

func (p *copyDataRequest) MarshalBinary() ([]byte, error) {
	b := []byte{0, 0, 0, 0, sshFxpExtended}
	b = marshalUint32(b, p.ID)
	b = marshalString(b, extCopyData)
	b = marshalString(b, p.Read)
	b = marshalUint64(b, p.ReadOffset)
	b = marshalUint64(b, p.ReadLength)
	b = marshalString(b, p.Write)
	b = marshalUint64(b, p.WriteOffset)
	return b, nil
}

func TestRequestCopyData(t *testing.T) {
	p := clientRequestServerPair(t)
	defer p.Close()
	_, ok := p.cli.HasExtension(extCopyData)
	require.True(t, ok, "copy-data is announced")

	data := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 640,000 bytes: several chunks
	f, err := p.cli.Create("/src")
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	// status sends a copy-data request and returns its status (nil for OK).
	status := func(req *copyDataRequest) error {
		t.Helper()
		req.ID = p.cli.nextID()
		typ, reply, err := p.cli.sendPacket(context.Background(), nil, req)
		require.NoError(t, err)
		require.Equal(t, fxp(sshFxpStatus), typ)
		return normaliseError(unmarshalStatus(req.ID, reply))
	}
	copyTo := func(name string, req copyDataRequest) ([]byte, error) {
		t.Helper()
		src, err := p.cli.Open("/src")
		require.NoError(t, err)
		defer src.Close()
		dst, err := p.cli.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		require.NoError(t, err)
		req.Read, req.Write = src.handle, dst.handle
		serr := status(&req)
		require.NoError(t, dst.Close())
		got, err := p.cli.Open(name)
		require.NoError(t, err)
		defer got.Close()
		b, err := io.ReadAll(got)
		require.NoError(t, err)
		return b, serr
	}

	got, err := copyTo("/all", copyDataRequest{})
	require.NoError(t, err, "length 0: to the end")
	assert.Equal(t, data, got)

	got, err = copyTo("/part", copyDataRequest{ReadOffset: 100, ReadLength: 300_000, WriteOffset: 10})
	require.NoError(t, err)
	assert.Equal(t, append(make([]byte, 10), data[100:300_100]...), got)

	// Past the end before the length asked: what there was is copied, and the answer is EOF.
	got, err = copyTo("/short", copyDataRequest{ReadOffset: 600_000, ReadLength: 100_000})
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, data[600_000:], got)

	// Unknown handles, and a source not open for reading.
	src, err := p.cli.Open("/src")
	require.NoError(t, err)
	defer src.Close()
	assert.Error(t, status(&copyDataRequest{Read: "nohandle", Write: src.handle}))
	assert.Error(t, status(&copyDataRequest{Read: src.handle, Write: "nohandle"}))
	ronly, err := p.cli.Open("/all")
	require.NoError(t, err)
	defer ronly.Close()
	assert.Error(t, status(&copyDataRequest{Read: src.handle, Write: ronly.handle}), "the target is open for reading only")
	wonly, err := p.cli.OpenFile("/wonly", os.O_WRONLY|os.O_CREATE)
	require.NoError(t, err)
	defer wonly.Close()
	assert.Error(t, status(&copyDataRequest{Read: wonly.handle, Write: ronly.handle}), "the source is open for writing only")

	// A copy onto the file it reads is refused, by one handle or by two: it could read
	// what it writes and grow the file forever.
	rw, err := p.cli.OpenFile("/src", os.O_RDWR)
	require.NoError(t, err)
	defer rw.Close()
	assert.Error(t, status(&copyDataRequest{Read: rw.handle, Write: rw.handle, WriteOffset: uint64(len(data))}))
	assert.Error(t, status(&copyDataRequest{Read: src.handle, Write: rw.handle, WriteOffset: uint64(len(data))}))
	fi, err := p.cli.Stat("/src")
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), fi.Size())
}

// slowWrites makes every write of a file opened for writing take a while, so that writes
// sent together are still running when the next request arrives.
type slowWrites struct{ FileWriter }

func (w slowWrites) Filewrite(r *Request) (io.WriterAt, error) {
	wa, err := w.FileWriter.Filewrite(r)
	if err != nil {
		return nil, err
	}
	return slowWriterAt{wa}, nil
}

type slowWriterAt struct{ io.WriterAt }

func (w slowWriterAt) WriteAt(b []byte, off int64) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return w.WriterAt.WriteAt(b, off)
}

// A copy sent right after writes to its source, without waiting for their answers, copies
// what they wrote: it waits for the requests before it, as a close does.
func TestRequestCopyDataAfterPipelinedWrites(t *testing.T) {
	mem := InMemHandler()
	mem.FilePut = slowWrites{mem.FilePut}
	p := clientRequestServerPairWithHandlers(t, mem)
	defer p.Close()
	w, err := p.cli.OpenFile("/src", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	require.NoError(t, err)
	defer w.Close()
	src, err := p.cli.Open("/src")
	require.NoError(t, err)
	defer src.Close()
	dst, err := p.cli.OpenFile("/dst", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	require.NoError(t, err)

	const writes, size = 32, 8 << 10
	want := make([]byte, 0, writes*size)
	results := make(chan result, writes+1)
	for i := range writes {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		want = append(want, chunk...)
		p.cli.dispatchRequest(results, &sshFxpWritePacket{ID: p.cli.nextID(), Length: size,
			Offset: uint64(i * size), Handle: w.handle, Data: chunk})
	}
	p.cli.dispatchRequest(results, &copyDataRequest{ID: p.cli.nextID(), Read: src.handle, Write: dst.handle})
	for range writes + 1 {
		r := <-results
		require.NoError(t, r.err)
		require.Equal(t, fxp(sshFxpStatus), r.typ)
		id, _ := unmarshalUint32(r.data)
		require.NoError(t, normaliseError(unmarshalStatus(id, r.data)))
	}
	require.NoError(t, dst.Close())
	got, err := p.cli.Open("/dst")
	require.NoError(t, err)
	defer got.Close()
	b, err := io.ReadAll(got)
	require.NoError(t, err)
	assert.Equal(t, want, b)
}
