package engine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
)

// A command a Pipeline rejects when it is added (bad arguments: here a
// negative ttl and an odd MSET) is part of Exec's result: Exec returns
// its error (ErrInvalidArgument), in command order, and still sends the
// other commands. Exec returned nil, so a caller that checks only Exec's
// error, as the docs' example does, lost the write without a word.
func TestPipelineExecReportsRejectedCommand(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)

	p := eng.Pipeline()
	ok := p.Set("rej:a", "1", 0)
	bad := p.Set("rej:b", "2", -5*time.Second) // rejected: negative ttl
	p.MSet("rej:c")                            // rejected too, later
	after := p.Set("rej:d", "4", 0)
	err := p.Exec(ctx)
	if !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Exec = %v; want the rejected SET's ErrInvalidArgument", err)
	}
	if berr := bad.Err(ctx); !errors.Is(err, berr) {
		t.Fatalf("Exec = %v; want the first rejected command's error %v", err, berr)
	}
	if e := ok.Err(ctx); e != nil {
		t.Fatalf("the SET before the rejected one: %v", e)
	}
	if e := after.Err(ctx); e != nil {
		t.Fatalf("the SET after the rejected one: %v", e)
	}
	if n, e := eng.Exists(ctx, "rej:a", "rej:b", "rej:d").Await(ctx); e != nil || n != 2 {
		t.Fatalf("EXISTS = %d, %v; want 2 (rej:a and rej:d sent, rej:b not)", n, e)
	}

	// Only rejected commands: nothing is sent, Exec still says why.
	p = eng.Pipeline()
	p.HSet("rej:h", "f")
	if err := p.Exec(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Exec of a pipeline whose only command was rejected = %v; want ErrInvalidArgument", err)
	}

	// A transport-level failure earlier in command order comes first: the
	// engine closed, every command sent fails with ErrClosed.
	p = eng.Pipeline()
	p.Set("rej:e", "5", 0)
	p.Set("rej:f", "6", -time.Second)
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Exec after Close = %v; want ErrClosed (its first command's failure)", err)
	}
}
