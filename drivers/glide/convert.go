package glide

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vactor-io/vactor/drivers"
)

// glide's Go binding returns replies as Go values (string, int64,
// float64, bool, nil, error, []any, map[string]any, map[string]struct{}),
// after glide's core converted some of them by command name: error texts
// rewritten, integers made booleans, ordered arrays made maps. convert
// turns them back into what the server sent, as far as it can be known.

// reply converts glide's reply r to the command args: a reply Value, or
// an error when r is an error that is not a server's error reply.
func reply(args []string, r any) (drivers.Value, error) {
	if err, ok := r.(error); ok {
		text, server := serverText(err.Error())
		if !server {
			return drivers.Value{}, err
		}
		return drivers.Error(text), nil
	}
	return restore(args, value(r)), nil
}

// value converts a glide value to a Value, map keys and set members in
// sorted order (glide's Go maps have lost the server's).
func value(r any) drivers.Value {
	switch v := r.(type) {
	case nil:
		return drivers.Null()
	case string:
		return drivers.String(v)
	case int64:
		return drivers.Int(v)
	case float64:
		return drivers.Float(v)
	case bool:
		return drivers.Bool(v)
	case error: // an error reply inside an array (EXEC's, a script's)
		text, ok := serverText(v.Error())
		if !ok {
			text = v.Error()
		}
		return drivers.Error(text)
	case []any:
		elems := make([]drivers.Value, len(v))
		for i, e := range v {
			elems[i] = value(e)
		}
		return drivers.Array(elems...)
	case map[string]any:
		keys := sortedKeys(v)
		elems := make([]drivers.Value, 0, 2*len(v))
		for _, k := range keys {
			elems = append(elems, drivers.String(k), value(v[k]))
		}
		return drivers.Map(elems...)
	case map[string]struct{}:
		keys := sortedKeys(v)
		elems := make([]drivers.Value, len(keys))
		for i, k := range keys {
			elems[i] = drivers.String(k)
		}
		return drivers.Set(elems...)
	}
	return drivers.Error(fmt.Sprintf("ERR vactor/drivers/glide: reply of unexpected type %T", r))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// signalled prefixes glide's text of the server errors its core knows
// by kind: "An error was signalled by the server: - Moved: 3999 host:port",
// and for a bare code (an error reply of one word, such as a script's
// {err='ERR'}) "An error was signalled by the server:- ResponseError".
const signalled = "An error was signalled by the server:"

// unknownExtension is what glide appends to an error reply of one word it
// does not know ("-boom" comes as "boom: Unknown extension error
// encountered").
const unknownExtension = "Unknown extension error encountered"

// kindCodes maps those kinds to the server's error codes.
var kindCodes = map[string]string{
	"ResponseError":    "ERR",
	"ExecAbortError":   "EXECABORT",
	"BusyLoadingError": "LOADING",
	"NoScriptError":    "NOSCRIPT",
	"Moved":            "MOVED",
	"Ask":              "ASK",
	"TryAgain":         "TRYAGAIN",
	"ClusterDown":      "CLUSTERDOWN",
	"CrossSlot":        "CROSSSLOT",
	"MasterDown":       "MASTERDOWN",
	"ReadOnly":         "READONLY",
	"NotBusy":          "NOTBUSY",
	"PermissionDenied": "NOPERM",
}

// serverText returns the server's text of an error reply from glide's
// text of it, and false when the text is not an error reply's (a failure
// of the connection, of glide itself). Glide writes the codes its core
// knows as "An error was signalled by the server: - Kind: detail" and the
// others as "CODE: detail".
func serverText(text string) (string, bool) {
	if rest, ok := strings.CutPrefix(text, signalled); ok {
		rest = strings.TrimLeft(strings.TrimPrefix(strings.TrimLeft(rest, " "), "-"), " ")
		kind, detail, hasDetail := strings.Cut(rest, ": ")
		if code, ok := kindCodes[kind]; ok {
			if !hasDetail {
				return code, true // a bare code: "-ERR"
			}
			return code + " " + detail, true
		}
		return "", false
	}
	if code, ok := strings.CutSuffix(text, ": "+unknownExtension); ok && !strings.Contains(code, ": ") {
		// Only the server's replies get this detail (a reply of one word
		// that redis-rs does not know): whatever the word is, even empty,
		// spaced or one of redis-rs's own kinds ("-IoError"), it is the
		// reply (qa-BC BC1: "-" from a script's {err=''} was read as a
		// lost connection, and five such replies opened the breaker).
		return code, true
	}
	if detail, ok := strings.CutPrefix(text, ":"); ok {
		// An empty first word: "- lead" comes as ": lead" (redis-rs's own
		// errors always name their kind).
		return detail, true
	}
	code, detail, ok := strings.Cut(text, ": ")
	if !isCode(code) {
		return "", false
	}
	if !ok || detail == unknownExtension {
		return code, true
	}
	return code + " " + detail, true
}

// clientKinds are the kinds of redis-rs's own errors (not the server's)
// that glide may write as "Kind: detail".
var clientKinds = map[string]bool{
	"IoError": true, "ClientError": true, "ParseError": true, "TypeError": true,
	"AuthenticationFailed": true, "InvalidClientConfig": true, "ExtensionError": true,
	"ClusterConnectionNotFound": true, "FatalSendError": true, "FatalReceiveError": true,
	"NotAllSlotsCovered": true, "UserOperationError": true,
}

// isCode reports whether s can be the first word of an error reply, as
// glide writes it before ": ": one word (no space) that is not the kind
// of one of redis-rs's own errors. The server's codes are upper case
// (ERR, WRONGTYPE, ...), but a script's or a module's error reply may
// start with any word ("-lowercase thing" comes as "lowercase: thing").
func isCode(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n") && !clientKinds[s]
}

// restore undoes glide's conversions of v, the reply to args.
func restore(args []string, v drivers.Value) drivers.Value {
	if len(args) == 0 || v.Kind == drivers.KindError || v.Kind == drivers.KindNull {
		return v
	}
	name := strings.ToUpper(args[0])
	switch name {
	case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
		return v // scripts' replies are the server's; booleans are theirs
	}
	v = boolsToInts(v)
	switch name {
	case "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZUNION", "ZINTER", "ZDIFF":
		if v.Kind == drivers.KindMap && hasArg(args, "WITHSCORES") {
			desc := strings.HasPrefix(name, "ZREV") || (name == "ZRANGE" && hasArg(args, "REV"))
			return drivers.Array(scorePairs(v, desc)...)
		}
	case "ZPOPMIN", "ZPOPMAX":
		if v.Kind == drivers.KindMap {
			pairs := scorePairs(v, name == "ZPOPMAX")
			if len(args) < 3 { // no count: one flat pair
				if len(pairs) == 0 {
					return drivers.Array()
				}
				return pairs[0]
			}
			return drivers.Array(pairs...)
		}
	case "ZMPOP", "BZMPOP":
		return mpop(args, v)
	case "ZRANDMEMBER":
		if v.Kind == drivers.KindMap {
			return drivers.Array(scorePairs(v, false)...)
		}
	case "HRANDFIELD":
		if v.Kind == drivers.KindMap {
			return drivers.Array(fieldPairs(v)...)
		}
	case "XRANGE", "XREVRANGE":
		if v.Kind == drivers.KindMap {
			return drivers.Array(entries(v, name == "XREVRANGE", nil)...)
		}
	case "XREAD", "XREADGROUP":
		return streams(args, v)
	case "XCLAIM":
		if v.Kind == drivers.KindMap {
			return drivers.Array(entries(v, false, args)...)
		}
	case "XAUTOCLAIM":
		if v.Kind == drivers.KindArray && len(v.Elems) >= 2 && v.Elems[1].Kind == drivers.KindMap {
			elems := slices.Clone(v.Elems)
			elems[1] = drivers.Array(entries(v.Elems[1], false, nil)...)
			return drivers.Array(elems...)
		}
	case "GEODIST":
		if v.Kind == drivers.KindFloat {
			return drivers.String(distance(v.Float))
		}
	case "GEOSEARCH":
		return geoSearch(args, v)
	case "COMMAND":
		switch {
		case len(args) == 1 || strings.EqualFold(args[1], "INFO"):
			return commandInfo(v)
		case strings.EqualFold(args[1], "DOCS"):
			return commandDocs(v)
		}
	case "LATENCY":
		if inRESP2(args) {
			return latencyHistogram(v)
		}
	case "PUBSUB":
		if len(args) > 1 && v.Kind == drivers.KindMap {
			switch strings.ToUpper(args[1]) {
			case "NUMSUB", "SHARDNUMSUB":
				return flatInOrder(v, args[2:])
			}
		}
	}
	return v
}

// boolsToInts turns booleans into integers 1 and 0, everywhere in v: no
// core command replies with a RESP3 boolean, glide makes them of
// integers (EXPIRE, SISMEMBER, HSETNX, SMISMEMBER, SCRIPT EXISTS, ...).
func boolsToInts(v drivers.Value) drivers.Value {
	switch v.Kind {
	case drivers.KindBool:
		if v.Bool {
			return drivers.Int(1)
		}
		return drivers.Int(0)
	case drivers.KindArray, drivers.KindMap, drivers.KindSet:
		for i := range v.Elems {
			v.Elems[i] = boolsToInts(v.Elems[i])
		}
	}
	return v
}

// hasArg reports whether args (after the command name) hold word, in any
// case.
func hasArg(args []string, word string) bool {
	for _, a := range args[1:] {
		if strings.EqualFold(a, word) {
			return true
		}
	}
	return false
}

// number reads an integer or double Value as a float64.
func number(v drivers.Value) float64 {
	switch v.Kind {
	case drivers.KindFloat:
		return v.Float
	case drivers.KindInt:
		return float64(v.Int)
	case drivers.KindString:
		f, _ := strconv.ParseFloat(v.Str, 64)
		return f
	}
	return 0
}

// scorePairs turns a member -> score map into [member, score] pairs in
// the order of a sorted set: by score, then member (both reversed when
// desc).
func scorePairs(m drivers.Value, desc bool) []drivers.Value {
	type pair struct {
		member string
		score  float64
		v      drivers.Value
	}
	ps := make([]pair, 0, len(m.Elems)/2)
	for i := 0; i+1 < len(m.Elems); i += 2 {
		score := m.Elems[i+1]
		if score.Kind != drivers.KindFloat {
			score = drivers.Float(number(score))
		}
		ps = append(ps, pair{m.Elems[i].Str, score.Float, score})
	}
	slices.SortFunc(ps, func(a, b pair) int {
		c := 0
		switch {
		case a.score < b.score:
			c = -1
		case a.score > b.score:
			c = 1
		default:
			c = strings.Compare(a.member, b.member)
		}
		if desc {
			c = -c
		}
		return c
	})
	out := make([]drivers.Value, len(ps))
	for i, p := range ps {
		out[i] = drivers.Array(drivers.String(p.member), p.v)
	}
	return out
}

// fieldPairs turns a field -> value map into [field, value] pairs.
func fieldPairs(m drivers.Value) []drivers.Value {
	out := make([]drivers.Value, 0, len(m.Elems)/2)
	for i := 0; i+1 < len(m.Elems); i += 2 {
		out = append(out, drivers.Array(m.Elems[i], m.Elems[i+1]))
	}
	return out
}

// mpop restores ZMPOP/BZMPOP's [key, [[member, score], ...]] from the
// maps glide makes of it.
func mpop(args []string, v drivers.Value) drivers.Value {
	desc := hasArg(args, "MAX")
	switch {
	case v.Kind == drivers.KindMap && len(v.Elems) == 2 && v.Elems[1].Kind == drivers.KindMap:
		return drivers.Array(v.Elems[0], drivers.Array(scorePairs(v.Elems[1], desc)...))
	case v.Kind == drivers.KindArray && len(v.Elems) == 2 && v.Elems[1].Kind == drivers.KindMap:
		return drivers.Array(v.Elems[0], drivers.Array(scorePairs(v.Elems[1], desc)...))
	}
	return v
}

// streamID compares two stream IDs ("ms-seq") numerically.
func streamID(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	an, _ := strconv.ParseUint(am, 10, 64)
	bn, _ := strconv.ParseUint(bm, 10, 64)
	if an != bn {
		if an < bn {
			return -1
		}
		return 1
	}
	aseq, _ := strconv.ParseUint(as, 10, 64)
	bseq, _ := strconv.ParseUint(bs, 10, 64)
	switch {
	case aseq < bseq:
		return -1
	case aseq > bseq:
		return 1
	}
	return 0
}

// entries turns glide's id -> [[field, value], ...] map into the server's
// [id, [field, value, ...]] entries: in the order of order's arguments
// when given (XCLAIM's IDs), else by ID (descending when desc).
func entries(m drivers.Value, desc bool, order []string) []drivers.Value {
	type entry struct {
		id     string
		fields drivers.Value
	}
	es := make([]entry, 0, len(m.Elems)/2)
	for i := 0; i+1 < len(m.Elems); i += 2 {
		es = append(es, entry{m.Elems[i].Str, flatFields(m.Elems[i+1])})
	}
	pos := func(id string) int {
		for i, a := range order {
			if a == id {
				return i
			}
		}
		return len(order)
	}
	slices.SortFunc(es, func(a, b entry) int {
		if order != nil {
			if c := pos(a.id) - pos(b.id); c != 0 {
				return c
			}
		}
		c := streamID(a.id, b.id)
		if desc {
			c = -c
		}
		return c
	})
	out := make([]drivers.Value, len(es))
	for i, e := range es {
		out[i] = drivers.Array(drivers.String(e.id), e.fields)
	}
	return out
}

// flatFields turns [[field, value], ...] into [field, value, ...]; other
// shapes (nil for a deleted entry, a flat list) are kept.
func flatFields(v drivers.Value) drivers.Value {
	if v.Kind != drivers.KindArray {
		return v
	}
	flat := make([]drivers.Value, 0, 2*len(v.Elems))
	for _, p := range v.Elems {
		if p.Kind != drivers.KindArray || len(p.Elems) != 2 {
			return v
		}
		flat = append(flat, p.Elems...)
	}
	return drivers.Array(flat...)
}

// streams restores XREAD/XREADGROUP's map of stream -> entries: streams
// in the order of the STREAMS arguments (the server's), each one's
// entries by ID.
func streams(args []string, v drivers.Value) drivers.Value {
	if v.Kind != drivers.KindMap {
		return v
	}
	var keys []string
	for i, a := range args {
		if strings.EqualFold(a, "STREAMS") {
			rest := args[i+1:]
			keys = rest[:len(rest)/2]
			break
		}
	}
	out := make([]drivers.Value, 0, len(v.Elems))
	add := func(k drivers.Value, e drivers.Value) {
		if e.Kind == drivers.KindMap {
			e = drivers.Array(entries(e, false, nil)...)
		}
		out = append(out, k, e)
	}
	done := make([]bool, len(v.Elems)/2)
	for _, k := range keys {
		for i := 0; i+1 < len(v.Elems); i += 2 {
			if !done[i/2] && v.Elems[i].Str == k {
				done[i/2] = true
				add(v.Elems[i], v.Elems[i+1])
			}
		}
	}
	for i := 0; i+1 < len(v.Elems); i += 2 {
		if !done[i/2] {
			add(v.Elems[i], v.Elems[i+1])
		}
	}
	return drivers.Map(out...)
}

// flatInOrder turns a map into the flat [key, value, ...] array the
// server sends, keys in the order of names.
func flatInOrder(m drivers.Value, names []string) drivers.Value {
	out := make([]drivers.Value, 0, len(m.Elems))
	for _, n := range names {
		for i := 0; i+1 < len(m.Elems); i += 2 {
			if m.Elems[i].Str == n {
				out = append(out, m.Elems[i], m.Elems[i+1])
				break
			}
		}
	}
	return drivers.Array(out...)
}

// distance is the server's text of a GEO distance: fixed, 4 decimals
// (glide makes it a double).
func distance(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }

// geoSearch restores GEOSEARCH's reply with WITHDIST, WITHHASH or
// WITHCOORD: glide nests each match's fields ([name, [dist, hash,
// [lon, lat]]]) and makes the distance a double; the server sends [name,
// dist, hash, [lon, lat]], the distance a string.
func geoSearch(args []string, v drivers.Value) drivers.Value {
	withDist := hasArg(args, "WITHDIST")
	if v.Kind != drivers.KindArray || !(withDist || hasArg(args, "WITHHASH") || hasArg(args, "WITHCOORD")) {
		return v
	}
	out := make([]drivers.Value, len(v.Elems))
	for i, m := range v.Elems {
		if m.Kind != drivers.KindArray || len(m.Elems) != 2 || m.Elems[1].Kind != drivers.KindArray {
			return v
		}
		fields := append([]drivers.Value{m.Elems[0]}, m.Elems[1].Elems...)
		if withDist && len(fields) > 1 && fields[1].Kind == drivers.KindFloat {
			fields[1] = drivers.String(distance(fields[1].Float))
		}
		out[i] = drivers.Array(fields...)
	}
	return drivers.Array(out...)
}

// latencyHistogram turns LATENCY HISTOGRAM's RESP2 reply (it is sent
// between HELLO 2 and HELLO 3: see inRESP2), [name, [calls, n,
// histogram_usec, [bucket, count, ...]], ...], into the RESP3 one, maps
// in the server's order: {name: {calls: n, histogram_usec: {bucket:
// count, ...}}, ...}. Other shapes are kept.
func latencyHistogram(v drivers.Value) drivers.Value {
	if v.Kind != drivers.KindArray || len(v.Elems)%2 != 0 {
		return v
	}
	out := make([]drivers.Value, len(v.Elems))
	for i := 0; i < len(v.Elems); i += 2 {
		stats := v.Elems[i+1]
		if stats.Kind != drivers.KindArray || len(stats.Elems)%2 != 0 {
			return v
		}
		fields := slices.Clone(stats.Elems)
		for j := 0; j < len(fields); j += 2 {
			if f := fields[j+1]; f.Kind == drivers.KindArray && len(f.Elems)%2 == 0 {
				fields[j+1] = drivers.Map(f.Elems...)
			}
		}
		out[i], out[i+1] = v.Elems[i], drivers.Map(fields...)
	}
	return drivers.Map(out...)
}

// commandDocs turns COMMAND DOCS's RESP2 reply (it is sent through a
// script: see rewrite) into the RESP3 one: each command's docs, each
// argument and each subcommand's docs a map (from flat arrays); doc_flags,
// history and an argument's flags sets; the rest as it is. Other shapes are kept.
func commandDocs(v drivers.Value) drivers.Value {
	if v.Kind != drivers.KindArray || len(v.Elems)%2 != 0 {
		return v
	}
	out := make([]drivers.Value, len(v.Elems))
	for i := 0; i < len(v.Elems); i += 2 {
		out[i], out[i+1] = v.Elems[i], flatMap(v.Elems[i+1], docField)
	}
	return drivers.Map(out...)
}

// flatMap makes a map of the flat array [key, value, ...] v, each value
// passed through field with its key; other shapes are kept.
func flatMap(v drivers.Value, field func(key string, v drivers.Value) drivers.Value) drivers.Value {
	if v.Kind != drivers.KindArray || len(v.Elems)%2 != 0 {
		return v
	}
	elems := make([]drivers.Value, len(v.Elems))
	for i := 0; i < len(v.Elems); i += 2 {
		elems[i], elems[i+1] = v.Elems[i], field(v.Elems[i].Str, v.Elems[i+1])
	}
	return drivers.Map(elems...)
}

// docField is a field of a command's docs in RESP3.
func docField(key string, v drivers.Value) drivers.Value {
	switch key {
	case "doc_flags", "history": // history: a set of [version, text] arrays
		return asSet(v)
	case "arguments":
		return arguments(v)
	case "subcommands":
		return commandDocs(v)
	}
	return v
}

// argField is a field of a command argument's docs in RESP3.
func argField(key string, v drivers.Value) drivers.Value {
	switch key {
	case "flags":
		return asSet(v)
	case "arguments":
		return arguments(v)
	}
	return v
}

// arguments makes a map of each argument's flat array.
func arguments(v drivers.Value) drivers.Value {
	if v.Kind != drivers.KindArray {
		return v
	}
	elems := make([]drivers.Value, len(v.Elems))
	for i, a := range v.Elems {
		elems[i] = flatMap(a, argField)
	}
	return drivers.Array(elems...)
}

// asSet makes a set of an array.
func asSet(v drivers.Value) drivers.Value {
	if v.Kind != drivers.KindArray {
		return v
	}
	return drivers.Set(v.Elems...)
}

// commandInfo turns COMMAND's and COMMAND INFO's RESP2 reply (sent
// through a script: see rewrite) into the RESP3 one: in each command's
// array, the flags (2), ACL categories (6) and tips (7) sets, the key
// specs (8) a set of maps (begin_search and find_keys maps of a type and
// a spec map, flags a set), the subcommands (9) converted alike (none:
// an empty set, as the server sends it). Nulls
// (unknown commands) and other shapes are kept.
func commandInfo(v drivers.Value) drivers.Value {
	if v.Kind != drivers.KindArray {
		return v
	}
	out := make([]drivers.Value, len(v.Elems))
	for i, c := range v.Elems {
		out[i] = commandEntry(c)
	}
	return drivers.Array(out...)
}

func commandEntry(c drivers.Value) drivers.Value {
	if c.Kind != drivers.KindArray || len(c.Elems) < 10 {
		return c
	}
	e := slices.Clone(c.Elems)
	e[2], e[6], e[7] = asSet(e[2]), asSet(e[6]), asSet(e[7])
	if e[8].Kind == drivers.KindArray {
		specs := make([]drivers.Value, len(e[8].Elems))
		for i, ks := range e[8].Elems {
			specs[i] = flatMap(ks, keySpecField)
		}
		e[8] = drivers.Set(specs...)
	}
	if e[9].Kind == drivers.KindArray && len(e[9].Elems) == 0 {
		e[9] = drivers.Set() // the server sends no subcommands as an empty set
	} else {
		e[9] = commandInfo(e[9])
	}
	return drivers.Array(e...)
}

// keySpecField is a field of a key spec in RESP3.
func keySpecField(key string, v drivers.Value) drivers.Value {
	switch key {
	case "flags":
		return asSet(v)
	case "begin_search", "find_keys":
		return flatMap(v, func(key string, v drivers.Value) drivers.Value {
			if key == "spec" {
				return flatMap(v, func(_ string, v drivers.Value) drivers.Value { return v })
			}
			return v
		})
	}
	return v
}
