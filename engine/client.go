package engine

import (
	"context"
	"iter"
	"time"

	"github.com/vactor-io/vactor/futures"
)

// Client is the synchronous face of an Engine, for code that wants plain
// blocking calls instead of futures. Each method sends the same command as
// the Engine method of the same name and waits for its reply; results and
// errors are the same (ErrNil, *ServerError, ErrInvalidArgument, ...).
//
// ctx both travels with the command and bounds the wait: when ctx ends
// first, the method returns ctx's error at once. A command still queued at
// that moment is dropped unsent, but one already written to the server
// still runs there: a write whose call returned ctx's error may or may not
// have happened. The blocking calls (BLPop, BRPop, BLMove, and Do of a
// blocking command) return the engine's outcome instead, as soon as ctx
// ends: a pop cut by ctx fails with ErrOutcomeUnknown wrapping ctx's
// error (it may have popped an element, lost with its reply; see Do).
//
// A Client is safe for concurrent use by any number of goroutines. Get one
// from Engine.Sync. The interface gains a method with each command the
// Engine gains: a test double should embed Client (and override what it
// needs) rather than implement it whole.
type Client interface {
	// Do sends any command, as Engine.Do.
	Do(ctx context.Context, name string, args ...string) (Reply, error)

	// Get returns the value of key, ErrNil when missing.
	Get(ctx context.Context, key string) (string, error)
	// Set sets key to value with a time to live (0 for none, KeepTTL).
	Set(ctx context.Context, key, value string, ttl time.Duration) error
	// SetNX sets key only if it does not exist and reports whether it did.
	SetNX(ctx context.Context, key, value string, ttl time.Duration) (bool, error)
	// GetDel returns the value of key and deletes it, ErrNil when missing.
	GetDel(ctx context.Context, key string) (string, error)
	// GetEx returns the value of key and sets its time to live (0 leaves
	// it as it is, as Engine.GetEx), ErrNil when missing.
	GetEx(ctx context.Context, key string, ttl time.Duration) (string, error)
	// SetArgs is SET with its options (NX, XX, GET, a ttl), as
	// Engine.SetArgs.
	SetArgs(ctx context.Context, key, value string, o SetOptions) (SetResult, error)
	// MGet returns the values of keys, nil for a missing key.
	MGet(ctx context.Context, keys ...string) ([]*string, error)
	// MSet sets alternating key/value arguments.
	MSet(ctx context.Context, keyValues ...string) error
	// MSetNX sets alternating key/value arguments, all or none (none
	// when any key exists), and reports whether they were set.
	MSetNX(ctx context.Context, keyValues ...string) (bool, error)
	// Incr increments the integer at key by one and returns the new value.
	Incr(ctx context.Context, key string) (int64, error)
	// IncrBy increments the integer at key by n and returns the new value.
	IncrBy(ctx context.Context, key string, n int64) (int64, error)
	// Decr decrements the integer at key by one and returns the new value.
	Decr(ctx context.Context, key string) (int64, error)
	// Del deletes keys and returns how many existed.
	Del(ctx context.Context, keys ...string) (int64, error)
	// Exists returns how many of keys exist.
	Exists(ctx context.Context, keys ...string) (int64, error)
	// Expire sets key's time to live (whole seconds) and reports whether
	// the key exists.
	Expire(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// TTL returns key's remaining time to live.
	TTL(ctx context.Context, key string) (TTL, error)

	// HSet sets alternating field/value arguments in the hash at key and
	// returns how many fields were added.
	HSet(ctx context.Context, key string, fieldValues ...string) (int64, error)
	// HSetMap sets the fields and values of m in the hash at key and
	// returns how many fields were added.
	HSetMap(ctx context.Context, key string, m map[string]string) (int64, error)
	// HGet returns a field of the hash at key, ErrNil when missing.
	HGet(ctx context.Context, key, field string) (string, error)
	// HGetAll returns the hash at key, empty when missing.
	HGetAll(ctx context.Context, key string) (map[string]string, error)
	// HDel removes fields from the hash at key and returns how many existed.
	HDel(ctx context.Context, key string, fields ...string) (int64, error)

	// LPush inserts values at the head of the list at key; it returns the
	// new length.
	LPush(ctx context.Context, key string, values ...string) (int64, error)
	// RPush appends values to the list at key; it returns the new length.
	RPush(ctx context.Context, key string, values ...string) (int64, error)
	// LPop removes and returns the list's first element, ErrNil when empty.
	LPop(ctx context.Context, key string) (string, error)
	// RPop removes and returns the list's last element, ErrNil when empty.
	RPop(ctx context.Context, key string) (string, error)
	// LRange returns the list's elements from start to stop, inclusive.
	LRange(ctx context.Context, key string, start, stop int64) ([]string, error)
	// LTrim keeps only the list's elements from start to stop, inclusive.
	LTrim(ctx context.Context, key string, start, stop int64) error
	// LIndex returns the list's element at index, ErrNil when out of range.
	LIndex(ctx context.Context, key string, index int64) (string, error)
	// LMove moves an element between lists (sides Left or Right), ErrNil
	// when source is empty.
	LMove(ctx context.Context, source, destination string, from, to ListSide) (string, error)
	// BLMove is LMove waiting up to timeout (0: for ever); ErrNil when
	// none came.
	BLMove(ctx context.Context, source, destination string, from, to ListSide, timeout time.Duration) (string, error)
	// BLPop pops the first element of the first non-empty list, waiting up
	// to timeout (0: for ever); ErrNil when none came.
	BLPop(ctx context.Context, timeout time.Duration, keys ...string) (KeyValue, error)
	// BRPop is BLPop popping the last element.
	BRPop(ctx context.Context, timeout time.Duration, keys ...string) (KeyValue, error)

	// Eval runs a Lua script (EVAL) with keys and args.
	Eval(ctx context.Context, script string, keys []string, args ...string) (Reply, error)
	// EvalSha runs the script cached under a SHA1 digest (EVALSHA).
	EvalSha(ctx context.Context, sha1 string, keys []string, args ...string) (Reply, error)
	// RunScript runs s: EVALSHA, then EVAL when the server has not got it
	// (Script.Run).
	RunScript(ctx context.Context, s *Script, keys []string, args ...string) (Reply, error)
	// EvalRO and EvalShaRO are Eval and EvalSha for a script that only
	// reads.
	EvalRO(ctx context.Context, script string, keys []string, args ...string) (Reply, error)
	EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...string) (Reply, error)

	// SAdd adds members to the set at key and returns how many were new.
	SAdd(ctx context.Context, key string, members ...string) (int64, error)
	// SRem removes members from the set at key and returns how many were in
	// it.
	SRem(ctx context.Context, key string, members ...string) (int64, error)
	// SMembers returns the members of the set at key.
	SMembers(ctx context.Context, key string) ([]string, error)
	// SIsMember reports whether member is in the set at key.
	SIsMember(ctx context.Context, key, member string) (bool, error)

	// ZAdd adds members to the sorted set at key and returns how many were
	// new.
	ZAdd(ctx context.Context, key string, members ...Z) (int64, error)
	// ZRangeWithScores returns the members ranked start to stop, with
	// scores.
	ZRangeWithScores(ctx context.Context, key string, start, stop int64) ([]Z, error)
	// ZScore returns the score of member, ErrNil when missing.
	ZScore(ctx context.Context, key, member string) (float64, error)

	// Publish posts message on channel and returns how many subscribers
	// received it.
	Publish(ctx context.Context, channel, message string) (int64, error)

	// Ping sends PING on every connection and waits for the replies.
	Ping(ctx context.Context) error
	// IsHealthy reports whether every connection answers PING before ctx
	// ends.
	IsHealthy(ctx context.Context) bool
	// Close closes the Engine behind the Client (see Engine.Close).
	Close() error

	// More typed commands, each as the Engine method of the same name.

	// HExists is Engine.HExists, awaited.
	HExists(ctx context.Context, key, field string) (bool, error)
	// HIncrBy is Engine.HIncrBy, awaited.
	HIncrBy(ctx context.Context, key, field string, n int64) (int64, error)
	// HKeys is Engine.HKeys, awaited.
	HKeys(ctx context.Context, key string) ([]string, error)
	// HLen is Engine.HLen, awaited.
	HLen(ctx context.Context, key string) (int64, error)
	// HMGet is Engine.HMGet, awaited.
	HMGet(ctx context.Context, key string, fields ...string) ([]*string, error)
	// HVals is Engine.HVals, awaited.
	HVals(ctx context.Context, key string) ([]string, error)
	// Append is Engine.Append, awaited.
	Append(ctx context.Context, key, value string) (int64, error)
	// StrLen is Engine.StrLen, awaited.
	StrLen(ctx context.Context, key string) (int64, error)
	// PExpire is Engine.PExpire, awaited.
	PExpire(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// PTTL is Engine.PTTL, awaited.
	PTTL(ctx context.Context, key string) (TTL, error)
	// Persist is Engine.Persist, awaited.
	Persist(ctx context.Context, key string) (bool, error)
	// Type is Engine.Type, awaited.
	Type(ctx context.Context, key string) (string, error)
	// Rename is Engine.Rename, awaited.
	Rename(ctx context.Context, key, newKey string) error
	// Unlink is Engine.Unlink, awaited.
	Unlink(ctx context.Context, keys ...string) (int64, error)
	// LLen is Engine.LLen, awaited.
	LLen(ctx context.Context, key string) (int64, error)
	// LRem is Engine.LRem, awaited.
	LRem(ctx context.Context, key string, count int64, value string) (int64, error)
	// SCard is Engine.SCard, awaited.
	SCard(ctx context.Context, key string) (int64, error)
	// ZCard is Engine.ZCard, awaited.
	ZCard(ctx context.Context, key string) (int64, error)
	// ZIncrBy is Engine.ZIncrBy, awaited.
	ZIncrBy(ctx context.Context, key string, incr float64, member string) (float64, error)
	// ZRank is Engine.ZRank, awaited.
	ZRank(ctx context.Context, key, member string) (int64, error)
	// ZRem is Engine.ZRem, awaited.
	ZRem(ctx context.Context, key string, members ...string) (int64, error)
	// ZRange is Engine.ZRange, awaited.
	ZRange(ctx context.Context, key string, start, stop int64) ([]string, error)
	// XAdd is Engine.XAdd, awaited.
	XAdd(ctx context.Context, stream string, fieldValues ...string) (string, error)
	// XRead is Engine.XRead, awaited.
	XRead(ctx context.Context, count int64, streams map[string]string) (map[string][]XEntry, error)
	// XLen is Engine.XLen, awaited.
	XLen(ctx context.Context, stream string) (int64, error)
	// XRange is Engine.XRange, awaited.
	XRange(ctx context.Context, stream, start, end string, count int64) ([]XEntry, error)
	// XDel is Engine.XDel, awaited.
	XDel(ctx context.Context, stream string, ids ...string) (int64, error)
	// XTrim is Engine.XTrim, awaited.
	XTrim(ctx context.Context, stream string, opts XTrimOptions) (int64, error)
	// IncrByFloat is Engine.IncrByFloat, awaited.
	IncrByFloat(ctx context.Context, key string, incr float64) (float64, error)
	// HIncrByFloat is Engine.HIncrByFloat, awaited.
	HIncrByFloat(ctx context.Context, key, field string, incr float64) (float64, error)
	// HSetNX is Engine.HSetNX, awaited.
	HSetNX(ctx context.Context, key, field, value string) (bool, error)
	// ZCount is Engine.ZCount, awaited.
	ZCount(ctx context.Context, key, min, max string) (int64, error)
	// ZRevRange is Engine.ZRevRange, awaited.
	ZRevRange(ctx context.Context, key string, start, stop int64) ([]string, error)
	// ZRevRangeWithScores is Engine.ZRevRangeWithScores, awaited.
	ZRevRangeWithScores(ctx context.Context, key string, start, stop int64) ([]Z, error)
	// ZRevRank is Engine.ZRevRank, awaited.
	ZRevRank(ctx context.Context, key, member string) (int64, error)
	// ZRangeArgs is Engine.ZRangeArgs, awaited.
	ZRangeArgs(ctx context.Context, a ZRangeArgs) ([]string, error)
	// ZRangeArgsWithScores is Engine.ZRangeArgsWithScores, awaited.
	ZRangeArgsWithScores(ctx context.Context, a ZRangeArgs) ([]Z, error)
	// XRevRange is Engine.XRevRange, awaited.
	XRevRange(ctx context.Context, stream, end, start string, count int64) ([]XEntry, error)
	// XAddWith is Engine.XAddWith, awaited.
	XAddWith(ctx context.Context, stream string, opts XAddOptions, fieldValues ...string) (string, error)
	// XReadGroup is Engine.XReadGroup, awaited.
	XReadGroup(ctx context.Context, group, consumer string, count int64, streams map[string]string) (map[string][]XEntry, error)
	// XAck is Engine.XAck, awaited.
	XAck(ctx context.Context, stream, group string, ids ...string) (int64, error)
	// XGroupCreate is Engine.XGroupCreate, awaited.
	XGroupCreate(ctx context.Context, stream, group, start string, mkStream bool) error
	// XGroupDestroy is Engine.XGroupDestroy, awaited.
	XGroupDestroy(ctx context.Context, stream, group string) (bool, error)
	// XPending is Engine.XPending, awaited.
	XPending(ctx context.Context, stream, group string) (XPendingSummary, error)
	// XPendingExt is Engine.XPendingExt, awaited.
	XPendingExt(ctx context.Context, stream, group string, opts XPendingOptions) ([]XPendingEntry, error)
	// XClaim is Engine.XClaim, awaited.
	XClaim(ctx context.Context, stream, group, consumer string, minIdle time.Duration, ids ...string) ([]XEntry, error)
	// XAutoClaim is Engine.XAutoClaim, awaited.
	XAutoClaim(ctx context.Context, stream, group, consumer string, minIdle time.Duration, start string, count int64) (XAutoClaimResult, error)
	// XInfoGroups is Engine.XInfoGroups, awaited.
	XInfoGroups(ctx context.Context, stream string) ([]XGroupInfo, error)
	// ScriptLoad is Engine.ScriptLoad, awaited.
	ScriptLoad(ctx context.Context, script string) (string, error)
	// ScanPage is Engine.ScanPage, awaited.
	ScanPage(ctx context.Context, cursor uint64, match string, count int64) (ScanPage, error)
	// WaitReplicas is Engine.WaitReplicas, awaited.
	WaitReplicas(ctx context.Context, key string, replicas int, timeout time.Duration) (int64, error)
	// SPublish is Engine.SPublish, awaited.
	SPublish(ctx context.Context, channel, message string) (int64, error)
	// Scan is Engine.Scan: an iterator over the keys matching match,
	// yielding ("", err) once and stopping when a page fails (ctx's end
	// included).
	Scan(ctx context.Context, match string, count int64) iter.Seq2[string, error]
}

// Sync returns the synchronous Client of e. It allocates nothing: the
// Client is e itself seen through blocking methods, so closing either
// closes both.
func (e *Engine) Sync() Client { return (*syncClient)(e) }

// syncClient implements Client by awaiting the Engine's futures with the
// call's ctx.
type syncClient Engine

var _ Client = (*syncClient)(nil)

func (c *syncClient) e() *Engine { return (*Engine)(c) }

func (c *syncClient) Do(ctx context.Context, name string, args ...string) (Reply, error) {
	if _, ok := blockingKey(name, args); ok {
		return awaitBlocking(ctx, c.e().Do(ctx, name, args...))
	}
	return c.e().Do(ctx, name, args...).Await(ctx)
}

// awaitBlocking awaits f, the future of a blocking command fired with
// ctx, until it completes: the engine completes it as ctx ends, with the
// error that says whether the command may have run (a pop cut by its ctx
// fails with ErrOutcomeUnknown wrapping the ctx's error), where
// Await(ctx) could return first with the bare ctx error, which reads as
// "did not run" (qa-BA BA3: 52 of 100 pops lost that way).
func awaitBlocking[T any](ctx context.Context, f *futures.Future[T]) (T, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	return f.Await(context.WithoutCancel(ctx))
}

func (c *syncClient) Get(ctx context.Context, key string) (string, error) {
	return c.e().Get(ctx, key).Await(ctx)
}

func (c *syncClient) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	return c.e().Set(ctx, key, value, ttl).Err(ctx)
}

func (c *syncClient) SetNX(ctx context.Context, key, value string, ttl time.Duration) (bool, error) {
	return c.e().SetNX(ctx, key, value, ttl).Await(ctx)
}

func (c *syncClient) GetDel(ctx context.Context, key string) (string, error) {
	return c.e().GetDel(ctx, key).Await(ctx)
}

func (c *syncClient) MGet(ctx context.Context, keys ...string) ([]*string, error) {
	return c.e().MGet(ctx, keys...).Await(ctx)
}

func (c *syncClient) MSet(ctx context.Context, keyValues ...string) error {
	return c.e().MSet(ctx, keyValues...).Err(ctx)
}

func (c *syncClient) MSetNX(ctx context.Context, keyValues ...string) (bool, error) {
	return c.e().MSetNX(ctx, keyValues...).Await(ctx)
}

func (c *syncClient) Incr(ctx context.Context, key string) (int64, error) {
	return c.e().Incr(ctx, key).Await(ctx)
}

func (c *syncClient) IncrBy(ctx context.Context, key string, n int64) (int64, error) {
	return c.e().IncrBy(ctx, key, n).Await(ctx)
}

func (c *syncClient) Decr(ctx context.Context, key string) (int64, error) {
	return c.e().Decr(ctx, key).Await(ctx)
}

func (c *syncClient) Del(ctx context.Context, keys ...string) (int64, error) {
	return c.e().Del(ctx, keys...).Await(ctx)
}

func (c *syncClient) Exists(ctx context.Context, keys ...string) (int64, error) {
	return c.e().Exists(ctx, keys...).Await(ctx)
}

func (c *syncClient) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return c.e().Expire(ctx, key, ttl).Await(ctx)
}

func (c *syncClient) TTL(ctx context.Context, key string) (TTL, error) {
	return c.e().TTL(ctx, key).Await(ctx)
}

func (c *syncClient) HSet(ctx context.Context, key string, fieldValues ...string) (int64, error) {
	return c.e().HSet(ctx, key, fieldValues...).Await(ctx)
}

func (c *syncClient) HGet(ctx context.Context, key, field string) (string, error) {
	return c.e().HGet(ctx, key, field).Await(ctx)
}

func (c *syncClient) HGetAll(ctx context.Context, key string) (map[string]string, error) {
	return c.e().HGetAll(ctx, key).Await(ctx)
}

func (c *syncClient) HDel(ctx context.Context, key string, fields ...string) (int64, error) {
	return c.e().HDel(ctx, key, fields...).Await(ctx)
}

func (c *syncClient) LPush(ctx context.Context, key string, values ...string) (int64, error) {
	return c.e().LPush(ctx, key, values...).Await(ctx)
}

func (c *syncClient) RPush(ctx context.Context, key string, values ...string) (int64, error) {
	return c.e().RPush(ctx, key, values...).Await(ctx)
}

func (c *syncClient) LPop(ctx context.Context, key string) (string, error) {
	return c.e().LPop(ctx, key).Await(ctx)
}

func (c *syncClient) RPop(ctx context.Context, key string) (string, error) {
	return c.e().RPop(ctx, key).Await(ctx)
}

func (c *syncClient) LRange(ctx context.Context, key string, start, stop int64) ([]string, error) {
	return c.e().LRange(ctx, key, start, stop).Await(ctx)
}

func (c *syncClient) LTrim(ctx context.Context, key string, start, stop int64) error {
	return c.e().LTrim(ctx, key, start, stop).Err(ctx)
}

func (c *syncClient) LIndex(ctx context.Context, key string, index int64) (string, error) {
	return c.e().LIndex(ctx, key, index).Await(ctx)
}

func (c *syncClient) LMove(ctx context.Context, source, destination string, from, to ListSide) (string, error) {
	return c.e().LMove(ctx, source, destination, from, to).Await(ctx)
}

func (c *syncClient) BLMove(ctx context.Context, source, destination string, from, to ListSide, timeout time.Duration) (string, error) {
	return awaitBlocking(ctx, c.e().BLMove(ctx, source, destination, from, to, timeout))
}

func (c *syncClient) BLPop(ctx context.Context, timeout time.Duration, keys ...string) (KeyValue, error) {
	return awaitBlocking(ctx, c.e().BLPop(ctx, timeout, keys...))
}

func (c *syncClient) BRPop(ctx context.Context, timeout time.Duration, keys ...string) (KeyValue, error) {
	return awaitBlocking(ctx, c.e().BRPop(ctx, timeout, keys...))
}

func (c *syncClient) Eval(ctx context.Context, script string, keys []string, args ...string) (Reply, error) {
	return c.e().Eval(ctx, script, keys, args...).Await(ctx)
}

func (c *syncClient) EvalSha(ctx context.Context, sha1 string, keys []string, args ...string) (Reply, error) {
	return c.e().EvalSha(ctx, sha1, keys, args...).Await(ctx)
}

func (c *syncClient) RunScript(ctx context.Context, s *Script, keys []string, args ...string) (Reply, error) {
	return s.Run(ctx, c.e(), keys, args...).Await(ctx)
}

func (c *syncClient) EvalRO(ctx context.Context, script string, keys []string, args ...string) (Reply, error) {
	return c.e().EvalRO(ctx, script, keys, args...).Await(ctx)
}

func (c *syncClient) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...string) (Reply, error) {
	return c.e().EvalShaRO(ctx, sha1, keys, args...).Await(ctx)
}

func (c *syncClient) GetEx(ctx context.Context, key string, ttl time.Duration) (string, error) {
	return c.e().GetEx(ctx, key, ttl).Await(ctx)
}

func (c *syncClient) SetArgs(ctx context.Context, key, value string, o SetOptions) (SetResult, error) {
	return c.e().SetArgs(ctx, key, value, o).Await(ctx)
}

func (c *syncClient) SAdd(ctx context.Context, key string, members ...string) (int64, error) {
	return c.e().SAdd(ctx, key, members...).Await(ctx)
}

func (c *syncClient) SRem(ctx context.Context, key string, members ...string) (int64, error) {
	return c.e().SRem(ctx, key, members...).Await(ctx)
}

func (c *syncClient) SMembers(ctx context.Context, key string) ([]string, error) {
	return c.e().SMembers(ctx, key).Await(ctx)
}

func (c *syncClient) SIsMember(ctx context.Context, key, member string) (bool, error) {
	return c.e().SIsMember(ctx, key, member).Await(ctx)
}

func (c *syncClient) ZAdd(ctx context.Context, key string, members ...Z) (int64, error) {
	return c.e().ZAdd(ctx, key, members...).Await(ctx)
}

func (c *syncClient) ZRangeWithScores(ctx context.Context, key string, start, stop int64) ([]Z, error) {
	return c.e().ZRangeWithScores(ctx, key, start, stop).Await(ctx)
}

func (c *syncClient) ZScore(ctx context.Context, key, member string) (float64, error) {
	return c.e().ZScore(ctx, key, member).Await(ctx)
}

func (c *syncClient) Publish(ctx context.Context, channel, message string) (int64, error) {
	return c.e().Publish(ctx, channel, message).Await(ctx)
}

func (c *syncClient) Ping(ctx context.Context) error { return c.e().Ping(ctx) }

func (c *syncClient) IsHealthy(ctx context.Context) bool { return c.e().IsHealthy(ctx) }

func (c *syncClient) Close() error { return c.e().Close() }

func (c *syncClient) HExists(ctx context.Context, key, field string) (bool, error) {
	return c.e().HExists(ctx, key, field).Await(ctx)
}

func (c *syncClient) HIncrBy(ctx context.Context, key, field string, n int64) (int64, error) {
	return c.e().HIncrBy(ctx, key, field, n).Await(ctx)
}

func (c *syncClient) HKeys(ctx context.Context, key string) ([]string, error) {
	return c.e().HKeys(ctx, key).Await(ctx)
}

func (c *syncClient) HLen(ctx context.Context, key string) (int64, error) {
	return c.e().HLen(ctx, key).Await(ctx)
}

func (c *syncClient) HMGet(ctx context.Context, key string, fields ...string) ([]*string, error) {
	return c.e().HMGet(ctx, key, fields...).Await(ctx)
}

func (c *syncClient) HVals(ctx context.Context, key string) ([]string, error) {
	return c.e().HVals(ctx, key).Await(ctx)
}

func (c *syncClient) Append(ctx context.Context, key, value string) (int64, error) {
	return c.e().Append(ctx, key, value).Await(ctx)
}

func (c *syncClient) StrLen(ctx context.Context, key string) (int64, error) {
	return c.e().StrLen(ctx, key).Await(ctx)
}

func (c *syncClient) PExpire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return c.e().PExpire(ctx, key, ttl).Await(ctx)
}

func (c *syncClient) PTTL(ctx context.Context, key string) (TTL, error) {
	return c.e().PTTL(ctx, key).Await(ctx)
}

func (c *syncClient) Persist(ctx context.Context, key string) (bool, error) {
	return c.e().Persist(ctx, key).Await(ctx)
}

func (c *syncClient) Type(ctx context.Context, key string) (string, error) {
	return c.e().Type(ctx, key).Await(ctx)
}

func (c *syncClient) Rename(ctx context.Context, key, newKey string) error {
	return c.e().Rename(ctx, key, newKey).Err(ctx)
}

func (c *syncClient) Unlink(ctx context.Context, keys ...string) (int64, error) {
	return c.e().Unlink(ctx, keys...).Await(ctx)
}

func (c *syncClient) LLen(ctx context.Context, key string) (int64, error) {
	return c.e().LLen(ctx, key).Await(ctx)
}

func (c *syncClient) LRem(ctx context.Context, key string, count int64, value string) (int64, error) {
	return c.e().LRem(ctx, key, count, value).Await(ctx)
}

func (c *syncClient) SCard(ctx context.Context, key string) (int64, error) {
	return c.e().SCard(ctx, key).Await(ctx)
}

func (c *syncClient) ZCard(ctx context.Context, key string) (int64, error) {
	return c.e().ZCard(ctx, key).Await(ctx)
}

func (c *syncClient) ZIncrBy(ctx context.Context, key string, incr float64, member string) (float64, error) {
	return c.e().ZIncrBy(ctx, key, incr, member).Await(ctx)
}

func (c *syncClient) ZRank(ctx context.Context, key, member string) (int64, error) {
	return c.e().ZRank(ctx, key, member).Await(ctx)
}

func (c *syncClient) ZRem(ctx context.Context, key string, members ...string) (int64, error) {
	return c.e().ZRem(ctx, key, members...).Await(ctx)
}

func (c *syncClient) ZRange(ctx context.Context, key string, start, stop int64) ([]string, error) {
	return c.e().ZRange(ctx, key, start, stop).Await(ctx)
}

func (c *syncClient) XAdd(ctx context.Context, stream string, fieldValues ...string) (string, error) {
	return c.e().XAdd(ctx, stream, fieldValues...).Await(ctx)
}

func (c *syncClient) XRead(ctx context.Context, count int64, streams map[string]string) (map[string][]XEntry, error) {
	return c.e().XRead(ctx, count, streams).Await(ctx)
}

func (c *syncClient) XLen(ctx context.Context, stream string) (int64, error) {
	return c.e().XLen(ctx, stream).Await(ctx)
}

func (c *syncClient) XRange(ctx context.Context, stream, start, end string, count int64) ([]XEntry, error) {
	return c.e().XRange(ctx, stream, start, end, count).Await(ctx)
}

func (c *syncClient) XDel(ctx context.Context, stream string, ids ...string) (int64, error) {
	return c.e().XDel(ctx, stream, ids...).Await(ctx)
}

func (c *syncClient) XTrim(ctx context.Context, stream string, opts XTrimOptions) (int64, error) {
	return c.e().XTrim(ctx, stream, opts).Await(ctx)
}

func (c *syncClient) IncrByFloat(ctx context.Context, key string, incr float64) (float64, error) {
	return c.e().IncrByFloat(ctx, key, incr).Await(ctx)
}

func (c *syncClient) HIncrByFloat(ctx context.Context, key, field string, incr float64) (float64, error) {
	return c.e().HIncrByFloat(ctx, key, field, incr).Await(ctx)
}

func (c *syncClient) HSetMap(ctx context.Context, key string, m map[string]string) (int64, error) {
	return c.e().HSetMap(ctx, key, m).Await(ctx)
}

func (c *syncClient) HSetNX(ctx context.Context, key, field, value string) (bool, error) {
	return c.e().HSetNX(ctx, key, field, value).Await(ctx)
}

func (c *syncClient) ZCount(ctx context.Context, key, min, max string) (int64, error) {
	return c.e().ZCount(ctx, key, min, max).Await(ctx)
}

func (c *syncClient) ZRevRange(ctx context.Context, key string, start, stop int64) ([]string, error) {
	return c.e().ZRevRange(ctx, key, start, stop).Await(ctx)
}

func (c *syncClient) ZRevRangeWithScores(ctx context.Context, key string, start, stop int64) ([]Z, error) {
	return c.e().ZRevRangeWithScores(ctx, key, start, stop).Await(ctx)
}

func (c *syncClient) ZRevRank(ctx context.Context, key, member string) (int64, error) {
	return c.e().ZRevRank(ctx, key, member).Await(ctx)
}

func (c *syncClient) ZRangeArgs(ctx context.Context, a ZRangeArgs) ([]string, error) {
	return c.e().ZRangeArgs(ctx, a).Await(ctx)
}

func (c *syncClient) ZRangeArgsWithScores(ctx context.Context, a ZRangeArgs) ([]Z, error) {
	return c.e().ZRangeArgsWithScores(ctx, a).Await(ctx)
}

func (c *syncClient) XRevRange(ctx context.Context, stream, end, start string, count int64) ([]XEntry, error) {
	return c.e().XRevRange(ctx, stream, end, start, count).Await(ctx)
}

func (c *syncClient) XAddWith(ctx context.Context, stream string, opts XAddOptions, fieldValues ...string) (string, error) {
	return c.e().XAddWith(ctx, stream, opts, fieldValues...).Await(ctx)
}

func (c *syncClient) XReadGroup(ctx context.Context, group, consumer string, count int64, streams map[string]string) (map[string][]XEntry, error) {
	return c.e().XReadGroup(ctx, group, consumer, count, streams).Await(ctx)
}

func (c *syncClient) XAck(ctx context.Context, stream, group string, ids ...string) (int64, error) {
	return c.e().XAck(ctx, stream, group, ids...).Await(ctx)
}

func (c *syncClient) XGroupCreate(ctx context.Context, stream, group, start string, mkStream bool) error {
	return c.e().XGroupCreate(ctx, stream, group, start, mkStream).Err(ctx)
}

func (c *syncClient) XGroupDestroy(ctx context.Context, stream, group string) (bool, error) {
	return c.e().XGroupDestroy(ctx, stream, group).Await(ctx)
}

func (c *syncClient) XPending(ctx context.Context, stream, group string) (XPendingSummary, error) {
	return c.e().XPending(ctx, stream, group).Await(ctx)
}

func (c *syncClient) XPendingExt(ctx context.Context, stream, group string, opts XPendingOptions) ([]XPendingEntry, error) {
	return c.e().XPendingExt(ctx, stream, group, opts).Await(ctx)
}

func (c *syncClient) XClaim(ctx context.Context, stream, group, consumer string, minIdle time.Duration, ids ...string) ([]XEntry, error) {
	return c.e().XClaim(ctx, stream, group, consumer, minIdle, ids...).Await(ctx)
}

func (c *syncClient) XAutoClaim(ctx context.Context, stream, group, consumer string, minIdle time.Duration, start string, count int64) (XAutoClaimResult, error) {
	return c.e().XAutoClaim(ctx, stream, group, consumer, minIdle, start, count).Await(ctx)
}

func (c *syncClient) XInfoGroups(ctx context.Context, stream string) ([]XGroupInfo, error) {
	return c.e().XInfoGroups(ctx, stream).Await(ctx)
}

func (c *syncClient) ScriptLoad(ctx context.Context, script string) (string, error) {
	return c.e().ScriptLoad(ctx, script).Await(ctx)
}

func (c *syncClient) ScanPage(ctx context.Context, cursor uint64, match string, count int64) (ScanPage, error) {
	return c.e().ScanPage(ctx, cursor, match, count).Await(ctx)
}

func (c *syncClient) WaitReplicas(ctx context.Context, key string, replicas int, timeout time.Duration) (int64, error) {
	return c.e().WaitReplicas(ctx, key, replicas, timeout).Await(ctx)
}

func (c *syncClient) SPublish(ctx context.Context, channel, message string) (int64, error) {
	return c.e().SPublish(ctx, channel, message).Await(ctx)
}

func (c *syncClient) Scan(ctx context.Context, match string, count int64) iter.Seq2[string, error] {
	return c.e().Scan(ctx, match, count)
}
