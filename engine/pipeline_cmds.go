package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/futures"
)

// The rest of Pipeline's and Tx's typed commands: each is the Engine's
// method of the same name without its ctx (Exec's ctx carries them), with
// the same arguments, checks and future type. A command whose arguments
// the Engine's method refuses is refused here as reject says (a
// Pipeline's Exec returns the first such refusal and sends the rest; a
// Tx sends nothing).

// one records a command on key that build makes.
func one[T any](c *commands, key string, build func(valkey.Builder) valkey.Completed, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	if c.e == nil {
		return fail[T](errZeroCommands)
	}
	return add(c, key, build(c.b()), decode)
}

// checked is one for a command whose arguments build may refuse.
func checked[T any](c *commands, key string, build func(valkey.Builder) (valkey.Completed, error), decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	if c.e == nil {
		return fail[T](errZeroCommands)
	}
	cmd, err := build(c.b())
	if err != nil {
		return reject[T](c, err)
	}
	return add(c, key, cmd, decode)
}

// needSome refuses a command given none of what it needs (keys, fields,
// members).
func needSome(cmd, what string, n int) error {
	if n == 0 {
		return fmt.Errorf("%w: %s needs at least one %s", ErrInvalidArgument, cmd, what)
	}
	return nil
}

// GetDel adds GETDEL key (see Engine.GetDel).
func (c *commands) GetDel(key string) *futures.Future[string] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Getdel().Key(key).Build() }, decodeString)
}

// GetEx adds GETEX key with a time to live (see Engine.GetEx).
func (c *commands) GetEx(key string, ttl time.Duration) *futures.Future[string] {
	return checked(c, key, func(b valkey.Builder) (valkey.Completed, error) { return getExCmd(b, key, ttl) }, decodeString)
}

// SetArgs adds SET with options (see Engine.SetArgs).
func (c *commands) SetArgs(key, value string, o SetOptions) *futures.Future[SetResult] {
	if c.e == nil {
		return fail[SetResult](errZeroCommands)
	}
	cmd, decode, err := setArgsCmd(c.b(), key, value, o)
	if err != nil {
		return reject[SetResult](c, err)
	}
	return add(c, key, cmd, decode)
}

// Append adds APPEND key value; its future holds the new length.
func (c *commands) Append(key, value string) *futures.Future[int64] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Append().Key(key).Value(value).Build() }, decodeInt64)
}

// StrLen adds STRLEN key.
func (c *commands) StrLen(key string) *futures.Future[int64] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Strlen().Key(key).Build() }, decodeInt64)
}

// IncrByFloat adds INCRBYFLOAT key incr (see Engine.IncrByFloat).
func (c *commands) IncrByFloat(key string, incr float64) *futures.Future[float64] {
	return checked(c, key, func(b valkey.Builder) (valkey.Completed, error) {
		return b.Incrbyfloat().Key(key).Increment(incr).Build(), checkIncr("INCRBYFLOAT", incr)
	}, decodeFloat64)
}

// Unlink adds UNLINK keys; its future holds how many existed. In a
// cluster pipeline keys of several slots are split as Del's.
func (c *commands) Unlink(keys ...string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	if err := needSome("UNLINK", "key", len(keys)); err != nil {
		return reject[int64](c, err)
	}
	e := c.e
	return addKeys(c, keys, c.b().Unlink().Key(keys...).Build(), decodeInt64,
		func(ctx context.Context) *futures.Future[int64] { return e.Unlink(ctx, keys...) })
}

// Persist adds PERSIST key (see Engine.Persist).
func (c *commands) Persist(key string) *futures.Future[bool] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Persist().Key(key).Build() }, decodeIntBool)
}

// PTTL adds PTTL key (see Engine.PTTL).
func (c *commands) PTTL(key string) *futures.Future[TTL] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Pttl().Key(key).Build() }, decodeTTLMillis)
}

// Type adds TYPE key.
func (c *commands) Type(key string) *futures.Future[string] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Type().Key(key).Build() }, decodeString)
}

// Rename adds RENAME key newKey (see Engine.Rename: in cluster mode both
// keys must hash to one slot, else ErrCrossSlot).
func (c *commands) Rename(key, newKey string) *futures.Future[struct{}] {
	return twoKeys(c, "RENAME", []string{key, newKey}, decodeOK)
}

// HMGet adds HMGET key fields; a missing field is a nil entry.
func (c *commands) HMGet(key string, fields ...string) *futures.Future[[]*string] {
	return checked(c, key, func(b valkey.Builder) (valkey.Completed, error) {
		return b.Hmget().Key(key).Field(fields...).Build(), needSome("HMGET", "field", len(fields))
	}, decodeNullableStrings)
}

// HExists adds HEXISTS key field.
func (c *commands) HExists(key, field string) *futures.Future[bool] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Hexists().Key(key).Field(field).Build() }, decodeBool)
}

// HLen adds HLEN key.
func (c *commands) HLen(key string) *futures.Future[int64] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Hlen().Key(key).Build() }, decodeInt64)
}

// HKeys adds HKEYS key.
func (c *commands) HKeys(key string) *futures.Future[[]string] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Hkeys().Key(key).Build() }, decodeStrings)
}

// HVals adds HVALS key.
func (c *commands) HVals(key string) *futures.Future[[]string] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Hvals().Key(key).Build() }, decodeStrings)
}

// HSetNX adds HSETNX key field value; its future reports whether it set
// the field.
func (c *commands) HSetNX(key, field, value string) *futures.Future[bool] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Hsetnx().Key(key).Field(field).Value(value).Build() }, decodeIntBool)
}

// HIncrByFloat adds HINCRBYFLOAT key field incr (see Engine.HIncrByFloat).
func (c *commands) HIncrByFloat(key, field string, incr float64) *futures.Future[float64] {
	return checked(c, key, func(b valkey.Builder) (valkey.Completed, error) {
		return b.Hincrbyfloat().Key(key).Field(field).Increment(incr).Build(), checkIncr("HINCRBYFLOAT", incr)
	}, decodeFloat64)
}

// RPop adds RPOP key; its future fails with ErrNil when the list is empty.
func (c *commands) RPop(key string) *futures.Future[string] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Rpop().Key(key).Build() }, decodeString)
}

// LLen adds LLEN key.
func (c *commands) LLen(key string) *futures.Future[int64] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Llen().Key(key).Build() }, decodeInt64)
}

// LRem adds LREM key count value (see Engine.LRem).
func (c *commands) LRem(key string, count int64, value string) *futures.Future[int64] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Lrem().Key(key).Count(count).Element(value).Build() }, decodeInt64)
}

// LIndex adds LINDEX key index; its future fails with ErrNil when the
// index is out of range.
func (c *commands) LIndex(key string, index int64) *futures.Future[string] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Lindex().Key(key).Index(index).Build() }, decodeString)
}

// LMove adds LMOVE source destination from to (see Engine.LMove: in
// cluster mode both keys must hash to one slot, else ErrCrossSlot).
func (c *commands) LMove(source, destination string, from, to ListSide) *futures.Future[string] {
	if c.e == nil {
		return fail[string](errZeroCommands)
	}
	if err := checkSides("LMOVE", from, to); err != nil {
		return reject[string](c, err)
	}
	return twoKeys(c, "LMOVE", []string{source, destination, from.String(), to.String()}, decodeString)
}

// SIsMember adds SISMEMBER key member.
func (c *commands) SIsMember(key, member string) *futures.Future[bool] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Sismember().Key(key).Member(member).Build() }, decodeBool)
}

// SCard adds SCARD key.
func (c *commands) SCard(key string) *futures.Future[int64] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Scard().Key(key).Build() }, decodeInt64)
}

// ZRem adds ZREM key members; its future holds how many were removed.
func (c *commands) ZRem(key string, members ...string) *futures.Future[int64] {
	return checked(c, key, func(b valkey.Builder) (valkey.Completed, error) {
		return b.Zrem().Key(key).Member(members...).Build(), needSome("ZREM", "member", len(members))
	}, decodeInt64)
}

// ZRange adds ZRANGE key start stop (ranks).
func (c *commands) ZRange(key string, start, stop int64) *futures.Future[[]string] {
	return one(c, key, func(b valkey.Builder) valkey.Completed {
		return b.Zrange().Key(key).Min(strconv.FormatInt(start, 10)).Max(strconv.FormatInt(stop, 10)).Build()
	}, decodeStrings)
}

// ZRangeArgs adds ZRANGE with its options (see Engine.ZRangeArgs).
func (c *commands) ZRangeArgs(a ZRangeArgs) *futures.Future[[]string] {
	return checked(c, a.Key, func(b valkey.Builder) (valkey.Completed, error) { return zrangeCmd(b, a, false) }, decodeStrings)
}

// ZRangeArgsWithScores adds ZRANGE with its options and WITHSCORES (see
// Engine.ZRangeArgsWithScores).
func (c *commands) ZRangeArgsWithScores(a ZRangeArgs) *futures.Future[[]Z] {
	return checked(c, a.Key, func(b valkey.Builder) (valkey.Completed, error) { return zrangeCmd(b, a, true) }, decodeZs)
}

// ZRevRange adds ZRANGE key start stop REV.
func (c *commands) ZRevRange(key string, start, stop int64) *futures.Future[[]string] {
	return c.ZRangeArgs(revRanks(key, start, stop))
}

// ZRevRangeWithScores adds ZRANGE key start stop REV WITHSCORES.
func (c *commands) ZRevRangeWithScores(key string, start, stop int64) *futures.Future[[]Z] {
	return c.ZRangeArgsWithScores(revRanks(key, start, stop))
}

// ZCard adds ZCARD key.
func (c *commands) ZCard(key string) *futures.Future[int64] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Zcard().Key(key).Build() }, decodeInt64)
}

// ZRank adds ZRANK key member; its future fails with ErrNil when missing.
func (c *commands) ZRank(key, member string) *futures.Future[int64] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Zrank().Key(key).Member(member).Build() }, decodeInt64)
}

// ZRevRank adds ZREVRANK key member; its future fails with ErrNil when
// missing.
func (c *commands) ZRevRank(key, member string) *futures.Future[int64] {
	return one(c, key, func(b valkey.Builder) valkey.Completed { return b.Zrevrank().Key(key).Member(member).Build() }, decodeInt64)
}

// ZCount adds ZCOUNT key min max (see Engine.ZCount).
func (c *commands) ZCount(key, min, max string) *futures.Future[int64] {
	return checked(c, key, func(b valkey.Builder) (valkey.Completed, error) { return zcountCmd(b, key, min, max) }, decodeInt64)
}

// XAdd adds XADD stream * fieldValues (see Engine.XAdd).
func (c *commands) XAdd(stream string, fieldValues ...string) *futures.Future[string] {
	return c.XAddWith(stream, XAddOptions{}, fieldValues...)
}

// XAddWith adds XADD with options (see Engine.XAddWith).
func (c *commands) XAddWith(stream string, opts XAddOptions, fieldValues ...string) *futures.Future[string] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) { return xaddCmd(b, stream, opts, fieldValues) }, decodeString)
}

// XTrim adds XTRIM stream as opts says (see Engine.XTrim).
func (c *commands) XTrim(stream string, opts XTrimOptions) *futures.Future[int64] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) { return xtrimCmd(b, stream, opts) }, decodeInt64)
}

// XLen adds XLEN stream.
func (c *commands) XLen(stream string) *futures.Future[int64] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) {
		if stream == "" {
			return valkey.Completed{}, errStream("XLEN", "stream key")
		}
		return b.Xlen().Key(stream).Build(), nil
	}, decodeInt64)
}

// XRange adds XRANGE stream start end [COUNT count] (see Engine.XRange).
func (c *commands) XRange(stream, start, end string, count int64) *futures.Future[[]XEntry] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) { return xrangeCmd(b, stream, start, end, count) }, decodeXEntries)
}

// XRevRange adds XREVRANGE stream end start [COUNT count] (see
// Engine.XRevRange).
func (c *commands) XRevRange(stream, end, start string, count int64) *futures.Future[[]XEntry] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) { return xrevrangeCmd(b, stream, end, start, count) }, decodeXEntries)
}

// XDel adds XDEL stream ids (see Engine.XDel).
func (c *commands) XDel(stream string, ids ...string) *futures.Future[int64] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) { return xdelCmd(b, stream, ids) }, decodeInt64)
}

// XAck adds XACK stream group ids (see Engine.XAck).
func (c *commands) XAck(stream, group string, ids ...string) *futures.Future[int64] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) { return xackCmd(b, stream, group, ids) }, decodeInt64)
}

// XRead adds XREAD [COUNT count] STREAMS keys ids, without BLOCK (see
// Engine.XRead): the streams in the Engine's order (sorted), routed by
// the first. In cluster mode they must share a slot: a Pipeline's future
// then fails with a CROSSSLOT *ServerError as the Engine's, a Tx fails
// whole with ErrCrossSlot, unsent.
func (c *commands) XRead(count int64, streams map[string]string) *futures.Future[map[string][]XEntry] {
	if c.e == nil {
		return fail[map[string][]XEntry](errZeroCommands)
	}
	cmd, keys, err := xreadCmd(c.b(), count, streams)
	return addStreams(c, cmd, keys, err)
}

// XReadGroup adds XREADGROUP GROUP group consumer [COUNT count] STREAMS
// keys ids, without BLOCK (see Engine.XReadGroup; the streams as XRead's).
func (c *commands) XReadGroup(group, consumer string, count int64, streams map[string]string) *futures.Future[map[string][]XEntry] {
	if c.e == nil {
		return fail[map[string][]XEntry](errZeroCommands)
	}
	cmd, keys, err := xreadGroupCmd(c.b(), group, consumer, count, streams)
	return addStreams(c, cmd, keys, err)
}

// addStreams records an XREAD or XREADGROUP built on keys (sorted) or
// refuses it with err.
func addStreams(c *commands, cmd valkey.Completed, keys []string, err error) *futures.Future[map[string][]XEntry] {
	if err != nil {
		return reject[map[string][]XEntry](c, err)
	}
	en := entry{route: keys[0]} // as Engine.XRead routes it
	if len(keys) > 1 {
		en.keys = keys // a Tx's slot check sees every stream
	}
	return record(c, en, cmd, decodeXRead, nil)
}

// XPending adds XPENDING stream group (see Engine.XPending).
func (c *commands) XPending(stream, group string) *futures.Future[XPendingSummary] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) { return xpendingCmd(b, stream, group) }, decodeXPendingSummary)
}

// XPendingExt adds XPENDING stream group [IDLE] start end count
// [consumer] (see Engine.XPendingExt).
func (c *commands) XPendingExt(stream, group string, opts XPendingOptions) *futures.Future[[]XPendingEntry] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) { return xpendingExtCmd(b, stream, group, opts) }, decodeXPendingEntries)
}

// XClaim adds XCLAIM stream group consumer min-idle-time ids (see
// Engine.XClaim).
func (c *commands) XClaim(stream, group, consumer string, minIdle time.Duration, ids ...string) *futures.Future[[]XEntry] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) {
		return xclaimCmd(b, stream, group, consumer, minIdle, ids)
	}, decodeXEntries)
}

// XAutoClaim adds XAUTOCLAIM stream group consumer min-idle-time start
// [COUNT count] (see Engine.XAutoClaim).
func (c *commands) XAutoClaim(stream, group, consumer string, minIdle time.Duration, start string, count int64) *futures.Future[XAutoClaimResult] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) {
		return xautoclaimCmd(b, stream, group, consumer, minIdle, start, count)
	}, decodeXAutoClaim)
}

// XGroupCreate adds XGROUP CREATE stream group start [MKSTREAM] (see
// Engine.XGroupCreate).
func (c *commands) XGroupCreate(stream, group, start string, mkStream bool) *futures.Future[struct{}] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) {
		return xgroupCreateCmd(b, stream, group, start, mkStream)
	}, decodeOK)
}

// XGroupDestroy adds XGROUP DESTROY stream group (see
// Engine.XGroupDestroy).
func (c *commands) XGroupDestroy(stream, group string) *futures.Future[bool] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) { return xgroupDestroyCmd(b, stream, group) }, decodeIntBool)
}

// XInfoGroups adds XINFO GROUPS stream (see Engine.XInfoGroups).
func (c *commands) XInfoGroups(stream string) *futures.Future[[]XGroupInfo] {
	return checked(c, stream, func(b valkey.Builder) (valkey.Completed, error) { return xinfoGroupsCmd(b, stream) }, decodeXGroups)
}

// Publish adds PUBLISH channel message; its future holds how many
// subscribers received it (in cluster mode, of the node that serves the
// channel's slot, as Engine.Publish). In a cluster Tx it goes with the
// transaction's node, as Do's.
func (c *commands) Publish(channel, message string) *futures.Future[int64] {
	if c.e == nil {
		return fail[int64](errZeroCommands)
	}
	cmd := c.b().Publish().Channel(channel).Message(message).Build()
	if c.tx && c.e.cl != nil {
		return addKeyless(c, cmd, decodeInt64)
	}
	return add(c, channel, cmd, decodeInt64) // by its channel, as Engine.Publish
}

// SPublish adds SPUBLISH channel message (see Engine.SPublish).
func (c *commands) SPublish(channel, message string) *futures.Future[int64] {
	return checked(c, channel, func(b valkey.Builder) (valkey.Completed, error) { return spublishCmd(b, channel, message) }, decodeInt64)
}

// Eval adds EVAL script with keys and args (see Engine.Eval; in cluster
// mode the keys must hash to one slot, else ErrCrossSlot). Script's
// NOSCRIPT fallback does not apply in a pipeline: use Eval, or load the
// script first.
func (c *commands) Eval(script string, keys []string, args ...string) *futures.Future[Reply] {
	return c.eval("EVAL", evalArgs(script, keys, args), len(keys))
}

// EvalSha adds EVALSHA sha1 with keys and args (see Engine.EvalSha): a
// server without the script fails the future with a NOSCRIPT
// *ServerError.
func (c *commands) EvalSha(sha1 string, keys []string, args ...string) *futures.Future[Reply] {
	return c.eval("EVALSHA", evalArgs(sha1, keys, args), len(keys))
}

// EvalRO adds EVAL_RO (see Engine.EvalRO).
func (c *commands) EvalRO(script string, keys []string, args ...string) *futures.Future[Reply] {
	return c.eval("EVAL_RO", evalArgs(script, keys, args), len(keys))
}

// EvalShaRO adds EVALSHA_RO (see Engine.EvalShaRO).
func (c *commands) EvalShaRO(sha1 string, keys []string, args ...string) *futures.Future[Reply] {
	return c.eval("EVALSHA_RO", evalArgs(sha1, keys, args), len(keys))
}

// eval records a script call (a: evalArgs) routed by its nkeys keys, as
// Engine.eval.
func (c *commands) eval(name string, a []string, nkeys int) *futures.Future[Reply] {
	if c.e == nil {
		return fail[Reply](errZeroCommands)
	}
	if c.e.closed.Load() {
		return reject[Reply](c, ErrClosed) // first, as Engine.eval; Exec returns it
	}
	pos := make([]int, nkeys)
	for i := range pos {
		pos[i] = 2 + i
	}
	cmd, route, err := c.e.buildDo(name, a, pos)
	if err != nil {
		return reject[Reply](c, err)
	}
	if route == "" {
		return addKeyless(c, cmd, decodeReply)
	}
	en := entry{route: route}
	if nkeys > 1 {
		en.keys = append([]string(nil), a[2:2+nkeys]...)
	}
	return record(c, en, cmd, decodeReply, nil)
}

// twoKeys records name with args whose first two are keys (RENAME,
// LMOVE): in cluster mode of one slot, else refused with ErrCrossSlot.
func twoKeys[T any](c *commands, name string, args []string, decode func(valkey.ValkeyResult) (T, error)) *futures.Future[T] {
	if c.e == nil {
		return fail[T](errZeroCommands)
	}
	if c.e.closed.Load() {
		return reject[T](c, ErrClosed) // first, as the Engine's (its slot check would refuse first); Exec returns it
	}
	cmd, route, err := c.e.buildDo(name, args, []int{0, 1})
	if err != nil {
		return reject[T](c, err)
	}
	return record(c, entry{route: route, keys: []string{args[0], args[1]}}, cmd, decode, nil)
}
