//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package valkeygo

import "net"

// peerClosed reports false: without a non-blocking peek here, a connection
// the server closed while idle is found out by the round trip itself.
func peerClosed(net.Conn) bool { return false }
