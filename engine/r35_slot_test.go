package engine_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/futures"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestR35ClusterSlotDeadlineWhileAnotherWaitsForRoom (review-35 R35-4):
// cluster mode, Backpressure block (the default). A caller without a
// deadline whose command waits for room in the slot owner's full
// connection mailbox held the slot's routing lock inside Submit, and a
// second caller of that slot, with a 200 ms deadline, was stuck in
// eng.Incr itself (the mutex does not watch its ctx) until the first one
// got room: for the whole CLIENT PAUSE. It must return at its deadline,
// as in standalone mode, its command never written; the others run in
// the order they were issued once the node answers again.
func TestR35ClusterSlotDeadlineWhileAnotherWaitsForRoom(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	ctx := ctxT(t)
	eng := engineOn(t, config.DefaultConfig().WithAddrs(c.Addrs()...).WithClusterMode(true).
		WithMailboxCapacity(4))
	defer func() { _ = eng.Close() }()
	const k = "r35slot"
	if err := eng.Set(ctx, k, "0", 0).Err(ctx); err != nil {
		t.Fatal(err)
	}
	slot, err := c.KeySlot(k)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := c.NodeForSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	port := owner.Addr()[strings.LastIndex(owner.Addr(), ":")+1:]
	const pause = 2 * time.Second
	if out, err := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", port,
		"CLIENT", "PAUSE", "2000", "ALL").CombinedOutput(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v %s", err, out)
	}
	paused := time.Now()
	bg := context.Background()
	var incrs []*futures.Future[int64]
	incrs = append(incrs, eng.Incr(bg, k)) // in flight, held by the pause
	time.Sleep(50 * time.Millisecond)
	for range 4 {
		incrs = append(incrs, eng.Incr(bg, k)) // fill the mailbox (capacity 4)
	}
	waiter := make(chan *futures.Future[int64], 1)
	go func() { waiter <- eng.Incr(bg, k) }() // waits for room
	time.Sleep(100 * time.Millisecond)

	dctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	late := eng.Incr(dctx, k)
	call := time.Since(t0)
	_, err = late.Await(dctx)
	t.Logf("Incr with a 200 ms deadline: the call returned after %v, Await after %v: %v", call, time.Since(t0), err)
	if call > pause/2 {
		t.Errorf("eng.Incr with a 200 ms deadline blocked %v in the call itself (the slot held by another caller waiting for room)", call)
	} else if time.Since(paused) > pause-300*time.Millisecond {
		t.Fatalf("the pause was nearly over before the late Incr returned: the test proves nothing")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the late Incr: %v, want its deadline", err)
	}

	incrs = append(incrs, <-waiter)
	for i, f := range incrs {
		v, err := f.Await(ctx)
		if err != nil || v != int64(i+1) {
			t.Errorf("Incr %d = %d, %v; want %d (issue order)", i, v, err, i+1)
		}
	}
	if v, err := eng.Get(ctx, k).Await(ctx); err != nil || v != "6" {
		t.Errorf("GET after = %q, %v; want 6 (the late Incr never written)", v, err)
	}
}
