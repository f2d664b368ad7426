package engine_test

import (
	"errors"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

// HGetAll reads its reply as Reply.Map does: a value or key of another
// shape than a string (an array, a boolean) fails it with ErrReplyType,
// an integer reads in decimal. valkey-go's AsStrMap made them "", so a
// proxy's or another server's odd reply came back as a hash of empty
// fields, with no error (qa45 F5).
func TestHGetAllOddElements(t *testing.T) {
	eng, ctx := fakeEngine(t, map[string]string{
		"HGETALL nested": "%2\r\n$1\r\nf\r\n*1\r\n$1\r\nx\r\n$1\r\ng\r\n$1\r\ny\r\n",
		"HGETALL bool":   "%1\r\n$1\r\nf\r\n#t\r\n",
		"HGETALL intkey": "%2\r\n:1\r\n$1\r\nx\r\n:2\r\n$1\r\ny\r\n",
		"HGETALL intval": "%1\r\n$1\r\nf\r\n:7\r\n",
		"HGETALL flat":   "*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n,2.5\r\n",
		"HGETALL empty":  "%2\r\n$1\r\nf\r\n$0\r\n\r\n$0\r\n\r\n$1\r\ny\r\n",
	})
	wantReplyType(t, ctx, "HGETALL with an array value", eng.HGetAll(ctx, "nested"))
	wantReplyType(t, ctx, "HGETALL with a boolean value", eng.HGetAll(ctx, "bool"))
	wantValue(t, ctx, "HGETALL with integer keys", eng.HGetAll(ctx, "intkey"), "map[1:x 2:y]")
	wantValue(t, ctx, "HGETALL with an integer value", eng.HGetAll(ctx, "intval"), "map[f:7]")
	wantValue(t, ctx, "HGETALL as a flat array", eng.HGetAll(ctx, "flat"), "map[a:1 b:2.5]")
	// Empty strings (read again the strict way) are values.
	wantValue(t, ctx, "HGETALL with an empty field and value", eng.HGetAll(ctx, "empty"), "map[:y f:]")
	// The same through a Pipeline and the synchronous facade.
	p := eng.Pipeline()
	nested := p.HGetAll("nested")
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	wantReplyType(t, ctx, "Pipeline HGETALL with an array value", nested)
	if m, err := eng.Sync().HGetAll(ctx, "bool"); !errors.Is(err, engine.ErrReplyType) {
		t.Fatalf("Client.HGetAll with a boolean value = %v; want ErrReplyType", m)
	}
}
