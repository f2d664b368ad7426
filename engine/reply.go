package engine

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

// Reply is the reply to a command sent with Do. A nil reply (a missing key,
// a RESP null) is a Reply whose IsNil is true, not an error; error replies
// fail the future with *ServerError instead.
//
// A Reply is a value; it is safe to read from any number of goroutines.
type Reply struct {
	msg valkey.ValkeyMessage
}

// IsNil reports whether the reply is a RESP null.
func (r Reply) IsNil() bool { return r.msg.IsNil() }

// Err returns the *ServerError of an error reply, nil for any other reply
// (a nil reply included). Futures of Do fail on error replies, so only the
// Replies of DedicatedConn.DoMulti and the elements of Array (an EXEC
// reply, a script's table) may hold one.
func (r Reply) Err() error {
	err := r.msg.Error()
	if err == nil || valkey.IsValkeyNil(err) {
		return nil
	}
	return msgError(&r.msg, err)
}

// ErrReplyType fails a Reply accessor asked for a type the reply does not
// hold or cannot be converted to: String of an array, Int64 of "abc" or
// of a boolean, Strings of an array holding arrays, Map of a string. It
// also fails a typed command (Get, Incr, XPending, ...) whose reply has
// another shape than the command's: a server of another version, a proxy
// or a broken server; the other commands of its pipeline are not
// affected. The error wraps ErrReplyType (and the error of the failed
// conversion: a *strconv.NumError for a failed number parse). A nil
// reply gives ErrNil instead, an error reply its *ServerError.
var ErrReplyType = errors.New("vactor: reply type mismatch")

// typeError wraps err, a conversion error of valkey-go or strconv, with
// ErrReplyType.
func typeError(msg *valkey.ValkeyMessage, err error) error {
	if err == nil {
		return nil
	}
	if msg.IsNil() || msg.Error() != nil {
		return msgError(msg, err)
	}
	if kind(msg) == "an empty" {
		// The zero Reply (a failed future's value): valkey-go's error
		// read "valkey message type  is not a array" (qa-BC BC3).
		return errEmptyReply
	}
	return fmt.Errorf("%w: %w", ErrReplyType, shortNum(err))
}

// errEmptyReply fails the accessors of the zero Reply.
var errEmptyReply = fmt.Errorf("%w: an empty Reply (the value of a future that failed?)", ErrReplyType)

// shortNum returns err with the text it failed to parse replaced by its
// length when err is a *strconv.NumError: Int64 of an INFO reply put its
// several KB in the error, and of a user's value the value (a token, a
// password), which the program's logs then kept (qa-AI F7; the engine
// logs no value either). errors.As still finds a *strconv.NumError,
// errors.Is its Err.
func shortNum(err error) error {
	ne, ok := err.(*strconv.NumError)
	if !ok {
		return err
	}
	c := *ne
	c.Num = fmt.Sprintf("(a reply of %d bytes)", len(ne.Num))
	return &c
}

// scalar returns the text of a string, verbatim string (without its
// three-letter format and colon), double or big number reply; ok is
// false for other types. valkey-go has no accessor for a verbatim
// string's type: it is the one string type IsString does not report,
// and its text starts with "xxx:" (a big number's never holds a colon;
// the zero Reply's text is empty).
func scalar(m *valkey.ValkeyMessage) (string, bool) {
	switch {
	case m.IsString():
		s, _ := m.ToString()
		return s, true
	case m.IsNil(), m.IsInt64(), m.IsBool(), m.IsArray(), m.IsMap(), m.Error() != nil:
		return "", false
	}
	s, err := m.ToString() // double, verbatim string, big number
	if err != nil || s == "" {
		return "", false
	}
	if len(s) >= 4 && s[3] == ':' {
		return s[4:], true
	}
	return s, true
}

// String returns a bulk, simple or verbatim string reply (a verbatim
// string without its "txt:" format prefix), or the text of a double or big
// number reply. It returns ErrNil for a nil reply and ErrReplyType for
// other types (integers, booleans, arrays, maps).
func (r Reply) String() (string, error) {
	if s, ok := scalar(&r.msg); ok {
		return s, nil
	}
	if r.msg.IsNil() || r.msg.Error() != nil {
		_, err := r.msg.ToString()
		return "", msgError(&r.msg, err)
	}
	return "", fmt.Errorf("%w: %s reply is not a string", ErrReplyType, kind(&r.msg))
}

// kind names the type of a reply that is not a nil or an error.
func kind(m *valkey.ValkeyMessage) string {
	switch {
	case m.IsInt64():
		return "an integer"
	case m.IsBool():
		return "a boolean"
	case m.IsMap():
		return "a map"
	case m.IsArray():
		return "an array"
	case m.IsString(), m.IsFloat64():
		return "a string"
	}
	if _, ok := scalar(m); ok {
		return "a string"
	}
	return "an empty"
}

// Int64 returns an integer reply, or a string reply parsed as an
// integer; 0 with the error when it is neither, or out of int64's range.
func (r Reply) Int64() (int64, error) {
	if s, ok := scalar(&r.msg); ok && !r.msg.IsString() {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			// strconv clamps an out-of-range number: a caller that only
			// logs the error would go on with a plausible 2^63-1 (qa-BC BC3).
			return 0, typeError(&r.msg, err)
		}
		return v, nil
	}
	v, err := r.msg.AsInt64()
	if err != nil {
		return 0, typeError(&r.msg, err)
	}
	return v, nil
}

// Float64 returns a double reply, an integer reply (a Lua script's
// number, INCR's), or a string reply (a verbatim string without its
// format prefix, a big number) parsed as a float.
func (r Reply) Float64() (float64, error) {
	if r.msg.IsInt64() {
		n, _ := r.msg.AsInt64()
		return float64(n), nil
	}
	if s, ok := textOf(&r.msg); ok {
		// valkey-go's AsFloat64 parsed a verbatim string with its
		// "txt:" prefix, and failed (qa45 F3).
		v, err := beyondFloat64(strconv.ParseFloat(s, 64))
		if err != nil {
			return 0, typeError(&r.msg, err)
		}
		return v, nil
	}
	v, err := beyondFloat64(r.msg.AsFloat64())
	return v, typeError(&r.msg, err)
}

// textOf returns the text of a verbatim string (without its format
// prefix) or big number reply, the string types valkey-go's AsFloat64
// and AsBool do not read as String does; ok is false for other types.
func textOf(m *valkey.ValkeyMessage) (string, bool) {
	if m.IsString() || m.IsFloat64() {
		return "", false
	}
	return scalar(m)
}

// Bool returns a boolean reply, an integer reply as n != 0, "OK" as true,
// or another string reply (a verbatim string without its format prefix,
// a big number) parsed as an integer, as n != 0 ("1" is true, "0"
// false); any other string, and a double, fails with ErrReplyType.
func (r Reply) Bool() (bool, error) {
	s, ok := textOf(&r.msg)
	if r.msg.IsString() {
		s, _ = r.msg.ToString()
		ok = true
	}
	if !ok {
		v, err := r.msg.AsBool()
		return v, typeError(&r.msg, err)
	}
	if s == "OK" {
		return true, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return false, typeError(&r.msg, err)
	}
	return n != 0, nil
}

// element returns the text of an element of an array or map reply: a
// string, double or big number as String returns it, an integer in
// decimal, a nil element as "". Other elements (arrays, maps, booleans,
// error replies) fail with ErrReplyType.
func element(m *valkey.ValkeyMessage) (string, error) {
	if s, ok := scalar(m); ok {
		return s, nil
	}
	switch {
	case m.IsInt64():
		v, _ := m.AsInt64()
		return strconv.FormatInt(v, 10), nil
	case m.IsNil():
		return "", nil
	case m.Error() != nil:
		return "", fmt.Errorf("%w: an element is an error reply: %w", ErrReplyType, msgError(m, m.Error()))
	}
	return "", fmt.Errorf("%w: an element is %s reply, not a string", ErrReplyType, kind(m))
}

// Strings returns an array or set reply of strings: each element as
// String returns it, integers in decimal and nil elements as "". An
// element of another type (an array, a map, a boolean) fails it with
// ErrReplyType.
func (r Reply) Strings() ([]string, error) {
	arr, err := r.msg.ToArray()
	if err != nil {
		return nil, typeError(&r.msg, err)
	}
	out := make([]string, len(arr))
	for i := range arr {
		if out[i], err = element(&arr[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Map returns a map reply (or a flat array of pairs) as strings, its
// keys and values converted as Strings converts elements (a map's integer
// keys, such as LATENCY HISTOGRAM's buckets, in decimal). A key that is
// not a string or a number (an array, a boolean, a nil), two keys with
// the same text (the integer 1 and the string "1"), an array of odd
// length or a value of another type fails it with ErrReplyType.
func (r Reply) Map() (map[string]string, error) {
	var m map[string]valkey.ValkeyMessage
	var err error
	if r.msg.IsArray() {
		arr, _ := r.msg.ToArray()
		if len(arr)%2 != 0 {
			return nil, fmt.Errorf("%w: an array of %d elements is not a map", ErrReplyType, len(arr))
		}
		m = make(map[string]valkey.ValkeyMessage, len(arr)/2)
		for i := 0; i < len(arr); i += 2 {
			k, err := element(&arr[i])
			if err != nil {
				return nil, err
			}
			m[k] = arr[i+1]
		}
	} else if m, err = mapOf(&r.msg); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if out[k], err = element(&v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mapOf returns the entries of m, a map reply, by their keys' text. A
// key is read as element reads a flat array's (a string, verbatim string,
// double or big number as String returns it, an integer in decimal);
// one of another type (an array, a boolean, a nil, an error reply), or
// two keys with the same text (the integer 1 and the string "1"), fail
// it with ErrReplyType. valkey-go's ToMap reads only string keys, so a
// map with integer keys (LATENCY HISTOGRAM's histogram_usec, a script's
// table) failed Map, Any and %v (qa45 F4); such a map is read through
// drivers.Elements.
func mapOf(m *valkey.ValkeyMessage) (map[string]valkey.ValkeyMessage, error) {
	mm, err := m.ToMap()
	if err == nil || !m.IsMap() {
		return mm, typeError(m, err)
	}
	elems, ok := drivers.Elements(m)
	if !ok || len(elems)%2 != 0 {
		return nil, typeError(m, err)
	}
	mm = make(map[string]valkey.ValkeyMessage, len(elems)/2)
	for i := 0; i < len(elems); i += 2 {
		if elems[i].IsNil() {
			return nil, fmt.Errorf("%w: a key of the map is a nil", ErrReplyType)
		}
		k, err := element(&elems[i])
		if err != nil {
			return nil, fmt.Errorf("%w (as a key of the map)", err)
		}
		if _, dup := mm[k]; dup {
			return nil, fmt.Errorf("%w: two keys of the map read as the same text (a number and a string?)", ErrReplyType)
		}
		mm[k] = elems[i+1]
	}
	return mm, nil
}

// Array returns the elements of an array, set or push reply.
func (r Reply) Array() ([]Reply, error) {
	arr, err := r.msg.ToArray()
	if err != nil {
		return nil, typeError(&r.msg, err)
	}
	out := make([]Reply, len(arr))
	for i, m := range arr {
		out[i] = Reply{m}
	}
	return out, nil
}

// Any returns the reply as Go values: string (a verbatim string without
// its format prefix), int64, float64, bool, []any or map[string]any, with
// nil for a nil element inside an array or map; an error reply inside an
// array or map is its *ServerError. A nil reply itself returns ErrNil, as
// String does (check IsNil first to tell it apart without an error). A
// map's keys are strings as Map reads them: a map with a key Map refuses
// fails it with ErrReplyType.
func (r Reply) Any() (any, error) {
	if r.msg.IsNil() || r.msg.Error() != nil {
		_, err := r.msg.ToAny()
		return nil, msgError(&r.msg, err)
	}
	return toAny(&r.msg)
}

func toAny(m *valkey.ValkeyMessage) (any, error) {
	switch {
	case m.IsNil():
		return nil, nil
	case m.Error() != nil:
		return msgError(m, m.Error()), nil
	case m.IsString():
		return m.ToString()
	case m.IsInt64():
		return m.AsInt64()
	case m.IsFloat64():
		v, err := m.AsFloat64()
		return v, typeError(m, err)
	case m.IsBool():
		return m.ToBool()
	case m.IsArray():
		arr, _ := m.ToArray()
		out := make([]any, len(arr))
		for i := range arr {
			v, err := toAny(&arr[i])
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case m.IsMap():
		mm, err := mapOf(m)
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(mm))
		for k, v := range mm {
			a, err := toAny(&v)
			if err != nil {
				return nil, err
			}
			out[k] = a
		}
		return out, nil
	}
	if s, ok := scalar(m); ok { // verbatim string, big number
		return s, nil
	}
	if kind(m) == "an empty" {
		// The zero Reply (a failed future's value): valkey-go's error
		// read "valkey message type  is not a supported in ToAny".
		return nil, errEmptyReply
	}
	_, err := m.ToAny()
	return nil, typeError(m, err)
}

// Format implements fmt.Formatter: a Reply prints as its Any value (with
// the verb and flags given), "<nil>" for a nil reply, "<none>" for the
// zero Reply (the value of a failed future: a log line printing a value
// beside its error read "%!v(vactor: reply type mismatch: ...)", qa-AN
// AN5), and a failed conversion as "%!v(...)" with the reason. (String
// returns an error too, so a Reply is not a fmt.Stringer, and %v printed
// valkey-go's message struct, pointers included.)
//
// An error reply (an element of an array, a DedicatedConn.DoMulti Reply)
// prints as its error, checked before the zero Reply: kind names no type
// for an error reply, so one printed as "<none>", as if it were missing
// (qa45 F1). Error replies inside an array or map print through
// errorText, which marks a verb that has no use for an error.
func (r Reply) Format(s fmt.State, verb rune) {
	if r.msg.IsNil() {
		fmt.Fprint(s, "<nil>")
		return
	}
	if e := r.msg.Error(); e != nil {
		errorText{msgError(&r.msg, e)}.Format(s, verb)
		return
	}
	if kind(&r.msg) == "an empty" {
		fmt.Fprint(s, "<none>")
		return
	}
	v, err := r.Any()
	if err != nil {
		fmt.Fprintf(s, "%%!%c(%v)", verb, err)
		return
	}
	fmt.Fprintf(s, fmt.FormatString(s, verb), printable(v))
}

// errorText prints an error reply of a Reply: as its text for the verbs
// fmt prints an error's text with (%v, %s, %q, %x, %X; %#v as Go syntax),
// as "%!d(error=<text>)" for the others, the way fmt marks a wrong verb.
// fmt printed a *ServerError inside a slice or map with %d as its
// pointer, a number that read as an integer element (qa45 F2: an EVAL
// table printed as "[1 1971906608064 x]").
type errorText struct{ err error }

func (e errorText) Format(s fmt.State, verb rune) {
	switch verb {
	case 'v', 's', 'q', 'x', 'X':
		fmt.Fprintf(s, fmt.FormatString(s, verb), e.err)
	default:
		fmt.Fprintf(s, "%%!%c(error=%s)", verb, e.err.Error())
	}
}

// printable returns v, a value of Any, with the errors inside its slices
// and maps replaced by their errorText, in place (v is Any's own copy).
func printable(v any) any {
	switch v := v.(type) {
	case error:
		return errorText{v}
	case []any:
		for i := range v {
			v[i] = printable(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = printable(v[k])
		}
	}
	return v
}

// Message returns valkey-go's representation of the reply.
func (r Reply) Message() valkey.ValkeyMessage { return r.msg }

// decodeReply keeps nil replies as values and fails on error replies.
func decodeReply(res valkey.ValkeyResult) (Reply, error) {
	msg, err := res.ToMessage()
	if err != nil && !valkey.IsValkeyNil(err) {
		return Reply{}, err
	}
	return Reply{msg}, nil
}
