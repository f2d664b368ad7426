package engine

import (
	"github.com/valkey-io/valkey-go"
)

// Decoders turn a reply into a typed result. They are plain functions (no
// closures) so a request stores them without allocating.
var (
	decodeString  = valkey.ValkeyResult.ToString
	decodeInt64   = valkey.ValkeyResult.AsInt64
	decodeFloat64 = valkey.ValkeyResult.AsFloat64
	decodeBool    = valkey.ValkeyResult.AsBool
	decodeStrings = valkey.ValkeyResult.AsStrSlice
	decodeStrMap  = valkey.ValkeyResult.AsStrMap
)

// decodeOK checks a status reply.
func decodeOK(res valkey.ValkeyResult) (struct{}, error) {
	return struct{}{}, res.Error()
}

// decodeIntBool reads an integer reply as n == 1 (EXPIRE, SETNX, HSETNX...).
func decodeIntBool(res valkey.ValkeyResult) (bool, error) {
	n, err := res.AsInt64()
	return n == 1, err
}

// decodeNullableStrings reads an array whose elements may be null (MGET,
// HMGET): a missing element is nil, a present one points to its value.
func decodeNullableStrings(res valkey.ValkeyResult) ([]*string, error) {
	arr, err := res.ToArray()
	if err != nil {
		return nil, err
	}
	out := make([]*string, len(arr))
	for i, m := range arr {
		if m.IsNil() {
			continue
		}
		s, err := m.ToString()
		if err != nil {
			return nil, err
		}
		out[i] = &s
	}
	return out, nil
}
