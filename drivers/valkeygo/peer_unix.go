//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package valkeygo

import (
	"net"
	"syscall"
)

// peerClosed reports whether the server has closed c (a FIN or a reset
// already received and not yet read), without reading anything: a
// non-blocking MSG_PEEK of one byte. Data waiting, nothing waiting and any
// doubt report false. Safe with a concurrent Read (the peek takes no read
// lock and consumes nothing).
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = (n == 0 && err == nil) || err == syscall.ECONNRESET
	})
	return closed
}
