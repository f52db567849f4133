package main

import (
	"net"
	"testing"
)

// The binary's //go:debug line keeps listeners plain TCP; it applies to this test binary too.
func TestListenersArePlainTCP(t *testing.T) {
	var lc net.ListenConfig
	if lc.MultipathTCP() {
		t.Fatal("listeners would use Multipath TCP: the //go:debug multipathtcp=0 line in main.go is missing or overridden")
	}
}
