package engine_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// An audit of the generic command path (Engine.Do, Client.Do) in
// standalone mode against a real server, with the default config: odd and
// connection-state commands, blocking commands, deadlines while the server
// is slow, bad input, and every RESP3 reply shape through Reply's
// accessors. One server (DEBUG enabled, for DEBUG SLEEP and DEBUG
// PROTOCOL) is shared by the subtests.
func TestAuditDo(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--enable-debug-command", "yes"}})
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer eng.Close()

	t.Run("StateCommands", func(t *testing.T) { auditStateCommands(t, eng) })
	t.Run("ServerStateCommands", func(t *testing.T) { auditServerStateCommands(t, eng) })
	t.Run("BadInput", func(t *testing.T) { auditBadInput(t, eng) })
	t.Run("ReplyShapes", func(t *testing.T) { auditReplyShapes(t, eng) })
	t.Run("Blocking", func(t *testing.T) { auditBlocking(t, eng) })
	t.Run("Wait", func(t *testing.T) { auditWait(t, eng) })
	t.Run("PipelineBlocking", func(t *testing.T) { auditPipelineBlocking(t, eng) })
	t.Run("BlockingClose", func(t *testing.T) { auditBlockingClose(t, srv) })
	t.Run("DeadlineWhileServerSlow", func(t *testing.T) { auditDeadline(t, eng, srv) })
}

// checker runs a caller that keeps writing and reading its own key and
// records any wrong reply; stop ends it and fails the test on one.
func checker(t *testing.T, eng *engine.Engine, key string) (stop func()) {
	t.Helper()
	ctx := ctxT(t)
	var (
		wg   sync.WaitGroup
		done atomic.Bool
		bad  atomic.Value
		n    atomic.Int64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !done.Load(); i++ {
			v := strconv.Itoa(i)
			if r, err := eng.Do(ctx, "SET", key, v).Await(ctx); err != nil {
				bad.Store(fmt.Sprintf("SET: %v", err))
				return
			} else if s, _ := r.String(); s != "OK" {
				bad.Store(fmt.Sprintf("SET = %q, want OK", s))
				return
			}
			if s, err := eng.Get(ctx, key).Await(ctx); err != nil || s != v {
				bad.Store(fmt.Sprintf("GET = %q, %v; want %q", s, err, v))
				return
			}
			n.Add(1)
		}
	}()
	return func() {
		t.Helper()
		// At least a few rounds ran alongside.
		deadline := time.Now().Add(10 * time.Second)
		for n.Load() < 3 && bad.Load() == nil && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		done.Store(true)
		wg.Wait()
		if b := bad.Load(); b != nil {
			t.Fatalf("a concurrent caller read a wrong reply: %s", b)
		}
		if n.Load() < 3 {
			t.Fatal("the concurrent caller made no progress")
		}
	}
}

func auditStateCommands(t *testing.T, eng *engine.Engine) {
	ctx := ctxT(t)
	stop := checker(t, eng, "audit:state")
	cmds := [][]string{
		{"multi"}, {"Exec"}, {"DISCARD"}, {"watch", "audit:state"}, {"UnWatch"},
		{"select", "1"}, {"Select", "0"}, {"auth", "nobody"}, {"AUTH", "u", "p"},
		{"hello", "2"}, {"HELLO", "3"}, {"hello"}, {"reset"}, {"quit"},
		{"client", "reply", "off"}, {"CLIENT", "Reply", "skip"}, {"client", "reply", "on"},
		{"client", "tracking", "on"}, {"Client", "SetName", "x"}, {"client", "no-evict", "on"},
		{"CLIENT", "NO-TOUCH", "on"}, {"readonly"}, {"READWRITE"}, {"asking"},
		{"subscribe", "c"}, {"PSubscribe", "c*"}, {"unsubscribe"}, {"punsubscribe"},
		{"ssubscribe", "c"}, {"monitor"}, {"sync"}, {"PSYNC", "?", "-1"}, {"replconf", "listening-port", "1"},
		{"script", "debug", "yes"}, {"SCRIPT", "DEBUG", "SYNC"},
	}
	for _, c := range cmds {
		for _, via := range []string{"Engine.Do", "Client.Do"} {
			var err error
			if via == "Engine.Do" {
				_, err = eng.Do(ctx, c[0], c[1:]...).Await(ctx)
			} else {
				_, err = eng.Sync().Do(ctx, c[0], c[1:]...)
			}
			var cse *engine.ConnectionStateError
			if !errors.As(err, &cse) || !errors.Is(err, engine.ErrConnectionState) || !errors.Is(err, engine.ErrInvalidArgument) {
				t.Fatalf("%s%q = %v; want a *ConnectionStateError", via, c, err)
			}
			if cse.Use == "" || cse.Command != strings.ToUpper(cse.Command) {
				t.Fatalf("%s%q: %+v; want an upper-case command and what to use instead", via, c, cse)
			}
		}
	}
	stop()
	// Nothing reached the connections: still database 0, replies on.
	if err := eng.Set(ctx, "audit:db0", "here", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := eng.Do(ctx, "EXISTS", "audit:db0").Await(ctx); err != nil {
		t.Fatal(err)
	} else if n, err := r.Int64(); err != nil || n != 1 {
		t.Fatalf("EXISTS after the refused commands = %d, %v; want 1", n, err)
	}
}

func auditServerStateCommands(t *testing.T, eng *engine.Engine) {
	ctx := ctxT(t)
	stop := checker(t, eng, "audit:server")
	// CLIENT PAUSE holds other clients' writes on the server: it passes,
	// and the writes complete once it ends.
	if r, err := eng.Do(ctx, "client", "pause", "100", "WRITE").Await(ctx); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	} else if s, _ := r.String(); s != "OK" {
		t.Fatalf("CLIENT PAUSE = %q", s)
	}
	if err := eng.Set(ctx, "audit:paused", "v", 0).Err(ctx); err != nil {
		t.Fatalf("SET after CLIENT PAUSE: %v", err)
	}
	for _, c := range [][]string{{"SCRIPT", "KILL"}, {"function", "kill"}} {
		_, err := eng.Do(ctx, c[0], c[1:]...).Await(ctx)
		if !errors.Is(err, &engine.ServerError{Prefix: "NOTBUSY"}) {
			t.Fatalf("%q = %v; want a NOTBUSY *ServerError", c, err)
		}
	}
	if r, err := eng.Do(ctx, "FUNCTION", "LIST").Await(ctx); err != nil {
		t.Fatal(err)
	} else if a, err := r.Array(); err != nil || len(a) != 0 {
		t.Fatalf("FUNCTION LIST = %v, %v; want an empty array", a, err)
	}
	if r, err := eng.Do(ctx, "Object", "Encoding", "audit:paused").Await(ctx); err != nil {
		t.Fatal(err)
	} else if s, err := r.String(); err != nil || s != "embstr" {
		t.Fatalf("OBJECT ENCODING = %q, %v", s, err)
	}
	// OBJECT FREQ needs an LFU maxmemory-policy.
	if _, err := eng.Do(ctx, "OBJECT", "FREQ", "audit:paused").Await(ctx); !errors.Is(err, &engine.ServerError{Prefix: "ERR"}) {
		t.Fatalf("OBJECT FREQ = %v; want an ERR *ServerError", err)
	}
	if _, err := eng.Do(ctx, "debug", "sleep", "0").Await(ctx); err != nil {
		t.Fatalf("DEBUG SLEEP 0: %v", err)
	}
	stop()
}

func auditBadInput(t *testing.T, eng *engine.Engine) {
	ctx := ctxT(t)
	stop := checker(t, eng, "audit:bad")
	if _, err := eng.Do(ctx, "").Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf(`Do("") = %v; want ErrInvalidArgument`, err)
	}
	if _, err := eng.Sync().Do(ctx, "", "a"); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf(`Client.Do("", "a") = %v; want ErrInvalidArgument`, err)
	}
	for _, c := range [][]string{{"NOPE"}, {"nope", "a", "b"}, {"GET"}, {"set", "k"}, {"CLIENT"}, {"client", "nosuch"}, {"GET", "a", "b"}} {
		_, err := eng.Do(ctx, c[0], c[1:]...).Await(ctx)
		var se *engine.ServerError
		if !errors.As(err, &se) || se.Prefix != "ERR" {
			t.Fatalf("%q = %v; want an ERR *ServerError", c, err)
		}
	}
	var nilArgs []string
	if r, err := eng.Do(ctx, "PING", nilArgs...).Await(ctx); err != nil {
		t.Fatal(err)
	} else if s, _ := r.String(); s != "PONG" {
		t.Fatalf("PING = %q", s)
	}
	if r, err := eng.Do(ctx, "ECHO", "").Await(ctx); err != nil {
		t.Fatal(err)
	} else if s, err := r.String(); err != nil || s != "" {
		t.Fatalf(`ECHO "" = %q, %v`, s, err)
	}
	huge := strings.Repeat("x\r\n\x00", 1<<20) // 4 MB, protocol bytes inside
	if r, err := eng.Do(ctx, "ECHO", huge).Await(ctx); err != nil {
		t.Fatal(err)
	} else if s, err := r.String(); err != nil || s != huge {
		t.Fatalf("ECHO of 4 MB: %d bytes, %v", len(s), err)
	}
	stop()
}

func auditReplyShapes(t *testing.T, eng *engine.Engine) {
	ctx := ctxT(t)
	do := func(args ...string) engine.Reply {
		t.Helper()
		r, err := eng.Do(ctx, args[0], args[1:]...).Await(ctx)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		return r
	}
	isType := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, engine.ErrReplyType) {
			t.Fatalf("%s: %v; want ErrReplyType", what, err)
		}
	}
	// Every accessor on every shape: no panic, errors typed.
	all := func(name string, r engine.Reply) {
		t.Helper()
		check := func(acc string, err error) {
			t.Helper()
			var se *engine.ServerError
			if err != nil && !errors.Is(err, engine.ErrReplyType) && !errors.Is(err, engine.ErrNil) && !errors.As(err, &se) {
				t.Fatalf("%s.%s: untyped error %v", name, acc, err)
			}
		}
		_, err := r.String()
		check("String", err)
		_, err = r.Int64()
		check("Int64", err)
		_, err = r.Float64()
		check("Float64", err)
		_, err = r.Bool()
		check("Bool", err)
		_, err = r.Strings()
		check("Strings", err)
		_, err = r.Map()
		check("Map", err)
		_, err = r.Array()
		check("Array", err)
		_, err = r.Any()
		check("Any", err)
		_ = r.Err()
		_ = r.IsNil()
		_ = r.Message()
	}
	for _, p := range []string{"string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "verbatim", "true", "false", "push"} {
		all("DEBUG PROTOCOL "+p, do("DEBUG", "PROTOCOL", p))
	}
	all("Reply{}", engine.Reply{})

	r := do("DEBUG", "PROTOCOL", "string")
	if s, err := r.String(); err != nil || s != "Hello World" {
		t.Fatalf("string: %q, %v", s, err)
	}
	_, err := r.Int64()
	isType("Int64 of a string", err)
	var ne *strconv.NumError
	if !errors.As(err, &ne) {
		t.Fatalf("Int64 of a string: %v; want the *strconv.NumError too", err)
	}
	_, err = r.Strings()
	isType("Strings of a string", err)
	_, err = r.Map()
	isType("Map of a string", err)
	_, err = r.Array()
	isType("Array of a string", err)
	_, err = r.Bool()
	isType("Bool of a string that is not OK or a number", err)
	for s, want := range map[string]bool{"OK": true, "1": true, "0": false, "-2": true} {
		if b, err := do("ECHO", s).Bool(); err != nil || b != want {
			t.Fatalf("Bool of %q = %v, %v; want %v", s, b, err, want)
		}
	}

	r = do("DEBUG", "PROTOCOL", "integer")
	if n, err := r.Int64(); err != nil || n != 12345 {
		t.Fatalf("integer: %d, %v", n, err)
	}
	_, err = r.String()
	isType("String of an integer", err)

	r = do("DEBUG", "PROTOCOL", "double")
	if f, err := r.Float64(); err != nil || f != 3.141 {
		t.Fatalf("double: %v, %v", f, err)
	}
	_, err = r.Bool()
	isType("Bool of a double", err)
	_, err = r.Int64()
	isType("Int64 of a double", err)

	r = do("DEBUG", "PROTOCOL", "bignum")
	const big = "1234567999999999999999999999999999999"
	if s, err := r.String(); err != nil || s != big {
		t.Fatalf("bignum: %q, %v", s, err)
	}
	if a, err := r.Any(); err != nil || a != big {
		t.Fatalf("bignum Any: %v, %v", a, err)
	}
	_, err = r.Int64()
	isType("Int64 of a big number", err)

	r = do("DEBUG", "PROTOCOL", "null")
	if !r.IsNil() {
		t.Fatal("null: IsNil false")
	}
	for name, f := range map[string]func() error{
		"String": func() error { _, err := r.String(); return err },
		"Map":    func() error { _, err := r.Map(); return err },
		"Any":    func() error { _, err := r.Any(); return err },
		"Array":  func() error { _, err := r.Array(); return err },
	} {
		if err := f(); !errors.Is(err, engine.ErrNil) {
			t.Fatalf("%s of a null: %v; want ErrNil", name, err)
		}
	}

	for _, shape := range []string{"array", "set"} {
		r = do("DEBUG", "PROTOCOL", shape)
		if ss, err := r.Strings(); err != nil || !reflect.DeepEqual(ss, []string{"0", "1", "2"}) {
			t.Fatalf("%s of integers: Strings = %q, %v; want [0 1 2]", shape, ss, err)
		}
		if a, err := r.Any(); err != nil || !reflect.DeepEqual(a, []any{int64(0), int64(1), int64(2)}) {
			t.Fatalf("%s: Any = %#v, %v", shape, a, err)
		}
		_, err = r.Int64()
		isType("Int64 of an "+shape, err)
	}

	// A map with integer keys: valkey-go keeps only string keys; the
	// accessors must not fold them into one "" key. They read them in
	// decimal (qa45 F4); Map refuses the boolean values.
	r = do("DEBUG", "PROTOCOL", "map")
	_, err = r.Map()
	isType("Map of a map with boolean values", err)
	if a, err := r.Any(); err != nil || !reflect.DeepEqual(a, map[string]any{"0": false, "1": true, "2": false}) {
		t.Fatalf("Any of a map with integer keys = %#v, %v; want {0: false, 1: true, 2: false}", a, err)
	}

	r = do("DEBUG", "PROTOCOL", "attrib")
	if s, err := r.String(); err != nil || s != "Some real reply following the attribute" {
		t.Fatalf("attrib: %q, %v", s, err)
	}

	r = do("DEBUG", "PROTOCOL", "verbatim")
	if s, err := r.String(); err != nil || s != "This is a verbatim\nstring" {
		t.Fatalf("verbatim: String = %q, %v; want the text without its format prefix", s, err)
	}
	if a, err := r.Any(); err != nil || a != "This is a verbatim\nstring" {
		t.Fatalf("verbatim: Any = %q, %v", a, err)
	}
	// INFO is a verbatim string in RESP3.
	if s, err := do("INFO", "server").String(); err != nil || !strings.HasPrefix(s, "# Server") {
		t.Fatalf("INFO: %.30q, %v; want it to start with # Server", s, err)
	}

	for want, p := range map[bool]string{true: "true", false: "false"} {
		r = do("DEBUG", "PROTOCOL", p)
		if b, err := r.Bool(); err != nil || b != want {
			t.Fatalf("%s: %v, %v", p, b, err)
		}
		_, err = r.String()
		isType("String of a boolean", err)
		_, err = r.Int64()
		isType("Int64 of a boolean", err)
	}

	// The zero Reply (that of a failed future) holds nothing.
	_, err = engine.Reply{}.String()
	isType("String of the zero Reply", err)

	// Real replies: HGETALL is a map, XINFO GROUPS an array of maps with
	// integer values.
	do("DEL", "audit:h", "audit:s")
	do("HSET", "audit:h", "f1", "v1", "f2", "2")
	if m, err := do("HGETALL", "audit:h").Map(); err != nil || !reflect.DeepEqual(m, map[string]string{"f1": "v1", "f2": "2"}) {
		t.Fatalf("HGETALL: %v, %v", m, err)
	}
	do("XGROUP", "CREATE", "audit:s", "g", "$", "MKSTREAM")
	groups, err := do("XINFO", "GROUPS", "audit:s").Array()
	if err != nil || len(groups) != 1 {
		t.Fatalf("XINFO GROUPS: %v, %v", groups, err)
	}
	if m, err := groups[0].Map(); err != nil || m["name"] != "g" || m["consumers"] != "0" || m["pending"] != "0" {
		t.Fatalf("XINFO GROUPS[0].Map() = %v, %v; want name g, consumers 0, pending 0", m, err)
	}
	if a, err := groups[0].Any(); err != nil || a.(map[string]any)["consumers"] != int64(0) {
		t.Fatalf("XINFO GROUPS[0].Any() = %v, %v", a, err)
	}
	// XINFO STREAM holds nested arrays: Map cannot flatten them.
	_, err = do("XINFO", "STREAM", "audit:s").Map()
	if err != nil {
		t.Fatalf("XINFO STREAM of an empty stream: %v", err)
	}
	do("XADD", "audit:s", "*", "f", "v")
	_, err = do("XINFO", "STREAM", "audit:s").Map()
	isType("Map of XINFO STREAM (nested entries)", err)

	// A script's table with an error reply inside.
	r = do("EVAL", "return {1, redis.error_reply('MYERR boom'), 'x'}", "0")
	arr, err := r.Array()
	if err != nil || len(arr) != 3 {
		t.Fatalf("EVAL table: %v, %v", arr, err)
	}
	if !errors.Is(arr[1].Err(), &engine.ServerError{Prefix: "MYERR"}) {
		t.Fatalf("EVAL table[1].Err() = %v; want a MYERR *ServerError", arr[1].Err())
	}
	a, err := r.Any()
	if err != nil {
		t.Fatal(err)
	}
	if l := a.([]any); len(l) != 3 || l[0] != int64(1) || l[2] != "x" || !errors.Is(l[1].(error), &engine.ServerError{Prefix: "MYERR"}) {
		t.Fatalf("EVAL table Any = %#v", a)
	}
	_, err = r.Strings()
	isType("Strings of an array holding an error", err)
	_, err = arr[1].String()
	if !errors.Is(err, &engine.ServerError{Prefix: "MYERR"}) {
		t.Fatalf("String of an error element: %v; want its *ServerError", err)
	}
}

// blockers are blocking commands that wait forever on keys nobody writes.
var blockers = [][]string{
	{"BLPOP", "audit:b:l", "0"},
	{"brpop", "audit:b:l", "0"},
	{"BLMove", "audit:b:l", "audit:b:l2", "LEFT", "RIGHT", "0"},
	{"BRPOPLPUSH", "audit:b:l", "audit:b:l2", "0"},
	{"bzpopmin", "audit:b:z", "0"},
	{"BZPOPMAX", "audit:b:z", "0"},
	{"BLMPOP", "0", "1", "audit:b:l", "LEFT"},
	{"BZMPOP", "0", "1", "audit:b:z", "MIN"},
	{"XREAD", "BLOCK", "0", "STREAMS", "audit:b:s", "$"},
	{"xreadgroup", "GROUP", "g", "c", "block", "0", "STREAMS", "audit:b:s", ">"},
}

func auditBlocking(t *testing.T, eng *engine.Engine) {
	ctx := ctxT(t)
	if err := eng.Do(ctx, "XGROUP", "CREATE", "audit:b:s", "g", "$", "MKSTREAM").Err(ctx); err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithCancel(ctx)
	fs := make([]*futures.Future[engine.Reply], len(blockers))
	for i, c := range blockers {
		fs[i] = eng.Do(bctx, c[0], c[1:]...)
	}
	// They hold up no one.
	start := time.Now()
	incrs := make([]*futures.Future[int64], 100)
	for i := range incrs {
		incrs[i] = eng.Incr(ctx, "audit:b:n")
	}
	if _, err := futures.All(ctx, incrs...); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("100 INCRs took %s beside %d blocking commands", took, len(blockers))
	}
	for i, f := range fs {
		if f.IsDone() {
			r, err := f.Await(ctx)
			t.Fatalf("%q ended before anything was written: %v, %v", blockers[i], r, err)
		}
	}
	// Cancelling their ctx ends them promptly.
	cancel()
	start = time.Now()
	for i, f := range fs {
		if _, err := f.Await(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("%q after its ctx was cancelled: %v; want context.Canceled", blockers[i], err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("cancelled blocking commands took %s to end", took)
	}
	// Server-side timeouts are nil replies.
	for _, c := range [][]string{
		{"BLPOP", "audit:b:l", "0.05"}, {"BLMOVE", "audit:b:l", "audit:b:l2", "LEFT", "LEFT", "0.05"},
		{"BZPOPMIN", "audit:b:z", "0.05"}, {"BLMPOP", "0.05", "1", "audit:b:l", "LEFT"},
		{"XREAD", "BLOCK", "50", "STREAMS", "audit:b:s", "$"},
		{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "audit:b:s", ">"},
	} {
		r, err := eng.Do(ctx, c[0], c[1:]...).Await(ctx)
		if err != nil || !r.IsNil() {
			t.Fatalf("%q timing out: %v, %v; want a nil reply", c, r, err)
		}
	}
	// A ctx deadline ends one too.
	dctx, dcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer dcancel()
	start = time.Now()
	if _, err := eng.Sync().Do(dctx, "BLPOP", "audit:b:l", "0"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Client.Do BLPOP with a deadline: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("BLPOP with a 200ms deadline took %s", took)
	}
	// And a blocking command gets its element.
	pop := eng.Do(ctx, "blpop", "audit:b:got", "0")
	if err := eng.RPush(ctx, "audit:b:got", "x").Err(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := pop.Await(ctx); err != nil {
		t.Fatal(err)
	} else if ss, err := r.Strings(); err != nil || !reflect.DeepEqual(ss, []string{"audit:b:got", "x"}) {
		t.Fatalf("BLPOP = %q, %v", ss, err)
	}
}

// WAIT runs on the pipelined connection that made the writes it waits
// for: a WAIT that waits forever (or longer than ReadTimeout) for
// replicas that never answer held up every caller on that connection
// until the read timed out, which closed the connection and failed all
// its commands in flight. Do refuses it.
func auditWait(t *testing.T, eng *engine.Engine) {
	ctx := ctxT(t)
	stop := checker(t, eng, "audit:wait")
	for _, c := range [][]string{{"WAIT", "1", "0"}, {"wait", "1", "3000"}, {"Wait", "2", "60000"}, {"WAITAOF", "0", "1", "0"}} {
		start := time.Now()
		_, err := eng.Do(ctx, c[0], c[1:]...).Await(ctx)
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Fatalf("%q = %v; want ErrInvalidArgument", c, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("%q took %s to be refused", c, took)
		}
	}
	// A short WAIT, or one with nothing to wait for, runs.
	for _, c := range [][]string{{"WAIT", "1", "50"}, {"WAIT", "0", "0"}} {
		r, err := eng.Do(ctx, c[0], c[1:]...).Await(ctx)
		if err != nil {
			t.Fatalf("%q: %v", c, err)
		}
		if n, err := r.Int64(); err != nil || n != 0 {
			t.Fatalf("%q = %d, %v; want 0 (no replicas)", c, n, err)
		}
	}
	// Arguments the server refuses are its to refuse.
	if _, err := eng.Do(ctx, "WAIT", "1", "soon").Await(ctx); !errors.Is(err, &engine.ServerError{Prefix: "ERR"}) {
		t.Fatalf("WAIT 1 soon: %v; want an ERR *ServerError", err)
	}
	stop()
}

// A Pipeline sends its commands through the shared connection actors,
// blocking ones too: BLPOP x 0 held up every caller on the connection
// until its read timed out (ReadTimeout), which closed it and failed
// every command in flight on it. Pipeline.Do refuses a blocking command
// or WAIT that would wait forever or longer than ReadTimeout; short ones
// run, and in a Tx (inside MULTI) they do not block at all.
func auditPipelineBlocking(t *testing.T, eng *engine.Engine) {
	ctx := ctxT(t)
	stop := checker(t, eng, "audit:pipe")
	refused := [][]string{{"WAIT", "1", "0"}, {"wait", "1", "5000"}, {"BLPOP", "audit:p:l", "10"}, {"BRPOP", "audit:p:l", "3.5"}}
	refused = append(refused, blockers...)
	p := eng.Pipeline()
	for _, c := range refused {
		if _, err := p.Do(c[0], c[1:]...).Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
			t.Fatalf("Pipeline.Do%q = %v; want ErrInvalidArgument", c, err)
		}
	}
	short := [][]string{
		{"BLPOP", "audit:p:l", "0.05"}, {"bzpopmin", "audit:p:z", "0.05"}, {"BLMPOP", "0.05", "1", "audit:p:l", "LEFT"},
		{"XREAD", "BLOCK", "50", "STREAMS", "audit:p:s", "$"}, {"BLMOVE", "audit:p:l", "audit:p:l2", "LEFT", "LEFT", "0.3"},
	}
	fs := make([]*futures.Future[engine.Reply], len(short))
	for i, c := range short {
		fs[i] = p.Do(c[0], c[1:]...)
	}
	if err := eng.RPush(ctx, "audit:p:l", "x").Err(ctx); err != nil {
		t.Fatal(err)
	}
	// Exec reports the first refused command; the short ones run.
	if err := p.Exec(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("pipeline of short blocking commands: Exec = %v, want the first refused command's ErrInvalidArgument", err)
	}
	for i, f := range fs {
		if _, err := f.Await(ctx); err != nil {
			t.Fatalf("Pipeline.Do%q: %v", short[i], err)
		}
	}
	// Inside MULTI nothing blocks: the server answers at once.
	tx := eng.Tx()
	pop := tx.Do("BLPOP", "audit:p:empty", "0")
	if err := tx.Exec(ctx); err != nil {
		t.Fatalf("Tx with BLPOP 0: %v", err)
	}
	if r, err := pop.Await(ctx); err != nil || !r.IsNil() {
		t.Fatalf("BLPOP 0 inside MULTI = %v, %v; want a nil reply", r, err)
	}
	stop()
}

// Close ends blocking calls of every kind. Blocked on the server, each
// fails with ErrOutcomeUnknown: the server may have served it (popped an
// item) in Close's last milliseconds; ErrClosed says it never ran.
func auditBlockingClose(t *testing.T, srv *valkeytest.Server) {
	ctx := ctxT(t)
	_, _ = srv.Do("XGROUP", "CREATE", "audit:b:s", "g", "$", "MKSTREAM") // BUSYGROUP after Blocking
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()).WithClientName("audit-close"))
	fs := make([]*futures.Future[engine.Reply], len(blockers))
	for i, c := range blockers {
		fs[i] = eng.Do(ctx, c[0], c[1:]...)
	}
	waitCond(t, 10*time.Second, "every blocking call blocked on the server", func() bool {
		return blockedClients(t, srv, "audit-close") == len(blockers)
	})
	start := time.Now()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %s with blocking calls in progress", took)
	}
	for i, f := range fs {
		if _, err := f.Await(ctx); !errors.Is(err, engine.ErrOutcomeUnknown) || errors.Is(err, engine.ErrClosed) {
			t.Fatalf("%q blocked on the server, cut by Close: %v; want ErrOutcomeUnknown", blockers[i], err)
		}
	}
}

// A ctx deadline ends a command promptly while the server is busy (DEBUG
// SLEEP from another connection): no wait for ReadTimeout.
func auditDeadline(t *testing.T, eng *engine.Engine, srv *valkeytest.Server) {
	ctx := ctxT(t)
	if err := eng.Set(ctx, "audit:slow", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	slept := make(chan error, 1)
	go func() {
		_, err := srv.Do("DEBUG", "SLEEP", "2")
		slept <- err
	}()
	// Wait until the server is asleep: a PING gets no answer.
	asleep := time.Now().Add(5 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := eng.Do(pctx, "PING").Await(pctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if time.Now().After(asleep) {
			t.Fatal("the server never went to sleep")
		}
	}
	calls := map[string]func(context.Context) error{
		"Engine.Do GET": func(c context.Context) error { _, err := eng.Do(c, "GET", "audit:slow").Await(ctx); return err },
		"Engine.Do SET": func(c context.Context) error { _, err := eng.Do(c, "SET", "audit:slow", "v").Await(ctx); return err },
		"Client.Do GET": func(c context.Context) error { _, err := eng.Sync().Do(c, "GET", "audit:slow"); return err },
	}
	for name, call := range calls {
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		start := time.Now()
		err := call(dctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s while the server sleeps: %v; want context.DeadlineExceeded", name, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("%s with a 200ms deadline took %s", name, took)
		}
	}
	if err := <-slept; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	if s, err := eng.Get(ctx, "audit:slow").Await(ctx); err != nil || s != "v" {
		t.Fatalf("GET after the sleep: %q, %v", s, err)
	}
}

// SHUTDOWN through Do (a throwaway server): the future ends with an
// error at once, later commands fail fast, Close returns.
func TestAuditDoShutdown(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(srv.Addr()))
	defer eng.Close()
	ctx := ctxT(t)
	if err := eng.Set(ctx, "k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := eng.Do(ctx, "shutdown", "NOSAVE").Await(ctx); err == nil {
		t.Fatal("SHUTDOWN succeeded: the server cannot answer it")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("SHUTDOWN took %s to fail", took)
	}
	for range 2 {
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		start = time.Now()
		_, err := eng.Do(gctx, "GET", "k").Await(ctx)
		cancel()
		if err == nil {
			t.Fatal("GET after SHUTDOWN succeeded")
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("GET after SHUTDOWN took %s", took)
		}
	}
	start = time.Now()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close after SHUTDOWN took %s", took)
	}
}

// blockedClients returns how many clients named name are blocked on srv
// (CLIENT LIST: flags=b).
func blockedClients(t *testing.T, srv *valkeytest.Server, name string) int {
	t.Helper()
	v, err := srv.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := v.(string)
	n := 0
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if slices.Contains(f, "name="+name) && slices.Contains(f, "flags=b") {
			n++
		}
	}
	return n
}

// A WAIT or WAITAOF timeout in milliseconds beyond what a time.Duration
// holds is refused as any timeout past the read bound is: multiplied
// into nanoseconds it wrapped around, and 2⁵⁸+1 ms (which the server
// takes: about 9 million years) wrapped to 1 ms, so the WAIT was sent on
// the shared connection and held it until its read timed out, failing
// it with an outcome unknown after ReadTimeout.
func TestDoWaitTimeoutBeyondDuration(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	const wraps = "288230376151711745" // 2⁵⁸+1: × 1,000,000 ns wraps to 1 ms
	for _, c := range [][]string{{"WAIT", "1", wraps}, {"WAITAOF", "1", "0", wraps}, {"WAIT", "1", "9223372036854775807"}} {
		start := time.Now()
		_, err := eng.Do(ctx, c[0], c[1:]...).Await(ctx)
		if !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("Do%q = %v after %s; want ErrInvalidArgument", c, err, time.Since(start).Round(time.Millisecond))
		}
		p := eng.Pipeline()
		f := p.Do(c[0], c[1:]...)
		_ = p.Exec(ctx) // reports f's error too
		if _, err := f.Await(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("Pipeline.Do%q = %v; want ErrInvalidArgument", c, err)
		}
	}
	if st := eng.Stats(); st.OutcomeUnknown != 0 || st.Restarts != 0 {
		t.Errorf("stats after the refusals: %d outcomes unknown, %d restarts; want none", st.OutcomeUnknown, st.Restarts)
	}
}
