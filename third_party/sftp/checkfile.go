package sftp

import "strings"

// The check-file extension (draft-ietf-secsh-filexfer-extensions-00, section 3; wharf): the
// hash of a file's bytes computed by the server, so a client can verify a transfer without
// reading the file back. paramiko's SFTPFile.check sends check-file with a handle, the draft
// names that request check-file-handle, and check-file-name takes a path (WinSCP sends it,
// to servers that list check-file in SFTP 5's "supported" structure, which this version-3
// server does not send).
const (
	extCheckFile       = "check-file"
	extCheckFileName   = "check-file-name"
	extCheckFileHandle = "check-file-handle"
)

// CheckFileFileCmder is a FileCmder that answers check-file requests; the RequestServer
// announces the extension, with CheckFileAlgorithms as its data, when its FileCmd is one.
type CheckFileFileCmder interface {
	FileCmder
	// CheckFileAlgorithms are the hash names the handler knows, in its order of preference.
	CheckFileAlgorithms() []string
	// CheckFile hashes length bytes of r.Filepath from offset (length 0: to the end), in
	// blocks of blockSize bytes (0: one hash of the whole range), with the first of
	// algorithms it knows. It returns the algorithm used and the hashes, one after another.
	CheckFile(r *Request, algorithms []string, offset, length uint64, blockSize uint32) (algorithm string, hashes []byte, err error)
}

// sshFxpExtendedPacketCheckFile is a check-file request; Target is a handle or a name.
type sshFxpExtendedPacketCheckFile struct {
	ID              uint32
	ExtendedRequest string
	Target          string
	Algorithms      string
	Offset, Length  uint64
	BlockSize       uint32
}

func (p *sshFxpExtendedPacketCheckFile) id() uint32     { return p.ID }
func (p *sshFxpExtendedPacketCheckFile) readonly() bool { return true }

// byHandle reports whether Target is a handle (check-file-handle, and paramiko's check-file).
func (p *sshFxpExtendedPacketCheckFile) byHandle() bool {
	return p.ExtendedRequest != extCheckFileName
}

func (p *sshFxpExtendedPacketCheckFile) algorithms() []string {
	var out []string
	for _, a := range strings.Split(p.Algorithms, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func (p *sshFxpExtendedPacketCheckFile) UnmarshalBinary(b []byte) error {
	var err error
	if p.ID, b, err = unmarshalUint32Safe(b); err != nil {
		return err
	} else if p.ExtendedRequest, b, err = unmarshalStringSafe(b); err != nil {
		return err
	} else if p.Target, b, err = unmarshalStringSafe(b); err != nil {
		return err
	} else if p.Algorithms, b, err = unmarshalStringSafe(b); err != nil {
		return err
	} else if p.Offset, b, err = unmarshalUint64Safe(b); err != nil {
		return err
	} else if p.Length, b, err = unmarshalUint64Safe(b); err != nil {
		return err
	} else if p.BlockSize, _, err = unmarshalUint32Safe(b); err != nil {
		return err
	}
	return nil
}

// respond: the plain Server computes no hashes.
func (p *sshFxpExtendedPacketCheckFile) respond(*Server) responsePacket {
	return statusFromError(p.ID, ErrSSHFxOpUnsupported)
}

// checkFileReply is the SSH_FXP_EXTENDED_REPLY to a check-file request: the string
// "check-file", the algorithm used, then the hashes as bare bytes.
type checkFileReply struct {
	ID        uint32
	Algorithm string
	Hashes    []byte
}

func (p *checkFileReply) id() uint32 { return p.ID }

func (p *checkFileReply) marshalPacket() ([]byte, []byte, error) {
	b := make([]byte, 4, 4+1+4+4+len(extCheckFile)+4+len(p.Algorithm))
	b = append(b, sshFxpExtendedReply)
	b = marshalUint32(b, p.ID)
	b = marshalString(b, extCheckFile)
	b = marshalString(b, p.Algorithm)
	return b, p.Hashes, nil
}

func (p *checkFileReply) MarshalBinary() ([]byte, error) {
	header, payload, err := p.marshalPacket()
	return append(header, payload...), err
}

// checkFile answers a check-file request through the handlers.
func (rs *RequestServer) checkFile(pkt *sshFxpExtendedPacketCheckFile) responsePacket {
	cf, ok := rs.Handlers.FileCmd.(CheckFileFileCmder)
	if !ok {
		return statusFromError(pkt.ID, ErrSSHFxOpUnsupported)
	}
	name := pkt.Target
	if pkt.byHandle() {
		opened, ok := rs.getRequest(pkt.Target)
		if !ok {
			return statusFromError(pkt.ID, EBADF)
		}
		name = opened.Filepath
	}
	r := &Request{Method: "CheckFile", Filepath: cleanPathWithBase(rs.startDirectory, name)}
	algo, hashes, err := cf.CheckFile(r, pkt.algorithms(), pkt.Offset, pkt.Length, pkt.BlockSize)
	if err != nil {
		return statusFromError(pkt.ID, err)
	}
	return &checkFileReply{ID: pkt.ID, Algorithm: algo, Hashes: hashes}
}
