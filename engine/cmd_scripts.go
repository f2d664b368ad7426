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
// has not got it (NOSCRIPT). Each is routed by its keys (all of one hash
// slot in cluster mode: ErrCrossSlot otherwise, unsent) and its reply is
// a Reply, as Do's: a Lua number is an integer, a table
// an array, nil and false a nil reply (IsNil), an error_reply a
// *ServerError with its prefix.
//
// A script's own error reply reads on the wire as the server's: in
// cluster mode one whose text starts with MOVED, ASK, TRYAGAIN or
// CLUSTERDOWN is followed as a redirect, and the script runs again, up
// to Config.MaxRedirects times (a script that INCRs a key and then
// returns redis.error_reply('TRYAGAIN ...') ran 6 times with the
// defaults before the call failed with ErrTooManyRedirects; qa45 F6);
// in sentinel mode the same holds for READONLY and MASTERDOWN (see
// Config.MaxRedirects). Give a script's errors a code of its own.

// evalArgs returns script (or its digest), numkeys, keys and args, in
// one slice.
func evalArgs(script string, keys, args []string) []string {
	a := make([]string, 0, 2+len(keys)+len(args))
	a = append(a, script, strconv.Itoa(len(keys)))
	a = append(a, keys...)
	return append(a, args...)
}

// eval sends a (script or digest, numkeys, keys, args: evalArgs) routed
// by its nkeys keys as given, not by the server's command table, which a
// user denied COMMAND does not have (the script's text routed it then,
// and a cross-slot call was sent): all of one slot in cluster mode, else
// ErrCrossSlot, unsent.
func (e *Engine) eval(ctx context.Context, name string, a []string, nkeys int) *futures.Future[Reply] {
	if e.closed.Load() {
		return fail[Reply](ErrClosed)
	}
	pos := make([]int, nkeys)
	for i := range pos {
		pos[i] = 2 + i
	}
	cmd, route, err := e.buildDo(name, a, pos)
	if err != nil {
		return fail[Reply](err)
	}
	if route == "" {
		return submitKeyless(e, ctx, cmd, decodeReply)
	}
	return submit(e, ctx, route, cmd, decodeReply)
}

// Eval runs the Lua script on the server (EVAL script numkeys keys...
// args...): keys are the keys it touches (KEYS in the script), args the
// other arguments (ARGV). The script goes with every call; Script sends
// its digest instead.
func (e *Engine) Eval(ctx context.Context, script string, keys []string, args ...string) *futures.Future[Reply] {
	return e.eval(ctx, "EVAL", evalArgs(script, keys, args), len(keys))
}

// EvalSha runs the script the server has cached under the SHA1 digest
// sha1 (EVALSHA; ScriptLoad caches one and returns its digest). A server
// without it fails the future with a *ServerError whose Prefix is
// NOSCRIPT; Script.Run then sends the script itself.
func (e *Engine) EvalSha(ctx context.Context, sha1 string, keys []string, args ...string) *futures.Future[Reply] {
	return e.eval(ctx, "EVALSHA", evalArgs(sha1, keys, args), len(keys))
}

// EvalRO is Eval for a script that only reads (EVAL_RO, Redis 7 and
// Valkey): the server refuses one that writes.
func (e *Engine) EvalRO(ctx context.Context, script string, keys []string, args ...string) *futures.Future[Reply] {
	return e.eval(ctx, "EVAL_RO", evalArgs(script, keys, args), len(keys))
}

// EvalShaRO is EvalSha for a script that only reads (EVALSHA_RO).
func (e *Engine) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...string) *futures.Future[Reply] {
	return e.eval(ctx, "EVALSHA_RO", evalArgs(sha1, keys, args), len(keys))
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
	if e == nil || e.engineState == nil {
		return fail[Reply](fmt.Errorf("%w: Run on a nil *Engine", ErrInvalidArgument))
	}
	a := evalArgs(s.Hash(), keys, args)
	first := e.eval(ctx, bySha, a, len(keys))
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
		e.eval(ctx, bySrc, a, len(keys)).OnComplete(func(v Reply, err error) { p.Complete(v, err) })
	})
	return p.Future()
}

// noScript reports whether err is the server's NOSCRIPT error reply.
func noScript(err error) bool {
	var se *ServerError
	return err != nil && errors.As(err, &se) && se.Prefix == "NOSCRIPT"
}
