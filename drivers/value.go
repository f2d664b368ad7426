package drivers

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Command is one command as the driver sends it: its name and arguments,
// in order, binary-safe (a Go string may hold any bytes), and flags that
// say how the driver must treat it. The slice belongs to the caller: the
// driver may read it until Exec returns and must not keep or modify it.
type Command struct {
	Args  []string
	Flags Flags
}

// Flags tell a driver what it needs to know about a command beyond its
// arguments. The zero value is an ordinary command.
type Flags uint8

const (
	// Blocking marks a command that may wait on the server (BLPOP,
	// XREAD BLOCK, ...): a driver sends it on a connection of its own (see
	// Capabilities.Blocking), does not bound it by Options.ReadTimeout,
	// and ends it when ctx ends or the Conn is closed.
	Blocking Flags = 1 << iota
	// ReadOnly marks a command that does not write: a driver may use it
	// for routing decisions (none of vactor's drivers does).
	ReadOnly
)

// Kind is the RESP3 type of a Value.
type Kind uint8

// The kinds of Value. Each says which fields of Value it uses.
const (
	// KindNull is a RESP null (a missing key, a timed-out blocking pop):
	// no field.
	KindNull Kind = iota
	// KindString is a bulk string: Str.
	KindString
	// KindStatus is a simple string such as OK or PONG: Str.
	KindStatus
	// KindError is an error reply: Str holds its whole text as the server
	// sent it, error code first ("WRONGTYPE Operation against a key ...",
	// "MOVED 3999 127.0.0.1:6381"). It is a reply, not a failure of the
	// connection (see Result.Err).
	KindError
	// KindInt is an integer: Int.
	KindInt
	// KindFloat is a double: Float.
	KindFloat
	// KindBool is a boolean: Bool.
	KindBool
	// KindBigNumber is a big number: Str holds its decimal digits.
	KindBigNumber
	// KindVerbatim is a verbatim string: Str holds the payload as sent,
	// its three-letter format and colon first ("txt:...").
	KindVerbatim
	// KindArray is an array: Elems.
	KindArray
	// KindMap is a map: Elems holds keys and values alternately (key,
	// value, key, value, ...) in the order the server sent them.
	KindMap
	// KindSet is a set: Elems, in the order the server sent them.
	KindSet
)

var kindNames = [...]string{
	KindNull: "null", KindString: "string", KindStatus: "status", KindError: "error",
	KindInt: "int", KindFloat: "float", KindBool: "bool", KindBigNumber: "big number",
	KindVerbatim: "verbatim", KindArray: "array", KindMap: "map", KindSet: "set",
}

// String returns the kind's name ("string", "map", ...).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one RESP3 reply, in a form any driver can build: Kind says
// which of the other fields hold it; the others are zero. The zero Value
// is a null. A Value is plain data: safe to copy and to read from any
// number of goroutines.
type Value struct {
	Kind  Kind
	Str   string
	Int   int64
	Float float64
	Bool  bool
	Elems []Value
}

// Result is what a command got: a reply (Value, which may be an error
// reply: KindError), or Err when it got none because the command could
// not be sent, its reply could not be read, its ctx ended or the Conn was
// closed. Err is never a server's error reply; Value is ignored when Err
// is set.
type Result struct {
	Value Value
	Err   error
}

// Constructors for the common kinds, for drivers and tests.

// Null returns a null Value.
func Null() Value { return Value{} }

// String returns a bulk string Value.
func String(s string) Value { return Value{Kind: KindString, Str: s} }

// Status returns a simple string Value (OK, PONG).
func Status(s string) Value { return Value{Kind: KindStatus, Str: s} }

// Error returns an error reply Value with the text the server sent.
func Error(text string) Value { return Value{Kind: KindError, Str: text} }

// Int returns an integer Value.
func Int(n int64) Value { return Value{Kind: KindInt, Int: n} }

// Float returns a double Value.
func Float(f float64) Value { return Value{Kind: KindFloat, Float: f} }

// Bool returns a boolean Value.
func Bool(b bool) Value { return Value{Kind: KindBool, Bool: b} }

// Array returns an array Value of elems.
func Array(elems ...Value) Value { return Value{Kind: KindArray, Elems: elems} }

// Map returns a map Value of kv, keys and values alternately.
func Map(kv ...Value) Value { return Value{Kind: KindMap, Elems: kv} }

// Set returns a set Value of elems.
func Set(elems ...Value) Value { return Value{Kind: KindSet, Elems: elems} }

// Equal reports whether v and w are the same reply: same kind, same
// payload, elements equal in order. Floats compare by value (NaN equals
// NaN).
func (v Value) Equal(w Value) bool {
	if v.Kind != w.Kind {
		return false
	}
	switch v.Kind {
	case KindNull:
		return true
	case KindInt:
		return v.Int == w.Int
	case KindFloat:
		return v.Float == w.Float || (v.Float != v.Float && w.Float != w.Float)
	case KindBool:
		return v.Bool == w.Bool
	case KindArray, KindMap, KindSet:
		if len(v.Elems) != len(w.Elems) {
			return false
		}
		for i := range v.Elems {
			if !v.Elems[i].Equal(w.Elems[i]) {
				return false
			}
		}
		return true
	default:
		return v.Str == w.Str
	}
}

// String formats v for messages and tests: strings quoted, aggregates in
// brackets.
func (v Value) String() string {
	var b strings.Builder
	v.format(&b)
	return b.String()
}

func (v Value) format(b *strings.Builder) {
	switch v.Kind {
	case KindNull:
		b.WriteString("null")
	case KindInt:
		b.WriteString(strconv.FormatInt(v.Int, 10))
	case KindFloat:
		b.WriteString(formatFloat(v.Float))
	case KindBool:
		b.WriteString(strconv.FormatBool(v.Bool))
	case KindArray, KindMap, KindSet:
		b.WriteString(v.Kind.String())
		b.WriteByte('[')
		for i, e := range v.Elems {
			if i > 0 {
				b.WriteByte(' ')
			}
			e.format(b)
		}
		b.WriteByte(']')
	case KindString:
		b.WriteString(strconv.Quote(v.Str))
	default:
		fmt.Fprintf(b, "%s(%q)", v.Kind, v.Str)
	}
}

// formatFloat writes a double as a RESP3 server does (its "%.17g"):
// inf, -inf, nan ("-nan" with the sign bit set, as C's printf writes
// it), and otherwise the shortest decimal that reads back the same,
// without an exponent for magnitudes from 1e-4 up to 1e17 ("0.1",
// "1000000") and with one outside them ("1e+308", "5e-324"), so no
// double takes hundreds of digits.
func formatFloat(f float64) string {
	switch {
	case f != f:
		if math.Signbit(f) {
			return "-nan"
		}
		return "nan"
	case f > math.MaxFloat64:
		return "inf"
	case f < -math.MaxFloat64:
		return "-inf"
	}
	if a := math.Abs(f); a == 0 || (a >= 1e-4 && a < 1e17) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'e', -1, 64)
}
