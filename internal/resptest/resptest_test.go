package resptest_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/internal/resptest"
)

// replies covers every RESP3 type, nested, and RESP2's nulls.
var replies = []string{
	"+OK\r\n",
	"$3\r\nabc\r\n",
	"$0\r\n\r\n",
	"$-1\r\n",
	"*-1\r\n",
	"_\r\n",
	":-42\r\n",
	",3.5\r\n",
	",inf\r\n",
	"#t\r\n",
	"#f\r\n",
	"(12345678901234567890\r\n",
	"=7\r\ntxt:abc\r\n",
	"-ERR boom\r\n",
	"!5\r\nOOPS!\r\n",
	"*0\r\n",
	"*3\r\n:1\r\n$1\r\na\r\n*1\r\n_\r\n",
	"~2\r\n$1\r\na\r\n$1\r\nb\r\n",
	"%2\r\n$1\r\na\r\n:1\r\n+b\r\n*1\r\n#t\r\n",
	"|1\r\n+key\r\n+val\r\n$2\r\nhi\r\n",
}

// A message Message builds is what valkey-go reads from the same bytes
// on the wire (through the fake server).
func TestMessageMatchesTheWire(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := resptest.NewServer(func(args []string) (string, bool) {
		if args[0] == "ECHORAW" {
			return args[1], true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true, ForceSingleClient: true, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range replies {
		wire, werr := c.Do(ctx, c.B().Arbitrary("ECHORAW").Args(r).Build()).ToMessage()
		built := resptest.Message(r)
		berr := built.Error()
		if (werr == nil) != (berr == nil) || werr != nil && werr.Error() != berr.Error() {
			t.Errorf("%q: error %v from the wire, %v built", r, werr, berr)
			continue
		}
		wa, _ := wire.ToAny()
		ba, _ := built.ToAny()
		if !reflect.DeepEqual(wa, ba) || wire.IsString() != built.IsString() || wire.IsArray() != built.IsArray() ||
			wire.IsMap() != built.IsMap() || wire.IsNil() != built.IsNil() {
			t.Errorf("%q: %#v from the wire, %#v built", r, wa, ba)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, r := range []string{"", "$3\r\nab\r\n", "*2\r\n:1\r\n", ":x\r\n", "?\r\n", "+a\r\n+b\r\n"} {
		if _, err := resptest.Parse([]byte(r)); err == nil {
			t.Errorf("%q parsed", r)
		}
	}
}
