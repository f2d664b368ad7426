package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// An engine without ClusterMode pointed at a node of a cluster treats it
// as a standalone server (cluster mode is not detected): the commands for
// the slots other nodes serve fail with the node's MOVED reply, multi-key
// commands across slots with CROSSSLOT. Their errors say what to set:
// a bare "MOVED 13252 127.0.0.1:7001" told a new user nothing. The
// *ServerError keeps the reply as the server sent it in Message.
func TestClusterNodeWithoutClusterModeErrorsHint(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(c.Primaries()[0].Addr()))
	defer eng.Close()
	ctx := ctxT(t)
	checkHint := func(what string, err error, code string) {
		t.Helper()
		var se *engine.ServerError
		if !errors.As(err, &se) || se.Prefix != code {
			t.Fatalf("%s: err = %v, want a *ServerError %s", what, err, code)
		}
		if !strings.HasPrefix(se.Message, code+" ") || strings.Contains(se.Message, "ClusterMode") {
			t.Errorf("%s: Message %q, want the server's reply as sent", what, se.Message)
		}
		if msg := err.Error(); !strings.Contains(msg, se.Message) || !strings.Contains(msg, "Config.ClusterMode") {
			t.Errorf("%s: error %q does not name Config.ClusterMode", what, msg)
		}
	}
	var moved int
	var keys []string
	for i := range 64 {
		k := fmt.Sprint("hint:", i)
		keys = append(keys, k)
		_, err := eng.Get(ctx, k).Await(ctx)
		if errors.Is(err, engine.ErrNil) {
			continue // a slot of this node
		}
		moved++
		checkHint("Get "+k, err, "MOVED")
		_, err = eng.Do(ctx, "SET", k, "v").Await(ctx)
		checkHint("Do SET "+k, err, "MOVED")
	}
	if moved == 0 {
		t.Fatalf("none of %d keys was refused with MOVED by one of %d primaries", len(keys), len(c.Primaries()))
	}
	_, err := eng.MGet(ctx, keys...).Await(ctx)
	checkHint("MGet", err, "CROSSSLOT")
}

// Other error replies are shown as the server sent them, with no hint.
func TestServerErrorNoHint(t *testing.T) {
	for _, se := range []*engine.ServerError{
		{Prefix: "WRONGTYPE", Message: "WRONGTYPE Operation against a key holding the wrong kind of value"},
		{Prefix: "ERR", Message: "ERR unknown command 'FOO'"},
		{Prefix: "ASK", Message: "ASK 3999 127.0.0.1:6381"},
	} {
		if got, want := se.Error(), "vactor: server error: "+se.Message; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	}
}
