package engine_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

// Int64 of a string (an INFO reply, a user's value) fails with
// ErrReplyType and the *strconv.NumError, giving the text's length, not
// the text: the program's logs would keep the value (qa-AI F7: several KB
// of INFO in one error).
func TestReplyTypeErrorQuotesLittle(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	value := "secret-" + strings.Repeat("x", 4000)
	if err := eng.Set(ctx, "rq:k", value, 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := eng.Do(ctx, "GET", "rq:k").Await(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Int64()
	var ne *strconv.NumError
	if !errors.Is(err, engine.ErrReplyType) || !errors.As(err, &ne) || !errors.Is(err, strconv.ErrSyntax) {
		t.Fatalf("Int64 of a string: %v, want ErrReplyType with the *strconv.NumError", err)
	}
	if msg := err.Error(); strings.Contains(msg, "secret") || !strings.Contains(msg, "(a reply of 4007 bytes)") {
		t.Fatalf("Int64 of a 4,007-byte string: error %.300q, want its length and none of its text", msg)
	}
	// A short one too.
	if r, err = eng.Do(ctx, "ECHO", "tok3n").Await(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Int64(); err == nil || strings.Contains(err.Error(), "tok3n") || !errors.Is(err, engine.ErrReplyType) {
		t.Fatalf("Int64 of \"tok3n\": %v, want ErrReplyType without the text", err)
	}
}
