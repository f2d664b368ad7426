package actors

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/vactor-io/vactor/policies"
)

// unrun tells a command that never ran (not written; refused by a breaker
// that refused connections) from one that may have: a command written,
// kept to be sent again and then failed by the open breaker is an outcome
// unknown, wrapping the breaker's error, and must not be moved to another
// node as if it had not run (qa-AJ: it was, and then failed as a plain
// ErrCircuitOpen, "not sent").
func TestUnrun(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	open := &policies.CircuitOpenError{Addr: "127.0.0.1:7001", Cause: refused}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused dial", refused, true},
		{"breaker opened by refused dials", open, true},
		{"breaker opened by timeouts", &policies.CircuitOpenError{Addr: "127.0.0.1:7001", Cause: errors.New("i/o timeout")}, false},
		{"reply lost", io.EOF, false},
		{"kept after its write, then the open breaker", &policies.OutcomeUnknownError{Cause: errors.Join(open, io.EOF)}, false},
	} {
		if got := unrun(c.err); got != c.want {
			t.Errorf("%s: unrun(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
