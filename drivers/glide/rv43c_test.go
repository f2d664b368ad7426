package glide_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// rv43c: with the glide driver, does the consumer's Close end its blocked
// read with CLIENT UNBLOCK (the blocking-flagged CLIENT ID probe landing on
// the read's client), i.e. promptly and with nothing delivered to the dead
// read after Close?
func TestRV43CGlideConsumeCloseUnblocks(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := glideEngine(t, srv)
	bg := context.Background()
	blocked := func(n string) bool {
		info, err := srv.Do("INFO", "clients")
		s, _ := info.(string)
		return err == nil && strings.Contains(s, "blocked_clients:"+n+"\r")
	}
	for i := range 5 {
		deadline := time.Now().Add(5 * time.Second)
		for !blocked("0") && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		c, err := eng.Consume(bg, "s", "g", "c", func(context.Context, engine.XEntry) error { return nil },
			engine.ConsumeOptions{Block: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		deadline = time.Now().Add(5 * time.Second)
		for !blocked("1") {
			if time.Now().After(deadline) {
				t.Fatal("the read did not block")
			}
			time.Sleep(5 * time.Millisecond)
		}
		start := time.Now()
		_ = c.Close()
		took := time.Since(start)
		id, err := eng.Do(bg, "XADD", "s", "*", "round", "x").Await(bg)
		if err != nil {
			t.Fatal(err)
		}
		pend, err := srv.Do("XPENDING", "s", "g")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: Close took %v; XPENDING after XADD %v: %v", i, took, id, pend)
		if took >= 200*time.Millisecond {
			t.Errorf("round %d: Close took %v: CLIENT UNBLOCK did not end the read (fallback after unblockWait)", i, took)
		}
		if _, err := srv.Do("XGROUP", "SETID", "s", "g", "$"); err != nil {
			t.Fatal(err)
		}
	}
}
