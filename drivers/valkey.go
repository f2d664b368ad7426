package drivers

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strconv"
	"unsafe"

	"github.com/valkey-io/valkey-go"
)

// The engine builds commands with valkey-go's builder and decodes replies
// with valkey-go's ValkeyResult methods: valkey-go is its protocol layer.
// ValkeyConn is a Conn in those types, which the valkey-go driver
// implements: the engine's hot path then runs without a conversion, as
// it did before drivers had a neutral interface. Conns of other drivers
// get an adapter (Fast), which converts each pipeline's commands and
// replies; only they pay for it.

// ValkeyConn is the fast path of a Conn: the same connection in
// valkey-go's types. A Conn that implements it is used through it (see
// Fast); the concurrency rules of Conn apply to Do and DoMulti as to Exec.
type ValkeyConn interface {
	// B returns the command builder for commands sent on this connection.
	B() valkey.Builder
	// Do writes one command and returns its result. The connection actor
	// uses it for batches of one, where it is cheaper than DoMulti.
	Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult
	// DoMulti writes cmds as one pipeline and returns one result per
	// command, in order. A transport failure fails every command it
	// affects with a non-server error. The commands belong to the driver
	// after the call (valkey-go recycles them), unless pinned; the
	// results belong to the caller (the connection actor may complete
	// them on another goroutine while the next pipeline is in flight).
	DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult
	// Close closes the connection; commands in flight fail. Idempotent.
	Close() error
}

// LostNotifier is the optional capability of a ValkeyConn that finds out
// by itself that its connection failed while nothing was sent on it (the
// valkey-go driver's idle PING): OnLost registers f, called at most once,
// on a goroutine of the driver's, with the error. The engine's connection
// actors use it to replace such a connection at once instead of at the
// next command. A later OnLost replaces f; nil removes it.
type LostNotifier interface {
	OnLost(f func(error))
}

// ValkeyPubSub is PubSub in valkey-go's types: the optional capability of
// a ValkeyConn the engine's subscribers use. Fast's adapter implements it
// when the Conn implements PubSub.
type ValkeyPubSub interface {
	// ListenValkey is PubSub.Listen with valkey-go's hooks; subscribe
	// commands go through Do and DoMulti.
	ListenValkey(h valkey.PubSubHooks) <-chan error
}

// Fast returns conn's fast path: conn itself when it implements
// ValkeyConn, otherwise an adapter that sends each pipeline through Exec
// and converts the replies to valkey-go's (see ToValkey). The adapter
// implements ValkeyPubSub when conn implements PubSub. It fails only when
// the valkey-go version the module builds with is one the adapter does
// not know (see noSlotBuilder).
func Fast(conn Conn) (ValkeyConn, error) {
	if vc, ok := conn.(ValkeyConn); ok {
		return vc, nil
	}
	b, err := noSlotBuilder()
	if err != nil {
		return nil, err
	}
	a := &adapter{c: conn, b: b}
	if ps, ok := conn.(PubSub); ok {
		return &pubsubAdapter{adapter: a, ps: ps}, nil
	}
	return a, nil
}

// adapter is a ValkeyConn over a neutral Conn.
type adapter struct {
	c Conn
	b valkey.Builder
}

// B implements ValkeyConn.
func (a *adapter) B() valkey.Builder { return a.b }

// Do implements ValkeyConn.
func (a *adapter) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return a.DoMulti(ctx, cmd)[0]
}

// DoMulti implements ValkeyConn: the commands' arguments are handed to
// Exec as they are (Completed.Commands does not copy), the results
// converted in one buffer per pipeline.
func (a *adapter) DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	ncmds := make([]Command, len(cmds))
	for i, c := range cmds {
		var f Flags
		if c.IsBlock() {
			f |= Blocking
		}
		if c.IsReadOnly() {
			f |= ReadOnly
		}
		ncmds[i] = Command{Args: c.Commands(), Flags: f}
	}
	out := make([]Result, len(cmds))
	a.c.Exec(ctx, ncmds, out)
	return ToValkey(out)
}

// Close implements ValkeyConn.
func (a *adapter) Close() error { return a.c.Close() }

// Neutral returns the Conn under the adapter.
func (a *adapter) Neutral() Conn { return a.c }

type pubsubAdapter struct {
	*adapter
	ps PubSub
}

// ListenValkey implements ValkeyPubSub over PubSub.Listen.
func (p *pubsubAdapter) ListenValkey(h valkey.PubSubHooks) <-chan error {
	var nh PubSubHooks
	if h.OnMessage != nil {
		nh.OnMessage = func(m Message) {
			h.OnMessage(valkey.PubSubMessage{Channel: m.Channel, Message: m.Message, Pattern: m.Pattern})
		}
	}
	if h.OnSubscription != nil {
		nh.OnSubscription = func(s Subscription) {
			h.OnSubscription(valkey.PubSubSubscription{Kind: s.Kind, Channel: s.Channel, Count: s.Count})
		}
	}
	return p.ps.Listen(nh)
}

// errBuilder says that valkey.Builder is no longer the struct the adapter
// knows.
var errBuilder = errors.New("drivers: the adapter does not know this valkey-go version's Builder (go test ./drivers says more)")

// noSlotBuilder returns the builder valkey-go gives a standalone client
// (cmds.NewBuilder(cmds.NoSlot)): valkey-go exports no constructor for it,
// and its zero value checks keys as a cluster builder does (and panics on
// keys of different slots). valkey.Builder is a struct with one uint16,
// the slot state; NoSlot is 1<<15. The layout is checked here, and a test
// compares the result with a real client's B().
func noSlotBuilder() (valkey.Builder, error) {
	var b valkey.Builder
	t := reflect.TypeOf(b)
	if t.Kind() != reflect.Struct || t.NumField() != 1 || t.Field(0).Type.Kind() != reflect.Uint16 || t.Size() != 2 {
		return b, errBuilder
	}
	*(*uint16)(unsafe.Pointer(&b)) = 1 << 15
	return b, nil
}

// valkey-go has one public way to build an arbitrary ValkeyMessage:
// (*ValkeyMessage).CacheUnmarshalView, which reads the format of
// CacheMarshal (valkey-go's client-side cache stored elsewhere): 7 bytes
// of TTL, then per value its RESP3 type byte, 8 bytes big-endian (the
// integer; a string's length; an aggregate's element count, a map's
// keys and values counted apart), the string's bytes, an aggregate's
// elements. It is valkey-go's own format and may change between
// versions: TestValkeyFormat pins it (every kind, against messages that
// valkey-go parsed from a server). Messages built this way report
// IsCacheHit true; the engine does not look at it.

// The RESP3 type bytes of valkey-go's messages.
const (
	typeString    = '$'
	typeStatus    = '+'
	typeError     = '-'
	typeBlobError = '!'
	typeInt       = ':'
	typeNull      = '_'
	typeFloat     = ','
	typeBool      = '#'
	typeVerbatim  = '='
	typeBigNumber = '('
	typeArray     = '*'
	typeMap       = '%'
	typeSet       = '~'
)

// ttlSize is the TTL prefix of CacheMarshal's format.
const ttlSize = 7

// ToValkey converts results to valkey-go's: a reply becomes the message
// valkey-go would have parsed from the wire, Err a result whose
// NonValkeyError is Err. The messages' strings share one buffer.
func ToValkey(results []Result) []valkey.ValkeyResult {
	n := 0
	for i := range results {
		if results[i].Err == nil {
			n += ttlSize + encodedSize(&results[i].Value)
		}
	}
	buf := make([]byte, 0, n)
	out := make([]valkey.ValkeyResult, len(results))
	for i := range results {
		if results[i].Err != nil {
			out[i] = valkey.NewErrorResult(results[i].Err)
			continue
		}
		start := len(buf)
		buf = append(buf, make([]byte, ttlSize)...)
		buf = encode(buf, &results[i].Value)
		var m valkey.ValkeyMessage
		if err := m.CacheUnmarshalView(buf[start:len(buf):len(buf)]); err != nil {
			out[i] = valkey.NewErrorResult(err)
			continue
		}
		out[i] = valkey.NewResult(m, nil)
	}
	return out
}

// encodedSize is the size of v in CacheMarshal's format, without the TTL.
func encodedSize(v *Value) int {
	n := 9
	switch v.Kind {
	case KindNull, KindInt, KindBool:
	case KindFloat:
		n += len(formatFloat(v.Float))
	case KindArray, KindMap, KindSet:
		for i := range v.Elems {
			n += encodedSize(&v.Elems[i])
		}
	default:
		n += len(v.Str)
	}
	return n
}

func encode(buf []byte, v *Value) []byte {
	putHead := func(typ byte, n uint64) {
		buf = append(buf, typ)
		buf = binary.BigEndian.AppendUint64(buf, n)
	}
	putString := func(typ byte, s string) {
		putHead(typ, uint64(len(s)))
		buf = append(buf, s...)
	}
	switch v.Kind {
	case KindNull:
		putHead(typeNull, 0)
	case KindString:
		putString(typeString, v.Str)
	case KindStatus:
		putString(typeStatus, v.Str)
	case KindError:
		putString(typeError, v.Str)
	case KindInt:
		putHead(typeInt, uint64(v.Int))
	case KindFloat:
		putString(typeFloat, formatFloat(v.Float))
	case KindBool:
		var b uint64
		if v.Bool {
			b = 1
		}
		putHead(typeBool, b)
	case KindBigNumber:
		putString(typeBigNumber, v.Str)
	case KindVerbatim:
		putString(typeVerbatim, v.Str)
	case KindArray, KindMap, KindSet:
		typ := byte(typeArray)
		if v.Kind == KindMap {
			typ = typeMap
		} else if v.Kind == KindSet {
			typ = typeSet
		}
		putHead(typ, uint64(len(v.Elems)))
		for i := range v.Elems {
			buf = encode(buf, &v.Elems[i])
		}
	default: // an unknown kind: an error reply that says so
		putString(typeError, "ERR vactor/drivers: reply of unknown kind "+strconv.Itoa(int(v.Kind)))
	}
	return buf
}

// FromValkey converts a valkey-go result to a Result: its reply, or Err
// for a result without one. Strings of the Value share one buffer.
func FromValkey(r valkey.ValkeyResult) Result {
	if err := r.NonValkeyError(); err != nil {
		return Result{Err: err}
	}
	m, _ := r.ToMessage()
	return Result{Value: ValueOf(&m)}
}

// ValueOf returns the Value of a valkey-go message (which it reads through
// CacheMarshal, the only view valkey-go gives of a message's exact type).
// The empty message valkey-go returns for commands whose answer is a push
// (SUBSCRIBE and the like, once confirmed) reads as Status("OK").
func ValueOf(m *valkey.ValkeyMessage) Value {
	buf := m.CacheMarshal(nil)
	if len(buf) < ttlSize+1 {
		return Error("ERR vactor/drivers: unreadable valkey-go message")
	}
	if buf[ttlSize] == 0 {
		return Status("OK")
	}
	v, _, ok := decode(buf, ttlSize)
	if !ok {
		return Error("ERR vactor/drivers: unreadable valkey-go message")
	}
	return v
}

// Elements returns the elements of an array, set or map message, a map's
// keys and values alternating, each a message of its own with its exact
// type and text; ok is false for any other message. valkey-go's ToMap
// reads only string keys (LATENCY HISTOGRAM's histogram_usec counts
// calls by integer bucket) and its ToArray no map, so this is the one
// view of such a map. It reads CacheMarshal's format (see ToValkey);
// every element is built from a copy of its bytes.
func Elements(m *valkey.ValkeyMessage) ([]valkey.ValkeyMessage, bool) {
	buf := m.CacheMarshal(nil)
	if len(buf) < ttlSize+9 {
		return nil, false
	}
	if typ := buf[ttlSize]; typ != typeArray && typ != typeMap && typ != typeSet {
		return nil, false
	}
	n := binary.BigEndian.Uint64(buf[ttlSize+1 : ttlSize+9])
	if n > uint64(len(buf)-ttlSize-9)/9 {
		return nil, false
	}
	out := make([]valkey.ValkeyMessage, n)
	for i, c := 0, ttlSize+9; i < len(out); i++ {
		_, end, ok := decode(buf, c)
		if !ok {
			return nil, false
		}
		elem := make([]byte, ttlSize, ttlSize+end-c)
		elem = append(elem, buf[c:end]...)
		if err := out[i].CacheUnmarshalView(elem); err != nil {
			return nil, false
		}
		c = end
	}
	return out, true
}

// decode reads the value at buf[c:]; it returns the offset after it and
// false if buf is too short or holds an unknown type.
func decode(buf []byte, c int) (Value, int, bool) {
	if len(buf) < c+9 {
		return Value{}, 0, false
	}
	typ := buf[c]
	n := binary.BigEndian.Uint64(buf[c+1 : c+9])
	c += 9
	str := func() (string, bool) {
		if n > uint64(len(buf)-c) {
			return "", false
		}
		s := unsafe.String(unsafe.SliceData(buf[c:]), int(n))
		if n == 0 {
			s = ""
		}
		c += int(n)
		return s, true
	}
	var v Value
	switch typ {
	case typeNull:
		return v, c, true
	case typeInt:
		return Int(int64(n)), c, true
	case typeBool:
		return Bool(n != 0), c, true
	case typeArray, typeMap, typeSet:
		if n > uint64(len(buf)-c)/9 {
			return v, 0, false
		}
		v.Kind = KindArray
		if typ == typeMap {
			v.Kind = KindMap
		} else if typ == typeSet {
			v.Kind = KindSet
		}
		v.Elems = make([]Value, n)
		for i := range v.Elems {
			var ok bool
			if v.Elems[i], c, ok = decode(buf, c); !ok {
				return v, 0, false
			}
		}
		return v, c, true
	}
	s, ok := str()
	if !ok {
		return v, 0, false
	}
	switch typ {
	case typeString:
		return String(s), c, true
	case typeStatus:
		return Status(s), c, true
	case typeError, typeBlobError:
		return Error(s), c, true
	case typeFloat:
		return Float(parseFloat(s)), c, true
	case typeBigNumber:
		return Value{Kind: KindBigNumber, Str: s}, c, true
	case typeVerbatim:
		return Value{Kind: KindVerbatim, Str: s}, c, true
	}
	return v, 0, false
}

// parseFloat reads a RESP3 double (inf, -inf, nan included); unreadable
// text is NaN.
func parseFloat(s string) float64 {
	switch s {
	case "inf", "+inf":
		return math.Inf(1)
	case "-inf":
		return math.Inf(-1)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}
