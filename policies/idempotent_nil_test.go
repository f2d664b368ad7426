package policies

import (
	"testing"

	"github.com/valkey-io/valkey-go"
)

// A nil ctx, which every engine method accepts as "no deadline", is not a
// panic here either: WithIdempotent(nil) marks a background context, and
// IsIdempotent(nil) and Repeatable(nil, write) report false. All three
// panicked (context.WithValue: "cannot create context from nil parent";
// nil ctx.Value).
func TestIdempotentNilContext(t *testing.T) {
	//lint:ignore SA1012 a nil ctx is the input under test
	ctx := WithIdempotent(nil) //nolint:staticcheck
	if !IsIdempotent(ctx) {
		t.Fatal("WithIdempotent(nil) does not carry the mark")
	}
	if ctx.Err() != nil || ctx.Done() != nil {
		t.Fatalf("WithIdempotent(nil) is not a background context: Err %v", ctx.Err())
	}
	//lint:ignore SA1012 a nil ctx is the input under test
	if IsIdempotent(nil) { //nolint:staticcheck
		t.Fatal("IsIdempotent(nil) = true")
	}
	var write valkey.Completed // not read-only
	//lint:ignore SA1012 a nil ctx is the input under test
	if Repeatable(nil, write) { //nolint:staticcheck
		t.Fatal("Repeatable(nil, a write) = true")
	}
}
