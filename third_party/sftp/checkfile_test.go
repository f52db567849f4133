package sftp

import (
	"context"
	"crypto/sha256"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkFileHandler adds check-file (sha256 of the whole file, no blocks) to the in-memory
// handlers.
type checkFileHandler struct {
	FileCmder
	files FileReader
	seen  []string // the paths asked for
}

func (h *checkFileHandler) CheckFileAlgorithms() []string { return []string{"sha256"} }

func (h *checkFileHandler) CheckFile(r *Request, algorithms []string, offset, length uint64, blockSize uint32) (string, []byte, error) {
	h.seen = append(h.seen, r.Filepath)
	if len(algorithms) == 0 || algorithms[0] != "sha256" || blockSize != 0 {
		return "", nil, ErrSSHFxOpUnsupported
	}
	ra, err := h.files.Fileread(&Request{Method: "Get", Filepath: r.Filepath, Flags: sshFxfRead})
	if err != nil {
		return "", nil, err
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(ra, int64(offset), int64(length))); err != nil {
		return "", nil, err
	}
	return "sha256", sum.Sum(nil), nil
}

// checkFileRequest is a check-file request as a client sends it.
type checkFileRequest struct {
	ID                 uint32
	Ext, Target, Algos string
	Offset, Length     uint64
	BlockSize          uint32
}

func (p *checkFileRequest) id() uint32 { return p.ID }

func (p *checkFileRequest) MarshalBinary() ([]byte, error) {
	b := []byte{0, 0, 0, 0, sshFxpExtended}
	b = marshalUint32(b, p.ID)
	b = marshalString(b, p.Ext)
	b = marshalString(b, p.Target)
	b = marshalString(b, p.Algos)
	b = marshalUint64(b, p.Offset)
	b = marshalUint64(b, p.Length)
	b = marshalUint32(b, p.BlockSize)
	return b, nil
}

func TestRequestCheckFile(t *testing.T) {
	mem := InMemHandler()
	h := &checkFileHandler{FileCmder: mem.FileCmd, files: mem.FileGet}
	mem.FileCmd = h
	p := clientRequestServerPairWithHandlers(t, mem)
	defer p.Close()

	algos, ok := p.cli.HasExtension(extCheckFile)
	require.True(t, ok, "check-file is announced")
	assert.Equal(t, "sha256", algos)

	data := []byte("the data of a file that the server hashes")
	f, err := p.cli.Create("/f")
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	f, err = p.cli.Open("/f")
	require.NoError(t, err)
	defer f.Close()

	ask := func(req *checkFileRequest) (fxp, []byte) {
		t.Helper()
		req.ID = p.cli.nextID()
		typ, reply, err := p.cli.sendPacket(context.Background(), nil, req)
		require.NoError(t, err)
		return typ, reply
	}
	want := sha256.Sum256(data[4:12])
	for _, req := range []*checkFileRequest{
		{Ext: extCheckFileName, Target: "/f"},
		{Ext: extCheckFileHandle, Target: f.handle},
		{Ext: extCheckFile, Target: f.handle}, // paramiko's name for the handle request
	} {
		req.Algos, req.Offset, req.Length = "sha256,md5", 4, 8
		typ, reply := ask(req)
		require.Equal(t, fxp(sshFxpExtendedReply), typ, "%s: %v", req.Ext, unmarshalStatus(req.ID, reply))
		_, reply = unmarshalUint32(reply) // id
		ext, reply := unmarshalString(reply)
		algo, reply := unmarshalString(reply)
		assert.Equal(t, extCheckFile, ext)
		assert.Equal(t, "sha256", algo)
		assert.Equal(t, want[:], reply, req.Ext)
	}
	assert.Equal(t, []string{"/f", "/f", "/f"}, h.seen)

	// A refusal is a status; an unknown handle is EBADF, before the handler.
	md5 := &checkFileRequest{Ext: extCheckFileName, Target: "/f", Algos: "md5"}
	typ, reply := ask(md5)
	require.Equal(t, fxp(sshFxpStatus), typ)
	var se *StatusError
	require.ErrorAs(t, unmarshalStatus(md5.ID, reply), &se)
	assert.Equal(t, uint32(ErrSSHFxOpUnsupported), se.Code)
	typ, _ = ask(&checkFileRequest{Ext: extCheckFileHandle, Target: "nohandle", Algos: "sha256"})
	require.Equal(t, fxp(sshFxpStatus), typ)
	assert.Len(t, h.seen, 4)
}
