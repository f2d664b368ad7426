package engine

import (
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Stream reply decoders. Entries are parsed with valkey-go's
// AsXRangeEntry; a null element (an entry deleted while pending, as some
// server versions report it) is skipped.

func toEntry(m valkey.ValkeyMessage) (XEntry, error) {
	x, err := m.AsXRangeEntry()
	if err != nil {
		return XEntry{}, err
	}
	return XEntry{ID: x.ID, Fields: x.FieldValues}, nil
}

func toEntries(m valkey.ValkeyMessage) ([]XEntry, error) {
	if m.IsNil() {
		return []XEntry{}, nil
	}
	arr, err := m.ToArray()
	if err != nil {
		return nil, err
	}
	out := make([]XEntry, 0, len(arr))
	for _, v := range arr {
		if v.IsNil() {
			continue
		}
		x, err := toEntry(v)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// decodeXEntries reads XRANGE, XREVRANGE and XCLAIM replies.
func decodeXEntries(res valkey.ValkeyResult) ([]XEntry, error) {
	v, err := parseXEntries(res)
	return v, typed(&res, err)
}

func parseXEntries(res valkey.ValkeyResult) ([]XEntry, error) {
	m, err := res.ToMessage()
	if err != nil {
		return nil, err
	}
	return toEntries(m)
}

// decodeXRead reads XREAD and XREADGROUP replies: a map of stream to
// entries (RESP3) or an array of [stream, entries] pairs (RESP2); a null
// reply (nothing to read) is an empty map.
func decodeXRead(res valkey.ValkeyResult) (map[string][]XEntry, error) {
	v, err := parseXRead(res)
	return v, typed(&res, err)
}

func parseXRead(res valkey.ValkeyResult) (map[string][]XEntry, error) {
	m, err := res.ToMessage()
	if valkey.IsValkeyNil(err) {
		return map[string][]XEntry{}, nil
	}
	if err != nil {
		return nil, err
	}
	if m.IsMap() {
		kv, err := m.AsMap()
		if err != nil {
			return nil, err
		}
		out := make(map[string][]XEntry, len(kv))
		for k, v := range kv {
			if out[k], err = toEntries(v); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	arr, err := m.ToArray()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]XEntry, len(arr))
	for _, v := range arr {
		pair, err := v.ToArray()
		if err != nil {
			return nil, err
		}
		if len(pair) != 2 {
			return nil, fmt.Errorf("vactor: XREAD reply: stream element of %d items, want 2", len(pair))
		}
		k, err := pair[0].ToString()
		if err != nil {
			return nil, err
		}
		if out[k], err = toEntries(pair[1]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// optString reads a string that may be null ("" then).
func optString(m valkey.ValkeyMessage) (string, error) {
	if m.IsNil() {
		return "", nil
	}
	return m.ToString()
}

// decodeXPendingSummary reads [count, lower, upper, [[consumer, n]...]].
func decodeXPendingSummary(res valkey.ValkeyResult) (XPendingSummary, error) {
	v, err := parseXPendingSummary(res)
	return v, typed(&res, err)
}

func parseXPendingSummary(res valkey.ValkeyResult) (XPendingSummary, error) {
	arr, err := res.ToArray()
	if err != nil {
		return XPendingSummary{}, err
	}
	if len(arr) != 4 {
		return XPendingSummary{}, fmt.Errorf("vactor: XPENDING reply of %d items, want 4", len(arr))
	}
	var s XPendingSummary
	if s.Count, err = arr[0].AsInt64(); err != nil {
		return XPendingSummary{}, err
	}
	if s.Lower, err = optString(arr[1]); err != nil {
		return XPendingSummary{}, err
	}
	if s.Upper, err = optString(arr[2]); err != nil {
		return XPendingSummary{}, err
	}
	s.Consumers = map[string]int64{}
	if arr[3].IsNil() {
		return s, nil
	}
	cs, err := arr[3].ToArray()
	if err != nil {
		return XPendingSummary{}, err
	}
	for _, c := range cs {
		pair, err := c.ToArray()
		if err != nil {
			return XPendingSummary{}, err
		}
		if len(pair) != 2 {
			return XPendingSummary{}, fmt.Errorf("vactor: XPENDING consumer element of %d items, want 2", len(pair))
		}
		name, err := pair[0].ToString()
		if err != nil {
			return XPendingSummary{}, err
		}
		n, err := pair[1].AsInt64()
		if err != nil {
			return XPendingSummary{}, err
		}
		s.Consumers[name] = n
	}
	return s, nil
}

// decodeXPendingEntries reads [[id, consumer, idle ms, deliveries]...].
func decodeXPendingEntries(res valkey.ValkeyResult) ([]XPendingEntry, error) {
	v, err := parseXPendingEntries(res)
	return v, typed(&res, err)
}

func parseXPendingEntries(res valkey.ValkeyResult) ([]XPendingEntry, error) {
	arr, err := res.ToArray()
	if err != nil {
		return nil, err
	}
	out := make([]XPendingEntry, len(arr))
	for i, v := range arr {
		f, err := v.ToArray()
		if err != nil {
			return nil, err
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("vactor: XPENDING entry of %d items, want 4", len(f))
		}
		p := &out[i]
		if p.ID, err = f[0].ToString(); err != nil {
			return nil, err
		}
		if p.Consumer, err = f[1].ToString(); err != nil {
			return nil, err
		}
		idle, err := f[2].AsInt64()
		if err != nil {
			return nil, err
		}
		p.Idle = time.Duration(idle) * time.Millisecond
		if p.Deliveries, err = f[3].AsInt64(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeXAutoClaim reads [next, entries, deleted IDs]; servers before 7.0
// send no deleted IDs.
func decodeXAutoClaim(res valkey.ValkeyResult) (XAutoClaimResult, error) {
	v, err := parseXAutoClaim(res)
	return v, typed(&res, err)
}

func parseXAutoClaim(res valkey.ValkeyResult) (XAutoClaimResult, error) {
	arr, err := res.ToArray()
	if err != nil {
		return XAutoClaimResult{}, err
	}
	if len(arr) < 2 {
		return XAutoClaimResult{}, fmt.Errorf("vactor: XAUTOCLAIM reply of %d items, want 2 or 3", len(arr))
	}
	var r XAutoClaimResult
	if r.Next, err = arr[0].ToString(); err != nil {
		return XAutoClaimResult{}, err
	}
	if r.Entries, err = toEntries(arr[1]); err != nil {
		return XAutoClaimResult{}, err
	}
	r.Deleted = []string{}
	if len(arr) > 2 && !arr[2].IsNil() {
		if r.Deleted, err = arr[2].AsStrSlice(); err != nil {
			return XAutoClaimResult{}, err
		}
	}
	return r, nil
}

// decodeXGroups reads XINFO GROUPS: one map (RESP3) or flat array (RESP2)
// per group.
func decodeXGroups(res valkey.ValkeyResult) ([]XGroupInfo, error) {
	v, err := parseXGroups(res)
	return v, typed(&res, err)
}

func parseXGroups(res valkey.ValkeyResult) ([]XGroupInfo, error) {
	arr, err := res.ToArray()
	if err != nil {
		return nil, err
	}
	out := make([]XGroupInfo, len(arr))
	for i, v := range arr {
		kv, err := v.AsMap()
		if err != nil {
			return nil, err
		}
		g := &out[i]
		if m, ok := kv["name"]; ok {
			if g.Name, err = m.ToString(); err != nil {
				return nil, err
			}
		}
		if m, ok := kv["consumers"]; ok {
			if g.Consumers, err = m.AsInt64(); err != nil {
				return nil, err
			}
		}
		if m, ok := kv["pending"]; ok {
			if g.Pending, err = m.AsInt64(); err != nil {
				return nil, err
			}
		}
		if m, ok := kv["last-delivered-id"]; ok {
			if g.LastDeliveredID, err = m.ToString(); err != nil {
				return nil, err
			}
		}
		if g.EntriesRead, err = unknownInt(kv, "entries-read"); err != nil {
			return nil, err
		}
		if g.Lag, err = unknownInt(kv, "lag"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// unknownInt returns the integer under key in an XINFO reply, -1 when it
// is missing (a server before 7.0) or nil (the server does not know it).
func unknownInt(kv map[string]valkey.ValkeyMessage, key string) (int64, error) {
	m, ok := kv[key]
	if !ok || m.IsNil() {
		return -1, nil
	}
	return m.AsInt64()
}
