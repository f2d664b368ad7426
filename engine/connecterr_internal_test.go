package engine

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// A TCP connect reset before any handshake (a server being killed) is not
// explained as a handshake closed by a TLS port or a server at its
// maxclients limit: both fixes would be wrong (QA-Z 4). A reset in the
// handshake still is.
func TestExplainConnectReset(t *testing.T) {
	dialReset := fmt.Errorf("valkey-go: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNRESET)})
	reason, _ := explainConnect(dialReset, false)
	if !strings.Contains(reason, "reset while it was being made") || strings.Contains(reason, "maxclients") {
		t.Fatalf("connect reset: %q", reason)
	}
	readReset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	if reason, _ := explainConnect(readReset, false); !strings.Contains(reason, "during the handshake") {
		t.Fatalf("reset in the handshake: %q", reason)
	}
	if reason, _ := explainConnect(io.EOF, false); !strings.Contains(reason, "during the handshake") {
		t.Fatalf("EOF in the handshake: %q", reason)
	}
	if !errors.Is(dialReset, syscall.ECONNRESET) {
		t.Fatal("test error does not wrap ECONNRESET")
	}
}
