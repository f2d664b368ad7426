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

// A blocking command whose timeout in seconds is a zero written in hex
// ("0x0": forever, as the server reads it) is refused unsent by a
// Pipeline and a batch writer, as "0" is (qa-AW AW1: it was sent and held
// the shared connection until its read timed out).
func TestPipelineRefusesHexZeroTimeout(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	for _, timeout := range []string{"0", "0x0", "0X.0", "0xFFFFFFF", "-0.0005"} { // -0.0005: 0 ms, forever (review-34 R34-1)
		p := eng.Pipeline()
		pop := p.Do("BLPOP", "rej:hex", timeout)
		if err := p.Exec(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("Pipeline BLPOP with timeout %q: Exec = %v, want ErrInvalidArgument", timeout, err)
		}
		if err := pop.Err(ctx); !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("Pipeline BLPOP with timeout %q: %v, want ErrInvalidArgument", timeout, err)
		}
	}
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close(ctx) }()
	if err := w.Write(ctx, "BLPOP", "rej:hex", "0x0"); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Errorf("BatchWriter BLPOP 0x0: %v, want ErrInvalidArgument", err)
	}
}

// After Close, a Pipeline or a Tx of commands refused before they are
// recorded (Eval, Rename, LMove check their slots first) returns
// ErrClosed from Exec, as one of other commands does (review-34 R34-2:
// nil, with every future failed).
func TestPipelineOfCheckedCommandsAfterClose(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	for _, add := range []func(*engine.Pipeline){
		func(p *engine.Pipeline) { p.Eval("return 1", []string{"k"}) },
		func(p *engine.Pipeline) { p.Rename("a", "b") },
		func(p *engine.Pipeline) { p.LMove("a", "b", engine.Left, engine.Right) },
	} {
		p := eng.Pipeline()
		add(p)
		if err := p.Exec(ctx); !errors.Is(err, engine.ErrClosed) {
			t.Errorf("Pipeline.Exec after Close: %v, want ErrClosed", err)
		}
	}
	tx := eng.Tx()
	tx.EvalSha("0123", []string{"k"})
	if err := tx.Exec(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Tx.Exec after Close: %v, want ErrClosed", err)
	}
}
