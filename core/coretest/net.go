package coretest

import (
	"net"
	"testing"
)

// TCPPair returns both ends of a loopback TCP connection; both are closed when the test ends.
func TCPPair(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		_ = client.Close()
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}
