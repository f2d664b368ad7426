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
