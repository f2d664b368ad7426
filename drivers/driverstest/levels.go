package driverstest

import (
	"context"
	"testing"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

// A level is a way to send commands on a Conn: its neutral Exec, or the
// fast path the engine uses (drivers.Fast). Every pipeline check runs on
// both.
type level struct {
	name string
	bind func(t *testing.T, c drivers.Conn) execer
}

// execer sends a pipeline and returns its results in the neutral form.
type execer interface {
	exec(ctx context.Context, cmds []drivers.Command) []drivers.Result
	// neutral is true for Exec: transport errors must then wrap the
	// drivers sentinels (ErrClosed after Close).
	neutral() bool
}

var levels = []level{
	{"Exec", func(_ *testing.T, c drivers.Conn) execer { return neutralExec{c} }},
	{"Fast", func(t *testing.T, c drivers.Conn) execer {
		t.Helper()
		f, err := drivers.Fast(c)
		if err != nil {
			t.Fatalf("drivers.Fast: %v", err)
		}
		return fastExec{f}
	}},
}

type neutralExec struct{ c drivers.Conn }

func (n neutralExec) exec(ctx context.Context, cmds []drivers.Command) []drivers.Result {
	out := make([]drivers.Result, len(cmds))
	n.c.Exec(ctx, cmds, out)
	return out
}

func (neutralExec) neutral() bool { return true }

type fastExec struct{ f drivers.ValkeyConn }

func (x fastExec) exec(ctx context.Context, cmds []drivers.Command) []drivers.Result {
	b := x.f.B()
	vc := make([]valkey.Completed, len(cmds))
	for i, c := range cmds {
		a := b.Arbitrary(c.Args...)
		if c.Flags&drivers.Blocking != 0 {
			vc[i] = a.Blocking()
		} else {
			vc[i] = a.Build()
		}
	}
	var rs []valkey.ValkeyResult
	if len(vc) == 1 {
		rs = []valkey.ValkeyResult{x.f.Do(ctx, vc[0])}
	} else {
		rs = x.f.DoMulti(ctx, vc...)
	}
	out := make([]drivers.Result, len(rs))
	for i, r := range rs {
		out[i] = drivers.FromValkey(r)
	}
	return out
}

func (fastExec) neutral() bool { return false }

// plain makes ordinary commands of argument lists.
func plain(cmds ...[]string) []drivers.Command {
	out := make([]drivers.Command, len(cmds))
	for i, a := range cmds {
		out[i] = drivers.Command{Args: a}
	}
	return out
}

// do sends cmds on x and fails the test on a transport error.
func do(t *testing.T, ctx context.Context, x execer, cmds ...[]string) []drivers.Result {
	t.Helper()
	rs := x.exec(ctx, plain(cmds...))
	if len(rs) != len(cmds) {
		t.Fatalf("%d results for %d commands", len(rs), len(cmds))
	}
	for i, r := range rs {
		if r.Err != nil {
			t.Fatalf("%q: transport error %v", cmds[i], r.Err)
		}
	}
	return rs
}
