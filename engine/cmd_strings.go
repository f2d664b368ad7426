package engine

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/futures"
)

// KeepTTL as a ttl argument keeps the key's current time to live (SET ...
// KEEPTTL).
const KeepTTL time.Duration = -1

// Do sends any command: name and its arguments, as the server expects them
// (for example Do(ctx, "HSET", "h", "f", "v")). Error replies fail the
// future with *ServerError; a nil reply completes it with a Reply whose
// IsNil is true.
//
// Do routes a command by its keys, found as the server finds them: by the
// key specs of the server's command table (COMMAND, read once when the
// engine starts, in cluster mode or with PoolSize > 1), so EVAL's keys
// after numkeys, XREAD's after STREAMS, OBJECT ENCODING's key and so on
// route it. In cluster mode it goes to the node serving its keys' slot; a
// command whose keys hash to different slots fails with ErrCrossSlot,
// unsent. Otherwise its first key picks the connection actor, so it keeps
// its order with the other commands for that key (see the package doc,
// Order). A command without keys goes to any live primary in cluster
// mode. A command the table does not know (or when the server refused
// COMMAND) is routed by its first argument.
//
// Blocking commands (BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP, and XREAD/XREADGROUP with BLOCK) do not go through the
// pipelined connection actors, where they would hold up every command
// behind them: each runs on a dedicated connection of the driver's until
// the server answers, its ctx ends or the engine closes, or, with a
// finite timeout, until that timeout and the read bound (the larger of
// Config.ReadTimeout and WriteTimeout) passed without a reply: a server
// that froze or vanished while it blocked; the command then fails with
// ErrOutcomeUnknown. A timeout of 0 (forever) is bounded by its ctx
// only: give such a call a ctx that ends. One that Close
// cuts fails with ErrOutcomeUnknown (not ErrClosed: a BRPOP or BLMOVE
// cut as it was answered may have popped its item), one that Close
// finds not yet sent with ErrClosed; a worker loop stops on either (or
// on its own ctx). One whose ctx ends first fails with the ctx's error,
// except a pop (BLPOP, BRPOP, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP) and an
// XREADGROUP with NOACK: the server may have popped an element (read and
// acknowledged entries) for it as the ctx ended, lost with the reply, so
// it fails with ErrOutcomeUnknown wrapping the ctx's error (counted in
// Stats.OutcomeUnknown); give such a command a timeout shorter than its
// ctx (the typed BLPop, BRPop and BLMove do), or move elements with
// BLMOVE (read without NOACK) instead. They are routed by their first
// key. The valkey-go
// driver keeps these connections in a pool of its own per node: opened
// as concurrent blocking calls need them, at most 1,024 (a call past
// that waits for one to come free), and kept open until Close (not in
// Stats.DedicatedConns).
//
// WAIT and WAITAOF wait for the writes of the connection they run on, so
// they stay on the pipelined connection, and hold up its other callers
// while the server waits (as Engine.WaitReplicas does). Do refuses one
// whose timeout is 0 (forever) or not below Config.ReadTimeout with
// ErrInvalidArgument, sending nothing: the connection's read would time
// out, which closes it and fails every command in flight on it. A WAIT
// for 0 replicas (WAITAOF 0 0), which the server answers at once, runs.
//
// Commands that change the state of the connection they run on (MULTI,
// EXEC, WATCH, SELECT, AUTH, HELLO, RESET, CLIENT REPLY, CLIENT TRACKING,
// CLIENT SETNAME, the SUBSCRIBE family, MONITOR, QUIT, READONLY, ASKING,
// ...; see docs/pipelines-transactions.md, "What not to send through
// Do") fail at once with a *ConnectionStateError (ErrConnectionState,
// ErrInvalidArgument) that
// names what to use instead: the connections are shared with every other
// caller. Run them with Dedicated.
func (e *Engine) Do(ctx context.Context, name string, args ...string) *futures.Future[Reply] {
	if e.closed.Load() {
		return fail[Reply](ErrClosed) // before the arguments' checks: a cross-slot EVAL after Close said ErrCrossSlot
	}
	if name == "" {
		return fail[Reply](fmt.Errorf("%w: Do needs a command name", ErrInvalidArgument))
	}
	if err := checkShared(name, args); err != nil {
		return fail[Reply](err)
	}
	if err := e.checkWait(name, args); err != nil {
		return fail[Reply](err)
	}
	if len(args) == 0 {
		return submitKeyless(e, ctx, e.b.Arbitrary(name).Build(), decodeReply)
	}
	if key, ok := blockingKey(name, args); ok {
		return e.doBlocking(ctx, key, name, args)
	}
	var buf [8]int
	pos := e.doKeys(buf[:0], name, args)
	cmd, route, err := e.buildDo(name, args, pos)
	if err != nil {
		return fail[Reply](err)
	}
	if len(pos) == 0 {
		if e.cl != nil && strings.EqualFold(name, "PUBLISH") {
			return submitSlot(e, ctx, e.slotOf(args[0]), cmd, decodeReply) // as Publish
		}
		return submitKeyless(e, ctx, cmd, decodeReply)
	}
	return submit(e, ctx, route, cmd, decodeReply)
}

// Get returns the value of key; the future fails with ErrNil when the key
// does not exist.
func (e *Engine) Get(ctx context.Context, key string) *futures.Future[string] {
	return submit(e, ctx, key, e.b.Get().Key(key).Build(), decodeString)
}

// ttlArgs returns the SET expiry arguments for ttl: none for 0, KEEPTTL for
// KeepTTL, EX for whole seconds, PX otherwise.
func ttlArgs(ttl time.Duration) ([]string, error) {
	switch {
	case ttl == 0:
		return nil, nil
	case ttl == KeepTTL:
		return []string{"KEEPTTL"}, nil
	case ttl < 0:
		return nil, fmt.Errorf("%w: negative ttl %s (use 0 for none or KeepTTL)", ErrInvalidArgument, ttl)
	case ttl%time.Second == 0:
		return []string{"EX", strconv.FormatInt(int64(ttl/time.Second), 10)}, nil
	default:
		return []string{"PX", strconv.FormatInt(max(int64(ttl/time.Millisecond), 1), 10)}, nil
	}
}

// Set sets key to value with a time to live: 0 for none, KeepTTL to keep
// the current one. A ttl below one millisecond is rounded up to 1 ms.
func (e *Engine) Set(ctx context.Context, key, value string, ttl time.Duration) *futures.Future[struct{}] {
	if ttl == 0 {
		return submit(e, ctx, key, e.b.Set().Key(key).Value(value).Build(), decodeOK)
	}
	ex, err := ttlArgs(ttl)
	if err != nil {
		return fail[struct{}](err)
	}
	return submit(e, ctx, key, e.b.Arbitrary("SET").Keys(key).Args(value).Args(ex...).Build(), decodeOK)
}

// SetOptions are the options of SetArgs.
type SetOptions struct {
	// TTL as for Set: 0 none, KeepTTL keep, else EX/PX.
	TTL time.Duration
	// NX sets only when the key does not exist; XX only when it does.
	NX, XX bool
	// Get returns the previous value (SET ... GET).
	Get bool
}

// SetResult is the outcome of SetArgs.
type SetResult struct {
	// Written is false when NX or XX prevented the write.
	Written bool
	// Old and OldExists hold the previous value when SetOptions.Get was set.
	Old       string
	OldExists bool
}

// SetArgs runs SET with options.
func (e *Engine) SetArgs(ctx context.Context, key, value string, o SetOptions) *futures.Future[SetResult] {
	cmd, decode, err := setArgsCmd(e.b, key, value, o)
	if err != nil {
		return fail[SetResult](err)
	}
	return submit(e, ctx, key, cmd, decode)
}

// setArgsCmd builds SetArgs's command and its reply's decoder (shared with
// Pipeline and Tx).
func setArgsCmd(b valkey.Builder, key, value string, o SetOptions) (valkey.Completed, func(valkey.ValkeyResult) (SetResult, error), error) {
	if o.NX && o.XX {
		return valkey.Completed{}, nil, fmt.Errorf("%w: SET with both NX and XX", ErrInvalidArgument)
	}
	ex, err := ttlArgs(o.TTL)
	if err != nil {
		return valkey.Completed{}, nil, err
	}
	args := make([]string, 0, 5)
	args = append(args, value)
	switch {
	case o.NX:
		args = append(args, "NX")
	case o.XX:
		args = append(args, "XX")
	}
	if o.Get {
		args = append(args, "GET")
	}
	args = append(args, ex...)
	cmd := b.Arbitrary("SET").Keys(key).Args(args...).Build()
	if !o.Get {
		return cmd, func(res valkey.ValkeyResult) (SetResult, error) {
			err := res.Error()
			if valkey.IsValkeyNil(err) {
				return SetResult{}, nil
			}
			return SetResult{Written: err == nil}, err
		}, nil
	}
	cond := o.NX || o.XX
	return cmd, func(res valkey.ValkeyResult) (SetResult, error) {
		old, err := res.ToString()
		if valkey.IsValkeyNil(err) {
			// No previous value. With NX that means the write happened; with
			// XX it means it did not.
			return SetResult{Written: !cond || o.NX}, nil
		}
		if err != nil {
			return SetResult{}, typed(&res, err)
		}
		// A previous value existed: XX (or no condition) wrote, NX did not.
		return SetResult{Written: !o.NX, Old: old, OldExists: true}, nil
	}, nil
}

// SetNX sets key only if it does not exist and reports whether it did.
func (e *Engine) SetNX(ctx context.Context, key, value string, ttl time.Duration) *futures.Future[bool] {
	if ttl == 0 {
		return submit(e, ctx, key, e.b.Setnx().Key(key).Value(value).Build(), decodeIntBool)
	}
	// SET NX with the expiry, decoded by its own request (as Pipeline's
	// SetNX): a conversion chained on SetArgs's future (futures.Then)
	// would complete it on the futures callback goroutines, behind the
	// callbacks queued before it, and possibly after Close has returned.
	ex, err := ttlArgs(ttl)
	if err != nil {
		return fail[bool](err)
	}
	return submit(e, ctx, key, e.b.Arbitrary("SET").Keys(key).Args(value, "NX").Args(ex...).Build(), decodeSetNX)
}

// GetDel returns the value of key and deletes it; ErrNil when missing.
func (e *Engine) GetDel(ctx context.Context, key string) *futures.Future[string] {
	return submit(e, ctx, key, e.b.Getdel().Key(key).Build(), decodeString)
}

// GetEx returns the value of key and sets its time to live: ttl > 0 sets
// it, 0 leaves it unchanged; a negative ttl, KeepTTL included, fails with
// ErrInvalidArgument (use Persist to remove the time to live). ErrNil when
// missing.
func (e *Engine) GetEx(ctx context.Context, key string, ttl time.Duration) *futures.Future[string] {
	cmd, err := getExCmd(e.b, key, ttl)
	if err != nil {
		return fail[string](err)
	}
	return submit(e, ctx, key, cmd, decodeString)
}

// getExCmd builds GetEx's command (shared with Pipeline and Tx).
func getExCmd(b valkey.Builder, key string, ttl time.Duration) (valkey.Completed, error) {
	switch {
	case ttl == 0:
		return b.Getex().Key(key).Build(), nil
	case ttl == KeepTTL:
		return valkey.Completed{}, fmt.Errorf("%w: GETEX does not take KeepTTL (0 leaves the time to live unchanged)", ErrInvalidArgument)
	case ttl < 0:
		return valkey.Completed{}, fmt.Errorf("%w: GETEX with negative ttl %s", ErrInvalidArgument, ttl)
	}
	ex, _ := ttlArgs(ttl)
	return b.Arbitrary("GETEX").Keys(key).Args(ex...).Build(), nil
}

// MGet returns the values of keys in order; a missing key is a nil entry.
func (e *Engine) MGet(ctx context.Context, keys ...string) *futures.Future[[]*string] {
	if len(keys) == 0 {
		return fail[[]*string](fmt.Errorf("%w: MGET needs at least one key", ErrInvalidArgument))
	}
	if g := e.bySlot(keys); g != nil {
		return e.splitMGet(ctx, keys, g)
	}
	return submit(e, ctx, keys[0], e.b.Mget().Key(keys...).Build(), decodeNullableStrings)
}

// MSet sets key/value pairs given as alternating arguments.
func (e *Engine) MSet(ctx context.Context, keyValues ...string) *futures.Future[struct{}] {
	if len(keyValues) == 0 || len(keyValues)%2 != 0 {
		return fail[struct{}](fmt.Errorf("%w: MSET needs key/value pairs, got %d arguments", ErrInvalidArgument, len(keyValues)))
	}
	if f, ok := e.splitMSet(ctx, keyValues); ok {
		return f
	}
	kv := e.b.Mset().KeyValue()
	for i := 0; i < len(keyValues); i += 2 {
		kv = kv.KeyValue(keyValues[i], keyValues[i+1])
	}
	return submit(e, ctx, keyValues[0], kv.Build(), decodeOK)
}

// MSetNX sets key/value pairs given as alternating arguments, all or
// none: none when any of the keys exists (MSETNX). Its future reports
// whether they were set. In cluster mode the keys must share a hash slot
// (ErrCrossSlot otherwise, refused unsent: MSETNX is atomic, so it is not
// split per slot as MSet is; use a hash tag).
func (e *Engine) MSetNX(ctx context.Context, keyValues ...string) *futures.Future[bool] {
	cmd, err := e.msetNXCmd(e.b, keyValues)
	if err != nil {
		return fail[bool](err)
	}
	return submit(e, ctx, keyValues[0], cmd, decodeBool)
}

// msetNXCmd builds MSETNX, refusing a closed engine, odd or no arguments
// and, in cluster mode, keys of more than one slot.
func (e *Engine) msetNXCmd(b valkey.Builder, keyValues []string) (valkey.Completed, error) {
	if e.closed.Load() {
		return valkey.Completed{}, ErrClosed
	}
	if len(keyValues) == 0 || len(keyValues)%2 != 0 {
		return valkey.Completed{}, fmt.Errorf("%w: MSETNX needs key/value pairs, got %d arguments", ErrInvalidArgument, len(keyValues))
	}
	keys := make([]string, len(keyValues)/2)
	kv := b.Msetnx().KeyValue()
	for i := range keys {
		keys[i] = keyValues[2*i]
		kv = kv.KeyValue(keyValues[2*i], keyValues[2*i+1])
	}
	if err := e.oneSlot("MSETNX", keys...); err != nil {
		return valkey.Completed{}, err
	}
	return kv.Build(), nil
}

// Incr increments the integer at key by one and returns the new value.
func (e *Engine) Incr(ctx context.Context, key string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Incr().Key(key).Build(), decodeInt64)
}

// IncrBy increments the integer at key by n and returns the new value.
func (e *Engine) IncrBy(ctx context.Context, key string, n int64) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Incrby().Key(key).Increment(n).Build(), decodeInt64)
}

// IncrByFloat adds incr to the number at key (0 when missing) and returns
// the new value. A NaN or infinite incr fails with ErrInvalidArgument.
// The server computes in long double: a result beyond float64's range is
// stored as such and reads as +Inf or -Inf (the increment ran).
//
// The server stores the sum as text rounded to 17 digits after the
// decimal point (its "%.17Lf", measured on Redis 7.0), and the future holds
// the float64 nearest to that text: an increment below 5e-18 on 0 adds
// nothing (IncrByFloat(ctx, k, 1e-18) stores and returns 0), each call
// rounds the value it finds ("0.000000000000000001" plus 0 is "0"), and
// a stored value float64 cannot hold reads as the nearest one
// ("9007199254740993" plus 0 returns 9007199254740992; Get reads the
// text). A sorted set's scores are float64s, not rounded so: ZIncrBy
// keeps an increment of 1e-20 (TestIncrByFloatRoundsTo17Decimals).
func (e *Engine) IncrByFloat(ctx context.Context, key string, incr float64) *futures.Future[float64] {
	if err := checkIncr("INCRBYFLOAT", incr); err != nil {
		return fail[float64](err)
	}
	return submit(e, ctx, key, e.b.Incrbyfloat().Key(key).Increment(incr).Build(), decodeFloat64)
}

// checkIncr refuses a NaN or infinite increment of INCRBYFLOAT or
// HINCRBYFLOAT, which the server would refuse.
func checkIncr(name string, incr float64) error {
	if math.IsNaN(incr) || math.IsInf(incr, 0) {
		return fmt.Errorf("%w: %s increment %v", ErrInvalidArgument, name, incr)
	}
	return nil
}

// Decr decrements the integer at key by one and returns the new value.
func (e *Engine) Decr(ctx context.Context, key string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Decr().Key(key).Build(), decodeInt64)
}

// Append appends value to the string at key and returns the new length.
func (e *Engine) Append(ctx context.Context, key, value string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Append().Key(key).Value(value).Build(), decodeInt64)
}

// StrLen returns the length of the string at key (0 when missing).
func (e *Engine) StrLen(ctx context.Context, key string) *futures.Future[int64] {
	return submit(e, ctx, key, e.b.Strlen().Key(key).Build(), decodeInt64)
}
