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

// Int64 of a number outside int64's range (a string reply, a script's
// big number) is 0 with ErrReplyType, not strconv's clamped 2^63-1; the
// zero Reply (beside a failed call's error) says it is empty, not
// valkey-go's "valkey message type  is not a array" (qa-BC BC3).
func TestReplyOutOfRangeAndEmpty(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	for _, args := range [][]string{{"ECHO", "9223372036854775808"}, {"EVAL", "return redis.setresp(3) or {big_number='-9223372036854775809'}", "0"}} {
		r, err := eng.Do(ctx, args[0], args[1:]...).Await(ctx)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if v, err := r.Int64(); v != 0 || !errors.Is(err, engine.ErrReplyType) || !errors.Is(err, strconv.ErrRange) {
			t.Errorf("Int64 of %v: %d, %v; want 0 and ErrReplyType with strconv.ErrRange", args, v, err)
		}
	}
	var zero engine.Reply
	for name, call := range map[string]func() error{
		"Strings": func() error { _, err := zero.Strings(); return err },
		"Int64":   func() error { _, err := zero.Int64(); return err },
		"String":  func() error { _, err := zero.String(); return err },
	} {
		if err := call(); !errors.Is(err, engine.ErrReplyType) || !strings.Contains(strings.ToLower(err.Error()), "an empty reply") || strings.Contains(err.Error(), "message type") {
			t.Errorf("zero Reply %s: %v, want ErrReplyType naming an empty reply", name, err)
		}
	}
}
