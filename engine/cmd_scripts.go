package engine

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/vactor-io/vactor/futures"
)

// Lua scripts: EVAL, EVALSHA and their read-only forms, and Script, which
// sends a script by its digest and the script itself only when the server
// has not got it (NOSCRIPT). Each goes through Do, so it is routed by its
// keys (all of one hash slot in cluster mode: ErrCrossSlot otherwise,
// unsent) and the reply is a Reply: a Lua number is an integer, a table
// an array, nil and false a nil reply (IsNil), an error_reply a
// *ServerError with its prefix.

// evalArgs returns script (or its digest), numkeys, keys and args, in
// one slice.
func evalArgs(script string, keys, args []string) []string {
	a := make([]string, 0, 2+len(keys)+len(args))
	a = append(a, script, strconv.Itoa(len(keys)))
	a = append(a, keys...)
	return append(a, args...)
}

// Eval runs the Lua script on the server (EVAL script numkeys keys...
// args...): keys are the keys it touches (KEYS in the script), args the
// other arguments (ARGV). The script goes with every call; Script sends
// its digest instead.
func (e *Engine) Eval(ctx context.Context, script string, keys []string, args ...string) *futures.Future[Reply] {
	return e.Do(ctx, "EVAL", evalArgs(script, keys, args)...)
}

// EvalSha runs the script the server has cached under the SHA1 digest
// sha1 (EVALSHA; ScriptLoad caches one and returns its digest). A server
// without it fails the future with a *ServerError whose Prefix is
// NOSCRIPT; Script.Run then sends the script itself.
func (e *Engine) EvalSha(ctx context.Context, sha1 string, keys []string, args ...string) *futures.Future[Reply] {
	return e.Do(ctx, "EVALSHA", evalArgs(sha1, keys, args)...)
}

// EvalRO is Eval for a script that only reads (EVAL_RO, Redis 7 and
// Valkey): the server refuses one that writes.
func (e *Engine) EvalRO(ctx context.Context, script string, keys []string, args ...string) *futures.Future[Reply] {
	return e.Do(ctx, "EVAL_RO", evalArgs(script, keys, args)...)
}

// EvalShaRO is EvalSha for a script that only reads (EVALSHA_RO).
func (e *Engine) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...string) *futures.Future[Reply] {
	return e.Do(ctx, "EVALSHA_RO", evalArgs(sha1, keys, args)...)
}

// Script is a Lua script run by its digest: Run sends EVALSHA, and EVAL
// with the script only when the server answers NOSCRIPT (a server that
// never saw it, restarted, or a replica promoted since it was loaded),
// which also caches it there for the next call. Make one with NewScript
// (a zero Script is the empty script) and keep it: it is safe for
// concurrent use.
type Script struct {
	src, sha string
}

// NewScript returns the script src with its digest.
func NewScript(src string) *Script {
	sum := sha1.Sum([]byte(src))
	return &Script{src: src, sha: hex.EncodeToString(sum[:])}
}

// Hash returns the script's SHA1 digest, in hex, as EVALSHA takes it.
func (s *Script) Hash() string {
	if s.sha == "" {
		return NewScript(s.src).sha
	}
	return s.sha
}

// Source returns the script's text.
func (s *Script) Source() string { return s.src }

// Run runs the script on e with keys and args (see Eval): EVALSHA, then
// EVAL if the server has not got the script. A nil Script fails with
// ErrInvalidArgument.
func (s *Script) Run(ctx context.Context, e *Engine, keys []string, args ...string) *futures.Future[Reply] {
	return s.run(ctx, e, "EVALSHA", "EVAL", keys, args)
}

// RunRO is Run for a script that only reads: EVALSHA_RO, then EVAL_RO.
func (s *Script) RunRO(ctx context.Context, e *Engine, keys []string, args ...string) *futures.Future[Reply] {
	return s.run(ctx, e, "EVALSHA_RO", "EVAL_RO", keys, args)
}

func (s *Script) run(ctx context.Context, e *Engine, bySha, bySrc string, keys, args []string) *futures.Future[Reply] {
	if s == nil {
		return fail[Reply](fmt.Errorf("%w: Run of a nil *Script (use NewScript)", ErrInvalidArgument))
	}
	a := evalArgs(s.Hash(), keys, args)
	first := e.Do(ctx, bySha, a...)
	if _, err, ok := first.Result(); ok && !noScript(err) {
		return first
	}
	var p futures.Promise[Reply]
	first.OnComplete(func(v Reply, err error) {
		if !noScript(err) {
			p.Complete(v, err)
			return
		}
		a[0] = s.src
		e.Do(ctx, bySrc, a...).OnComplete(func(v Reply, err error) { p.Complete(v, err) })
	})
	return p.Future()
}

// noScript reports whether err is the server's NOSCRIPT error reply.
func noScript(err error) bool {
	var se *ServerError
	return err != nil && errors.As(err, &se) && se.Prefix == "NOSCRIPT"
}
