package drivers_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/valkeygo"
	"github.com/vactor-io/vactor/valkeytest"
)

// every holds one Value of each kind, nested aggregates included.
var every = []drivers.Value{
	drivers.Null(),
	drivers.String(""),
	drivers.String("bulk \x00\xff\r\n"),
	drivers.Status("OK"),
	drivers.Error("WRONGTYPE Operation against a key holding the wrong kind of value"),
	drivers.Error("ERR unknown command"),
	drivers.Int(0),
	drivers.Int(-1 << 63),
	drivers.Int(1<<63 - 1),
	drivers.Float(3.25),
	drivers.Float(-0.1),
	drivers.Float(math.Inf(1)),
	drivers.Float(math.Inf(-1)),
	drivers.Float(math.NaN()),
	drivers.Float(1e308),
	drivers.Float(5e-324),
	drivers.Float(1e6),
	drivers.Bool(true),
	drivers.Bool(false),
	{Kind: drivers.KindBigNumber, Str: "1234567890123456789012345678901234567890"},
	{Kind: drivers.KindVerbatim, Str: "txt:hello"},
	drivers.Array(),
	drivers.Array(drivers.Int(1), drivers.String("a"), drivers.Null(), drivers.Array(drivers.Bool(true))),
	drivers.Map(drivers.String("b"), drivers.Int(2), drivers.String("a"), drivers.Map()),
	drivers.Set(drivers.String("x"), drivers.Int(7)),
}

// Every kind survives the trip to valkey-go's message and back.
func TestValueRoundTrip(t *testing.T) {
	rs := make([]drivers.Result, len(every))
	for i, v := range every {
		rs[i] = drivers.Result{Value: v}
	}
	for i, r := range drivers.ToValkey(rs) {
		got := drivers.FromValkey(r)
		if got.Err != nil || !got.Value.Equal(every[i]) {
			t.Errorf("%v: back as %v, %v", every[i], got.Value, got.Err)
		}
	}
	transport := errors.New("connection reset")
	r := drivers.ToValkey([]drivers.Result{{Err: transport}})[0]
	if r.NonValkeyError() != transport {
		t.Fatalf("Err became %v", r.NonValkeyError())
	}
	if back := drivers.FromValkey(r); back.Err != transport {
		t.Fatalf("FromValkey of a transport error: %+v", back)
	}
}

// A double reads as a RESP3 server writes it ("%.17g", shortest digits):
// no exponent from 1e-4 up to 1e17, one outside, C's "-nan" for a NaN with
// its sign bit set; and the text reads back as the same bits (qa-AW AW3:
// 1e308 read as 309 digits, 5e-324 as ~330).
func TestFloatText(t *testing.T) {
	negNaN := math.Copysign(math.NaN(), -1)
	for _, c := range []struct {
		f    float64
		want string
	}{
		{0.1, "0.1"}, {-0.1, "-0.1"}, {1e6, "1000000"}, {3.25, "3.25"},
		{0, "0"}, {math.Copysign(0, -1), "-0"}, {1e-4, "0.0001"}, {9.9e-5, "9.9e-05"},
		{1e16, "10000000000000000"}, {1e17, "1e+17"}, {1e308, "1e+308"},
		{5e-324, "5e-324"}, {-math.MaxFloat64, "-1.7976931348623157e+308"},
		{math.Inf(1), "inf"}, {math.Inf(-1), "-inf"}, {math.NaN(), "nan"}, {negNaN, "-nan"},
	} {
		v := drivers.Float(c.f)
		if got := v.String(); got != c.want {
			t.Errorf("Float(%v).String() = %q, want %q", c.f, got, c.want)
		}
		m := drivers.ToValkey([]drivers.Result{{Value: v}})[0]
		if s, err := m.ToString(); err != nil || s != c.want {
			t.Errorf("Float(%v) as valkey-go's message: %q, %v; want %q", c.f, s, err, c.want)
		}
		back, err := m.AsFloat64()
		if err != nil || (back != c.f && !(back != back && c.f != c.f)) || math.Signbit(back) != math.Signbit(c.f) && c.f == c.f {
			t.Errorf("Float(%v) read back as %v, %v", c.f, back, err)
		}
	}
}

// What the engine's decoders read from converted messages is what they
// read from messages valkey-go parsed.
func TestToValkeyAccessors(t *testing.T) {
	conv := func(v drivers.Value) valkey.ValkeyResult {
		return drivers.ToValkey([]drivers.Result{{Value: v}})[0]
	}
	if s, err := conv(drivers.String("v")).ToString(); s != "v" || err != nil {
		t.Errorf("string: %q %v", s, err)
	}
	if s, err := conv(drivers.Status("OK")).ToString(); s != "OK" || err != nil {
		t.Errorf("status: %q %v", s, err)
	}
	if err := conv(drivers.Null()).Error(); !valkey.IsValkeyNil(err) {
		t.Errorf("null: %v", err)
	}
	r := conv(drivers.Error("MOVED 3999 127.0.0.1:6381"))
	if ve, ok := valkey.IsValkeyErr(r.Error()); !ok || r.NonValkeyError() != nil {
		t.Errorf("error reply: %v is not a server error", r.Error())
	} else if addr, ok := ve.IsMoved(); !ok || addr != "127.0.0.1:6381" {
		t.Errorf("MOVED: %q %v", addr, ok)
	}
	if ve, ok := valkey.IsValkeyErr(conv(drivers.Error("ERR boom")).Error()); !ok || ve.Error() != "boom" {
		t.Errorf("ERR reply reads %v (valkey-go strips ERR)", ve)
	}
	if n, err := conv(drivers.Int(42)).AsInt64(); n != 42 || err != nil {
		t.Errorf("int: %d %v", n, err)
	}
	if f, err := conv(drivers.Float(1.5)).AsFloat64(); f != 1.5 || err != nil {
		t.Errorf("float: %v %v", f, err)
	}
	if s, err := conv(drivers.Float(1.5)).ToString(); s != "1.5" || err != nil {
		t.Errorf("float as string: %q %v", s, err)
	}
	if b, err := conv(drivers.Bool(true)).AsBool(); !b || err != nil {
		t.Errorf("bool: %v %v", b, err)
	}
	if ss, err := conv(drivers.Array(drivers.String("a"), drivers.String("b"))).AsStrSlice(); err != nil || !reflect.DeepEqual(ss, []string{"a", "b"}) {
		t.Errorf("array: %q %v", ss, err)
	}
	if m, err := conv(drivers.Map(drivers.String("k"), drivers.String("v"))).AsStrMap(); err != nil || m["k"] != "v" {
		t.Errorf("map: %v %v", m, err)
	}
	if ss, err := conv(drivers.Set(drivers.String("a"))).AsStrSlice(); err != nil || len(ss) != 1 {
		t.Errorf("set: %q %v", ss, err)
	}
	// The one visible difference: converted messages say they came from
	// the client-side cache. The engine does not look.
	m, _ := conv(drivers.String("v")).ToMessage()
	if !m.IsCacheHit() {
		t.Log("IsCacheHit is false on converted messages now: update the note in drivers/valkey.go")
	}
}

// dialValkey dials the valkey-go driver; the connection closes at cleanup.
func dialValkey(t *testing.T, addr string) *valkeygo.Conn {
	t.Helper()
	c, err := valkeygo.Driver{}.Dial(context.Background(), drivers.Options{Addr: addr, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*valkeygo.Conn)
}

// TestValkeyFormat pins valkey-go's CacheMarshal format, which ToValkey
// writes and ValueOf reads, against messages valkey-go parsed from a
// server: every RESP3 kind reads as the expected Value, and converting
// that Value back gives the same bytes as marshalling the original.
func TestValkeyFormat(t *testing.T) {
	srv := valkeytest.Start(t)
	c := dialValkey(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eval := func(script string) []string {
		return []string{"EVAL", "redis.setresp(3); " + script, "0"}
	}
	cases := []struct {
		args []string
		want drivers.Value
	}{
		{[]string{"SET", "k", "v\x00"}, drivers.Status("OK")},
		{[]string{"GET", "k"}, drivers.String("v\x00")},
		{[]string{"GET", "missing"}, drivers.Null()},
		{[]string{"LPUSH", "k", "x"}, drivers.Error("WRONGTYPE Operation against a key holding the wrong kind of value")},
		{[]string{"INCR", "n"}, drivers.Int(1)},
		{eval("return {double=2.5}"), drivers.Float(2.5)},
		{eval("return true"), drivers.Bool(true)},
		{eval("return false"), drivers.Bool(false)},
		{eval("return {big_number='123456789012345678901234567890'}"), drivers.Value{Kind: drivers.KindBigNumber, Str: "123456789012345678901234567890"}},
		{eval("return {verbatim_string={format='txt', string='hi'}}"), drivers.Value{Kind: drivers.KindVerbatim, Str: "txt:hi"}},
		{eval("return {1, 'a', {2}}"), drivers.Array(drivers.Int(1), drivers.String("a"), drivers.Array(drivers.Int(2)))},
		{eval("return {map={a=1}}"), drivers.Map(drivers.String("a"), drivers.Int(1))},
		{eval("return {set={a=true}}"), drivers.Set(drivers.String("a"))},
		{eval("return {}"), drivers.Array()},
	}
	cmds := make(valkey.Commands, len(cases))
	for i, cs := range cases {
		cmds[i] = c.B().Arbitrary(cs.args...).Build()
	}
	for i, r := range c.DoMulti(ctx, cmds...) {
		if r.NonValkeyError() != nil {
			t.Fatalf("%q: %v", cases[i].args, r.NonValkeyError())
		}
		orig, _ := r.ToMessage()
		got := drivers.ValueOf(&orig)
		if !got.Equal(cases[i].want) {
			t.Errorf("%q: read as %v, want %v", cases[i].args, got, cases[i].want)
			continue
		}
		back, _ := drivers.ToValkey([]drivers.Result{{Value: got}})[0].ToMessage()
		if a, b := orig.CacheMarshal(nil), back.CacheMarshal(nil); !bytes.Equal(a, b) {
			t.Errorf("%q: converted back to\n%q\nvalkey-go parsed\n%q", cases[i].args, b, a)
		}
	}
}

// neutralOnly hides a Conn's fast path: Fast must adapt it.
type neutralOnly struct{ drivers.Conn }

// The adapter's builder is the one valkey-go gives a standalone client:
// multi-key commands over several slots build without a panic.
func TestAdapterBuilder(t *testing.T) {
	srv := valkeytest.Start(t)
	c := dialValkey(t, srv.Addr())
	fast, err := drivers.Fast(neutralOnly{c})
	if err != nil {
		t.Fatal(err)
	}
	if _, adapted := fast.(*valkeygo.Conn); adapted {
		t.Fatal("Fast did not adapt a neutral-only Conn")
	}
	if !reflect.DeepEqual(fast.B(), c.B()) {
		t.Fatalf("adapter builder %+v, valkey-go client's %+v", fast.B(), c.B())
	}
	cmd := fast.B().Mget().Key("a", "b", "c", "{x}1").Build()
	if got := cmd.Commands(); len(got) != 5 {
		t.Fatalf("MGET built as %q", got)
	}
}

// A Conn with a fast path is used through it: Fast returns it as is.
func TestFastKeepsValkeyConn(t *testing.T) {
	srv := valkeytest.Start(t)
	c := dialValkey(t, srv.Addr())
	fast, err := drivers.Fast(c)
	if err != nil {
		t.Fatal(err)
	}
	if fast != drivers.ValkeyConn(c) {
		t.Fatalf("Fast wrapped the valkey-go Conn: %T", fast)
	}
	if _, ok := fast.(drivers.ValkeyPubSub); !ok {
		t.Fatal("the valkey-go Conn lost pub/sub")
	}
}

// The adapter gives the engine what the valkey-go driver gives it, in
// order, with blocking commands flagged; pub/sub only when the Conn has
// it.
func TestAdapterPipeline(t *testing.T) {
	srv := valkeytest.Start(t)
	c := dialValkey(t, srv.Addr())
	fast, err := drivers.Fast(neutralOnly{c})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fast.(drivers.ValkeyPubSub); ok {
		t.Fatal("adapter of a Conn without PubSub offers pub/sub")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := fast.B()
	rs := fast.DoMulti(ctx,
		b.Set().Key("k").Value("1").Build(),
		b.Incr().Key("k").Build(),
		b.Get().Key("missing").Build(),
		b.Lpush().Key("k").Element("x").Build(),
		b.Blpop().Key("list").Timeout(0.01).Build(),
	)
	if s, err := rs[0].ToString(); s != "OK" || err != nil {
		t.Errorf("SET: %q %v", s, err)
	}
	if n, err := rs[1].AsInt64(); n != 2 || err != nil {
		t.Errorf("INCR: %d %v", n, err)
	}
	if !valkey.IsValkeyNil(rs[2].Error()) {
		t.Errorf("GET missing: %v", rs[2].Error())
	}
	if _, ok := valkey.IsValkeyErr(rs[3].Error()); !ok || !strings.HasPrefix(rs[3].Error().Error(), "WRONGTYPE") {
		t.Errorf("LPUSH on a string: %v", rs[3].Error())
	}
	if !valkey.IsValkeyNil(rs[4].Error()) {
		t.Errorf("BLPOP timed out: %v", rs[4].Error())
	}
	if s, err := fast.Do(ctx, b.Get().Key("k").Build()).ToString(); s != "2" || err != nil {
		t.Errorf("Do GET: %q %v", s, err)
	}
	_ = fast.Close()
	if err := fast.Do(ctx, b.Ping().Build()).NonValkeyError(); err == nil {
		t.Fatal("PING after Close succeeded")
	}

	// With PubSub, the adapter offers ValkeyPubSub.
	ps, err := drivers.Fast(neutralPubSub{dialValkey(t, srv.Addr())})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ps.(drivers.ValkeyPubSub); !ok {
		t.Fatal("adapter of a Conn with PubSub does not offer pub/sub")
	}
}

// neutralPubSub hides the fast path of a Conn that has PubSub.
type neutralPubSub struct{ c *valkeygo.Conn }

func (n neutralPubSub) Exec(ctx context.Context, cmds []drivers.Command, out []drivers.Result) {
	n.c.Exec(ctx, cmds, out)
}

func (n neutralPubSub) Close() error { return n.c.Close() }

func (n neutralPubSub) Listen(h drivers.PubSubHooks) <-chan error { return n.c.Listen(h) }

func TestCapabilities(t *testing.T) {
	var none drivers.Capabilities
	if got := drivers.CapabilitiesOf(&fakeDriver{}); got != none {
		t.Fatalf("a driver without Capabilities has %v", got)
	}
	caps := drivers.CapabilitiesOf(valkeygo.Driver{})
	if got := caps.Missing(drivers.Capabilities{TLSConfig: true, PubSub: true, Sentinel: true}); got != nil {
		t.Fatalf("valkey-go lacks %v", got)
	}
	some := drivers.Capabilities{TLS: true, Blocking: true}
	if got := some.Missing(drivers.Capabilities{TLS: true, TLSConfig: true, PubSub: true}); !reflect.DeepEqual(got, []string{"TLSConfig", "PubSub"}) {
		t.Fatalf("Missing = %q", got)
	}
	if s := some.String(); s != "TLS, Blocking" {
		t.Fatalf("String = %q", s)
	}
	if s := none.String(); s != "none" {
		t.Fatalf("String of none = %q", s)
	}
	err := error(&drivers.UnsupportedError{Driver: "glide", Capability: "TLSConfig", Need: "TLS.CertFile"})
	if !errors.Is(err, drivers.ErrUnsupported) || !strings.Contains(err.Error(), `"glide"`) || !strings.Contains(err.Error(), "TLSConfig") {
		t.Fatalf("UnsupportedError: %v", err)
	}
}

// Elements gives an aggregate's elements with their exact types, a
// map's keys and values alternating (integer keys included, which
// valkey-go's ToMap refuses), and nothing for a scalar.
func TestElements(t *testing.T) {
	msg := func(v drivers.Value) valkey.ValkeyMessage {
		m, _ := drivers.ToValkey([]drivers.Result{{Value: v}})[0].ToMessage()
		return m
	}
	for _, v := range []drivers.Value{
		drivers.Map(drivers.Int(8), drivers.Int(3), drivers.String("k"), drivers.Array(drivers.Float(2.5), drivers.Null())),
		drivers.Array(drivers.Error("ERR x"), drivers.Value{Kind: drivers.KindVerbatim, Str: "txt:v"}, drivers.Map()),
		drivers.Set(drivers.Bool(true)),
		drivers.Array(),
	} {
		m := msg(v)
		elems, ok := drivers.Elements(&m)
		if !ok || len(elems) != len(v.Elems) {
			t.Fatalf("Elements of %v: %d elements, %v; want %d", v, len(elems), ok, len(v.Elems))
		}
		for i := range elems {
			if got := drivers.ValueOf(&elems[i]); !got.Equal(v.Elems[i]) {
				t.Errorf("Elements of %v [%d] = %v; want %v", v, i, got, v.Elems[i])
			}
		}
	}
	for _, v := range []drivers.Value{drivers.String("a"), drivers.Int(1), drivers.Null(), drivers.Error("ERR x")} {
		m := msg(v)
		if elems, ok := drivers.Elements(&m); ok {
			t.Errorf("Elements of %v = %v, true; want false", v, elems)
		}
	}
	var zero valkey.ValkeyMessage
	if _, ok := drivers.Elements(&zero); ok {
		t.Error("Elements of the zero message: ok; want false")
	}
}
