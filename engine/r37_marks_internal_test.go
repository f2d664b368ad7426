package engine

import (
	"errors"
	"testing"

	"github.com/vactor-io/vactor/actors"
)

// withoutMarks strips the actor's marks and leaves the error reply as it
// was, so that mapError makes a *ServerError of it.
func TestR37WithoutMarks(t *testing.T) {
	bad := errors.New("plain")
	moved := &actors.MovedError{Names: []string{"a"}}
	refused := &actors.RefusedError{Names: []string{"b"}}
	for _, c := range []struct {
		in, want error
	}{
		{nil, nil},
		{bad, bad},
		{errors.Join(nil, moved), nil},
		{errors.Join(bad, moved), bad},
		{errors.Join(bad, refused), bad},
		{errors.Join(bad, moved, refused), bad},
	} {
		if got := withoutMarks(c.in); got != c.want {
			t.Errorf("withoutMarks(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
