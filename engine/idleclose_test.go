package engine_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/futures"
)

// TestIdleConnectionClosedByServer: a connection the server closed while
// it was idle (CLIENT KILL, a restart) is found out before the next
// pipeline is written to it, so a write that never reached the server is
// sent again on a new connection rather than failed as possibly run
// (ErrOutcomeUnknown).
func TestIdleConnectionClosedByServer(t *testing.T) {
	srv, eng := faultEngine(t)
	ctx := ctxT(t)
	// The pause is the scenario (an idle connection), not a wait for
	// something: long enough for the server's FIN to arrive, shorter than
	// valkey-go's keep-alive PING (1 s), which would find it out itself.
	const idle = 100 * time.Millisecond
	want := int64(0)
	incr := func(what string) {
		t.Helper()
		want++
		n, err := eng.Incr(ctx, "ctr").Await(ctx)
		if err != nil {
			t.Fatalf("INCR after %s: %v", what, err)
		}
		if n != want {
			t.Fatalf("INCR after %s: %d, want %d", what, n, want)
		}
	}
	incr("start")
	for i := range 3 {
		if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle)
		incr("CLIENT KILL " + string(rune('1'+i)))
	}
	// A restart loses the counter (no persistence): start again from 0.
	for i := range 2 {
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle)
		want = 0
		incr("restart " + string(rune('1'+i)))
	}
	if st := eng.Stats(); st.OutcomeUnknown != 0 {
		t.Fatalf("Stats.OutcomeUnknown = %d, want 0", st.OutcomeUnknown)
	}
}

// TestIdleCloseBigPipelineResent: a whole pipeline of 1,000 SETs written
// to a connection the server closed while idle was never sent: every one
// goes out again on the new connection, none fails. Its resend spends no
// retry budget (burst 100), which bounds resends of commands that reached
// the server.
func TestIdleCloseBigPipelineResent(t *testing.T) {
	srv, eng := faultEngine(t)
	ctx := ctxT(t)
	for round := range 3 {
		if err := eng.Set(ctx, "warm", "x", 0).Err(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // an idle connection: the scenario (see above)
		fs := make([]*futures.Future[struct{}], 1000)
		for i := range fs {
			fs[i] = eng.Set(ctx, "k"+strconv.Itoa(i), strconv.Itoa(round), 0)
		}
		failed := 0
		var first error
		for _, f := range fs {
			if err := f.Err(ctx); err != nil {
				if failed++; first == nil {
					first = err
				}
			}
		}
		if failed > 0 {
			t.Fatalf("round %d: %d of 1000 SETs failed after the server closed the idle connection; first: %v", round, failed, first)
		}
		if v, err := eng.Get(ctx, "k999").Await(ctx); err != nil || v != strconv.Itoa(round) {
			t.Fatalf("round %d: k999 %q, %v", round, v, err)
		}
	}
}

// TestBlockingCutOutcomeUnknown: a blocking command whose connection is
// lost while the server holds it (CLIENT KILL, a restart, a sentinel
// switch) was written, and the server may have popped an item for it: it
// fails with ErrOutcomeUnknown wrapping the transport error, as every
// other command does (before: the driver's bare "EOF").
func TestBlockingCutOutcomeUnknown(t *testing.T) {
	srv, eng := faultEngine(t)
	ctx := ctxT(t)
	pop := blockedPop(t, ctx, eng, srv, "q")
	// Kill the blocked connection only: killing the connection actor's
	// too would make the SET below meet the window documented for a
	// connection closed less than 10 ms before a write.
	list, err := srv.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := list.(string)
	id := ""
	for line := range strings.Lines(text) {
		if strings.Contains(line, " cmd=blpop") {
			id, _, _ = strings.Cut(strings.TrimPrefix(line, "id="), " ")
		}
	}
	if id == "" {
		t.Fatalf("no client blocked in BLPOP in CLIENT LIST:\n%s", text)
	}
	if _, err := srv.Do("CLIENT", "KILL", "ID", id); err != nil {
		t.Fatal(err)
	}
	_, err = pop.Await(ctx)
	if !errors.Is(err, engine.ErrOutcomeUnknown) {
		t.Fatalf("BLPOP cut by CLIENT KILL: %v, want ErrOutcomeUnknown", err)
	}
	// The engine serves on.
	if err := eng.Set(ctx, "k", "v", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
}
