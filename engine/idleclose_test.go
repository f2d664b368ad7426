package engine_test

import (
	"testing"
	"time"
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
