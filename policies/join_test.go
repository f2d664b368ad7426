package policies

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestJoinLine(t *testing.T) {
	if JoinLine(nil, nil) != nil {
		t.Fatal("JoinLine of nils is not nil")
	}
	a := errors.New("seed a: refused")
	err := JoinLine(a, nil, errors.Join(io.EOF, errors.New("inner")))
	if got := err.Error(); strings.Contains(got, "\n") || got != "seed a: refused; EOF; inner" {
		t.Fatalf("JoinLine = %q", got)
	}
	if !errors.Is(err, a) || !errors.Is(err, io.EOF) {
		t.Fatal("JoinLine hides its errors from errors.Is")
	}
}

// The engine's outcome-unknown and open-breaker errors read on one line
// whatever their causes joined (qa-AY AY-4: "...connection refused\nEOF").
func TestErrorsOneLine(t *testing.T) {
	joined := errors.Join(errors.New("dial tcp: connection refused"), io.EOF)
	open := &CircuitOpenError{Addr: "h:1", Cause: joined}
	err := &OutcomeUnknownError{Cause: errors.Join(open, io.EOF)}
	got := err.Error()
	want := "vactor: outcome unknown: the command was sent but its reply was lost: vactor: circuit breaker open: node h:1, last failure: dial tcp: connection refused; EOF; EOF"
	if got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, io.EOF) {
		t.Fatal("the one-line text hides the errors from errors.Is")
	}
	if (&OutcomeUnknownError{}).Error() != ErrOutcomeUnknown.Error() {
		t.Fatalf("without a cause: %q", (&OutcomeUnknownError{}).Error())
	}
}
