package ssh

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// TestMuxDeliverDataInOrder checks wharf's change to the read path: channel data packets that
// readLoop hands straight to their channel arrive complete and in order with the packets the
// mux still handles (a channel request and an EOF after the data), across key exchanges
// started by both sides while data flows. It runs over real transports, so both paths are
// taken: the test fails if no packet went straight to its channel.
func TestMuxDeliverDataInOrder(t *testing.T) {
	c1, c2, err := netPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	defer c2.Close()
	conf := ServerConfig{NoClientAuth: true}
	conf.AddHostKey(testSigners["ecdsa"])
	type serverEnd struct {
		conn  *ServerConn
		chans <-chan NewChannel
		err   error
	}
	srv := make(chan serverEnd, 1)
	go func() {
		conn, chans, reqs, err := NewServerConn(c1, &conf)
		if err == nil {
			go DiscardRequests(reqs)
		}
		srv <- serverEnd{conn, chans, err}
	}()
	cconn, cchans, creqs, err := NewClientConn(c2, "addr", &ClientConfig{User: "u", HostKeyCallback: InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	go DiscardRequests(creqs)
	go func() {
		for nc := range cchans {
			nc.Reject(Prohibited, "")
		}
	}()
	se := <-srv
	if se.err != nil {
		t.Fatal(se.err)
	}
	sc := se.conn.Conn.(*connection)
	trS := sc.transport.(*handshakeTransport)
	trC := cconn.(*connection).transport.(*handshakeTransport)
	var inline atomic.Int64
	trS.setDataHandler(func(p []byte) bool {
		ok := sc.mux.deliverData(p)
		if ok {
			inline.Add(1)
		}
		return ok
	})

	type result struct {
		data []byte
		reqs []string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		nc, ok := <-se.chans
		if !ok {
			done <- result{err: io.ErrUnexpectedEOF}
			return
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		var r result
		got := make(chan []string, 1)
		go func() {
			var names []string
			for req := range reqs {
				names = append(names, req.Type)
			}
			got <- names
		}()
		r.data, r.err = io.ReadAll(ch) // until the EOF
		ch.Close()
		r.reqs = <-got
		done <- r
	}()

	ch, _, err := cconn.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := range 3000 {
		chunk := make([]byte, 1+(i*7919)%(channelMaxPacket-1))
		for j := range chunk {
			chunk[j] = byte(i + j*31)
		}
		want.Write(chunk)
		if _, err := ch.Write(chunk); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		switch i {
		case 1000:
			trC.requestKeyExchange()
		case 2000:
			trS.requestKeyExchange()
		case 2500:
			if _, err := ch.SendRequest("env", false, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ch.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("server read: %v", r.err)
	}
	if !bytes.Equal(r.data, want.Bytes()) {
		t.Fatalf("server read %d bytes, want %d, or different bytes", len(r.data), want.Len())
	}
	if len(r.reqs) != 1 || r.reqs[0] != "env" {
		t.Errorf("requests: %q, want [env]", r.reqs)
	}
	if inline.Load() == 0 {
		t.Error("no data packet went straight to its channel")
	}
	t.Logf("%d of the data packets went straight to their channel", inline.Load())
}

// TestChannelInputPending: InputPending is false with nothing to read, true once data has
// arrived, and false again once it is all read, however it was split into packets.
func TestChannelInputPending(t *testing.T) {
	writer, reader, mux := channelPair(t)
	defer writer.Close()
	defer reader.Close()
	defer mux.Close()
	if reader.InputPending() {
		t.Fatal("input pending before anything was sent")
	}
	if _, err := writer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !reader.InputPending() {
		if time.Now().After(deadline) {
			t.Fatal("no input pending after data was sent")
		}
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(reader, buf[:3]); err != nil {
		t.Fatal(err)
	}
	if !reader.InputPending() {
		t.Fatal("no input pending with 7 bytes unread")
	}
	// The second packet may still be on its way: read until all ten bytes are in.
	if _, err := io.ReadFull(reader, buf[3:]); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "helloworld" {
		t.Fatalf("read %q", buf)
	}
	if reader.InputPending() {
		t.Fatal("input pending after everything was read")
	}
}
