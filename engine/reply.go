package engine

import (
	"github.com/valkey-io/valkey-go"
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

// String returns a bulk, simple or verbatim string reply. It returns ErrNil
// for a nil reply and an error for other types.
func (r Reply) String() (string, error) {
	v, err := r.msg.ToString()
	return v, msgError(&r.msg, err)
}

// Int64 returns an integer reply, or a string reply parsed as an integer.
func (r Reply) Int64() (int64, error) {
	v, err := r.msg.AsInt64()
	return v, msgError(&r.msg, err)
}

// Float64 returns a double reply, or a string reply parsed as a float.
func (r Reply) Float64() (float64, error) {
	v, err := r.msg.AsFloat64()
	return v, msgError(&r.msg, err)
}

// Bool returns a boolean reply, an integer reply as n != 0, or "OK" as true.
func (r Reply) Bool() (bool, error) {
	if s, err := r.msg.ToString(); err == nil && s == "OK" {
		return true, nil
	}
	v, err := r.msg.AsBool()
	return v, msgError(&r.msg, err)
}

// Strings returns an array reply of strings.
func (r Reply) Strings() ([]string, error) {
	v, err := r.msg.AsStrSlice()
	return v, msgError(&r.msg, err)
}

// Map returns a map reply (or a flat array of pairs) as strings.
func (r Reply) Map() (map[string]string, error) {
	v, err := r.msg.AsStrMap()
	return v, msgError(&r.msg, err)
}

// Array returns the elements of an array, set or push reply.
func (r Reply) Array() ([]Reply, error) {
	arr, err := r.msg.ToArray()
	if err != nil {
		return nil, msgError(&r.msg, err)
	}
	out := make([]Reply, len(arr))
	for i, m := range arr {
		out[i] = Reply{m}
	}
	return out, nil
}

// Any returns the reply as Go values: string, int64, float64, bool, nil,
// []any or map[string]any.
func (r Reply) Any() (any, error) {
	v, err := r.msg.ToAny()
	return v, msgError(&r.msg, err)
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
