package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

const defaultMaxTxPacket uint32 = 1 << 15

// Handlers contains the 4 SFTP server request handlers.
type Handlers struct {
	FileGet  FileReader
	FilePut  FileWriter
	FileCmd  FileCmder
	FileList FileLister
}

// RequestServer abstracts the sftp protocol with an http request-like protocol
type RequestServer struct {
	Handlers Handlers

	*serverConn
	pktMgr *packetManager

	startDirectory string
	maxTxPacket    uint32

	mu           sync.RWMutex
	handleCount  int
	openRequests map[string]*Request

	// maxHandles caps len(openRequests); 0 = no cap (wharf's change, see WHARF.md).
	maxHandles int
}

// A RequestServerOption is a function which applies configuration to a RequestServer.
type RequestServerOption func(*RequestServer)

// WithRSAllocator enable the allocator.
// After processing a packet we keep in memory the allocated slices
// and we reuse them for new packets.
// The allocator is experimental
func WithRSAllocator() RequestServerOption {
	return func(rs *RequestServer) {
		alloc := newAllocator()
		rs.pktMgr.alloc = alloc
		rs.conn.alloc = alloc
	}
}

// WithRSPageSource is WithRSAllocator with the pages of ordinary transfers' requests and
// replies (SmallPageSize) lent by src instead of kept by the session (wharf): a server can
// lend them from the pools its connection reads into, so that the data in flight is not
// held in two sets of buffers.
func WithRSPageSource(src PageSource) RequestServerOption {
	return func(rs *RequestServer) {
		alloc := newAllocator()
		alloc.src = src
		rs.pktMgr.alloc = alloc
		rs.conn.alloc = alloc
	}
}

// WithStartDirectory sets a start directory to use as base for relative paths.
// If unset the default is "/"
func WithStartDirectory(startDirectory string) RequestServerOption {
	return func(rs *RequestServer) {
		rs.startDirectory = cleanPath(startDirectory)
	}
}

// WithMaxOpenHandles caps the file and directory handles a client may hold open at once.
// An OPEN or OPENDIR beyond the cap is answered with SSH_FX_FAILURE "too many open handles
// (limit n)" and reaches no handler. n <= 0 means no cap, the default. (wharf's change, see
// WHARF.md.)
func WithMaxOpenHandles(n int) RequestServerOption {
	return func(rs *RequestServer) {
		rs.maxHandles = max(n, 0)
	}
}

// WithRSMaxTxPacket sets the maximum size of the payload returned to the client,
// measured in bytes. The default value is 32768 bytes, and this option
// can only be used to increase it. Setting this option to a larger value
// should be safe, because the client decides the size of the requested payload.
//
// The default maximum packet size is 32768 bytes.
func WithRSMaxTxPacket(size uint32) RequestServerOption {
	return func(rs *RequestServer) {
		if size < defaultMaxTxPacket {
			return
		}

		rs.maxTxPacket = size
	}
}

// NewRequestServer creates/allocates/returns new RequestServer.
// Normally there will be one server per user-session.
func NewRequestServer(rwc io.ReadWriteCloser, h Handlers, options ...RequestServerOption) *RequestServer {
	svrConn := &serverConn{
		conn: conn{
			Reader:      rwc,
			WriteCloser: rwc,
		},
	}
	rs := &RequestServer{
		Handlers: h,

		serverConn: svrConn,
		pktMgr:     newPktMgr(svrConn),

		startDirectory: "/",
		maxTxPacket:    defaultMaxTxPacket,

		openRequests: make(map[string]*Request),
	}

	// wharf: see packetManager.dispatch.
	if ip, ok := rwc.(inputPender); ok {
		rs.pktMgr.inputPending = ip.InputPending
	}

	for _, o := range options {
		o(rs)
	}
	return rs
}

// New Open packet/Request
func (rs *RequestServer) nextRequest(r *Request) string {
	rs.mu.Lock()
	defer rs.mu.Unlock()

	rs.handleCount++

	r.handle = strconv.Itoa(rs.handleCount)
	rs.openRequests[r.handle] = r

	return r.handle
}

// errTooManyHandles returns the error an OPEN or OPENDIR beyond the handle cap is answered
// with, or nil when another handle may be opened.
func (rs *RequestServer) errTooManyHandles() error {
	if rs.maxHandles <= 0 {
		return nil
	}
	rs.mu.RLock()
	n := len(rs.openRequests)
	rs.mu.RUnlock()
	if n < rs.maxHandles {
		return nil
	}
	return fmt.Errorf("too many open handles (limit %d)", rs.maxHandles)
}

// Returns Request from openRequests, bool is false if it is missing.
//
// The Requests in openRequests work essentially as open file descriptors that
// you can do different things with. What you are doing with it are denoted by
// the first packet of that type (read/write/etc).
func (rs *RequestServer) getRequest(handle string) (*Request, bool) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()

	r, ok := rs.openRequests[handle]
	return r, ok
}

// Close the Request and clear from openRequests map
func (rs *RequestServer) closeRequest(handle string) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()

	if r, ok := rs.openRequests[handle]; ok {
		delete(rs.openRequests, handle)
		return r.close()
	}

	return EBADF
}

// Close the read/write/closer to trigger exiting the main server loop
func (rs *RequestServer) Close() error { return rs.conn.Close() }

func (rs *RequestServer) serveLoop(ctx context.Context, spawn func(func())) error {
	var err error
	var pkt requestPacket
	var pktType fxp
	var pktBytes []byte

	handle := func(pkt orderedRequest) { rs.handlePacket(ctx, pkt) }
	for {
		pktType, pktBytes, err = rs.serverConn.recvPacket(rs.pktMgr.getNextOrderID())
		if err != nil {
			// we don't care about releasing allocated pages here, the server will quit and the allocator freed
			return err
		}

		pkt, err = makePacket(rxPacket{pktType, pktBytes})
		if err != nil {
			switch {
			case errors.Is(err, errUnknownExtendedPacket):
				// do nothing
			default:
				debug("makePacket err: %v", err)
				rs.conn.Close() // shuts down recvPacket
				return err
			}
		}

		rs.pktMgr.dispatch(rs.pktMgr.newOrderedRequest(pkt), handle, spawn)
	}
}

// Serve requests for user session
func (rs *RequestServer) Serve() error {
	defer func() {
		if rs.pktMgr.alloc != nil {
			rs.pktMgr.alloc.Free()
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}

	err := rs.serveLoop(ctx, spawn)

	rs.pktMgr.stopWorkers()
	wg.Wait() // wait for the reads and writes in progress

	rs.mu.Lock()
	defer rs.mu.Unlock()

	// make sure all open requests are properly closed
	// (eg. possible on dropped connections, client crashes, etc.)
	for handle, req := range rs.openRequests {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		req.transferError(err)

		delete(rs.openRequests, handle)
		req.close()
	}

	return err
}

func (rs *RequestServer) handlePacket(ctx context.Context, pkt orderedRequest) {
	orderID := pkt.orderID()
	if epkt, ok := pkt.requestPacket.(*sshFxpExtendedPacket); ok {
		if epkt.SpecificPacket != nil {
			pkt.requestPacket = epkt.SpecificPacket
		}
	}

	var rpkt responsePacket
	switch pkt := pkt.requestPacket.(type) {
	case *sshFxInitPacket:
		rpkt = &sshFxVersionPacket{Version: sftpProtocolVersion, Extensions: rs.versionExtensions()}
	case *sshFxpClosePacket:
		handle := pkt.getHandle()
		rpkt = statusFromError(pkt.ID, rs.closeRequest(handle))
	case *sshFxpRealpathPacket:
		var realPath string
		var err error

		switch pather := rs.Handlers.FileList.(type) {
		case RealPathFileLister:
			realPath, err = pather.RealPath(pkt.getPath())
		case legacyRealPathFileLister:
			realPath = pather.RealPath(pkt.getPath())
		default:
			realPath = cleanPathWithBase(rs.startDirectory, pkt.getPath())
		}
		if err != nil {
			rpkt = statusFromError(pkt.ID, err)
		} else {
			rpkt = cleanPacketPath(pkt, realPath)
		}
	case *sshFxpOpendirPacket:
		if err := rs.errTooManyHandles(); err != nil {
			rpkt = statusFromError(pkt.ID, err)
			break
		}
		request := requestFromPacket(ctx, pkt, rs.startDirectory)
		handle := rs.nextRequest(request)
		rpkt = request.opendir(rs.Handlers, pkt)
		if _, ok := rpkt.(*sshFxpHandlePacket); !ok {
			// if we return an error we have to remove the handle from the active ones
			rs.closeRequest(handle)
		}
	case *sshFxpOpenPacket:
		if err := rs.errTooManyHandles(); err != nil {
			rpkt = statusFromError(pkt.ID, err)
			break
		}
		request := requestFromPacket(ctx, pkt, rs.startDirectory)
		handle := rs.nextRequest(request)
		rpkt = request.open(rs.Handlers, pkt)
		if _, ok := rpkt.(*sshFxpHandlePacket); !ok {
			// if we return an error we have to remove the handle from the active ones
			rs.closeRequest(handle)
		}
	case *sshFxpFstatPacket:
		handle := pkt.getHandle()
		request, ok := rs.getRequest(handle)
		if !ok {
			rpkt = statusFromError(pkt.ID, EBADF)
		} else {
			request = &Request{
				Method:   "Stat",
				Filepath: cleanPathWithBase(rs.startDirectory, request.Filepath),
				opened:   request,
			}
			rpkt = request.call(rs.Handlers, pkt, rs.pktMgr.alloc, orderID, rs.maxTxPacket)
		}
	case *sshFxpFsetstatPacket:
		handle := pkt.getHandle()
		request, ok := rs.getRequest(handle)
		if !ok {
			rpkt = statusFromError(pkt.ID, EBADF)
		} else {
			request = &Request{
				Method:   "Setstat",
				Filepath: cleanPathWithBase(rs.startDirectory, request.Filepath),
				opened:   request,
			}
			rpkt = request.call(rs.Handlers, pkt, rs.pktMgr.alloc, orderID, rs.maxTxPacket)
		}
	case *sshFxpExtendedPacketPosixRename:
		request := &Request{
			Method:   "PosixRename",
			Filepath: cleanPathWithBase(rs.startDirectory, pkt.Oldpath),
			Target:   cleanPathWithBase(rs.startDirectory, pkt.Newpath),
		}
		rpkt = request.call(rs.Handlers, pkt, rs.pktMgr.alloc, orderID, rs.maxTxPacket)
	case *sshFxpExtendedPacketCheckFile: // wharf: checkfile.go
		rpkt = rs.checkFile(pkt)
	case *sshFxpExtendedPacketCopyData: // wharf: copydata.go
		rpkt = rs.copyData(ctx, pkt)
	case *sshFxpExtendedPacketStatVFS:
		request := &Request{
			Method:   "StatVFS",
			Filepath: cleanPathWithBase(rs.startDirectory, pkt.Path),
		}
		rpkt = request.call(rs.Handlers, pkt, rs.pktMgr.alloc, orderID, rs.maxTxPacket)
	case hasHandle:
		handle := pkt.getHandle()
		request, ok := rs.getRequest(handle)
		if !ok {
			rpkt = statusFromError(pkt.id(), EBADF)
		} else {
			rpkt = request.call(rs.Handlers, pkt, rs.pktMgr.alloc, orderID, rs.maxTxPacket)
		}
	case hasPath:
		request := requestFromPacket(ctx, pkt, rs.startDirectory)
		rpkt = request.call(rs.Handlers, pkt, rs.pktMgr.alloc, orderID, rs.maxTxPacket)
		request.close()
	default:
		rpkt = statusFromError(pkt.id(), ErrSSHFxOpUnsupported)
	}

	rs.pktMgr.readyPacket(
		rs.pktMgr.newOrderedResponse(rpkt, orderID))
}

// clean and return name packet for file
func cleanPacketPath(pkt *sshFxpRealpathPacket, realPath string) responsePacket {
	return &sshFxpNamePacket{
		ID: pkt.id(),
		NameAttrs: []*sshFxpNameAttr{
			{
				Name:     realPath,
				LongName: realPath,
				Attrs:    emptyFileStat,
			},
		},
	}
}

// Makes sure we have a clean POSIX (/) absolute path to work with
func cleanPath(p string) string {
	return cleanPathWithBase("/", p)
}

func cleanPathWithBase(base, p string) string {
	p = filepath.ToSlash(filepath.Clean(p))
	if !path.IsAbs(p) {
		return path.Join(base, p)
	}
	return p
}

// versionExtensions are the extensions the RequestServer announces: copy-data (copydata.go),
// and check-file when its handlers answer it.
func (rs *RequestServer) versionExtensions() []sshExtensionPair {
	out := append(append([]sshExtensionPair(nil), sftpExtensions...), sshExtensionPair{extCopyData, "1"})
	if cf, ok := rs.Handlers.FileCmd.(CheckFileFileCmder); ok {
		out = append(out, sshExtensionPair{extCheckFile, strings.Join(cf.CheckFileAlgorithms(), ",")})
	}
	return out
}
