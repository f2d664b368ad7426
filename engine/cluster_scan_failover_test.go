package engine_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// A primary is killed and its replica promoted while Scan runs in a loop
// and PUBLISH goes to a channel another primary serves.
//
// Scan: once the nodes had marked the primary failed, the slot map the
// engine read left its shard out (no online primary) and Scan walked the
// other primaries: a third of the keys missing and no error, and that
// until the periodic reload 10 s later, since the 250 ms reloads watched
// only the primaries still in the map. Now every Scan yields all the keys
// or ends with an error (ErrNoSlotOwner while the shard has no primary),
// and the complete key set is back within 2 s of the promotion.
//
// PUBLISH went to the owner of slot 0 (the victim here), so every PUBLISH
// failed until the promotion, whatever the channel. It now goes to the
// owner of its channel's slot, which stays up (Publish, and Do("PUBLISH")
// in a Pipeline).
//
// Stats.NoSlotOwner counts the commands failed with ErrNoSlotOwner (in no
// counter before).
//
// IsHealthy and Ping: false and ErrCircuitOpen for ~38 s after the
// promotion (the dead node's connections were pinged until they were
// closed, 30 s after it left the map); healthy within 3 s now.
func TestClusterScanAndPublishAcrossFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t)
	eng := clusterEngine(t, c)
	ctx := ctxT(t)
	const n = 300
	p := eng.Pipeline()
	for i := range n {
		p.Set("sk:"+strconv.Itoa(i), "v", 0)
	}
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	victim, err := c.NodeForSlot(0)
	if err != nil {
		t.Fatal(err)
	}
	keys, owner := keysByOwner(t, c, 600)
	channel, lost := "", "" // a key of another primary, one of the victim's
	for _, k := range keys {
		if owner[k] != victim.Addr() && channel == "" {
			channel = k
		}
		if owner[k] == victim.Addr() && lost == "" {
			lost = k
		}
	}
	scan := func() (int, error) {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		seen := map[string]bool{}
		for k, err := range eng.Scan(sctx, "sk:*", 100) {
			if err != nil {
				return len(seen), err
			}
			seen[k] = true
		}
		return len(seen), nil
	}
	if got, err := scan(); got != n || err != nil {
		t.Fatalf("Scan before the failover: %d keys, %v", got, err)
	}

	if err := c.KillPrimary(victim); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	promoted := make(chan time.Time, 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var silent, noOwner, published, getNoOwner, getLate int
	var pubErrs []error
	stop := make(chan struct{})
	// repeat runs f every pause until stop.
	repeat := func(pause time.Duration, f func()) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				f()
				time.Sleep(pause)
			}
		})
	}
	repeat(20*time.Millisecond, func() {
		got, err := scan()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && got != n:
			silent++
			t.Errorf("+%v: Scan yielded %d of %d keys and no error", time.Since(start).Round(time.Millisecond), got, n)
		case errors.Is(err, engine.ErrNoSlotOwner):
			noOwner++
		}
	})
	repeat(20*time.Millisecond, func() {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := eng.Publish(pctx, channel, "x").Await(pctx)
		if err == nil { // and through a pipeline, routed the same way
			p := eng.Pipeline()
			f := p.Do("PUBLISH", channel, "y")
			if err = p.Exec(pctx); err == nil {
				_, err = f.Await(pctx)
			}
		}
		cancel()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			pubErrs = append(pubErrs, err)
		} else {
			published++
		}
	})
	repeat(10*time.Millisecond, func() { // GETs of the victim's key: ErrNoSlotOwner while no primary
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := eng.Get(gctx, lost).Await(gctx)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, engine.ErrNoSlotOwner):
			getNoOwner++
		case errors.Is(err, context.DeadlineExceeded):
			getLate++ // may be refused so after its caller gave up: counted, not seen
		}
	})
	go func() {
		if err := c.WaitFailover(victim, 30*time.Second); err != nil {
			t.Error(err)
		}
		promoted <- time.Now()
	}()
	at := <-promoted
	// The complete key set within 2 s of the promotion (the map is read
	// again every 250 ms while a shard has no primary).
	var got int
	for {
		got, err = scan()
		if err == nil && got == n {
			break
		}
		if time.Since(at) > 2*time.Second {
			t.Errorf("Scan %v after the promotion: %d keys, %v", time.Since(at).Round(time.Millisecond), got, err)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("complete again %v after the promotion (%v after the kill)", time.Since(at).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	// Healthy again as soon: the dead node, out of the map, is not pinged
	// (its connections stay 30 s; IsHealthy was false and Ping failed with
	// ErrCircuitOpen for about that long).
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		ok := eng.IsHealthy(hctx)
		perr := eng.Ping(hctx)
		cancel()
		if ok && perr == nil {
			t.Logf("healthy again %v after the promotion", time.Since(at).Round(time.Millisecond))
			break
		}
		if time.Since(at) > 3*time.Second {
			t.Errorf("%v after the promotion: IsHealthy %v, Ping %v", time.Since(at).Round(time.Millisecond), ok, perr)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("scans failed with ErrNoSlotOwner: %d; PUBLISH to %q: %d ok, %d failed", noOwner, channel, published, len(pubErrs))
	for i, err := range pubErrs {
		if i < 3 {
			t.Errorf("PUBLISH to a channel of a healthy primary failed: %v", err)
		}
	}
	if published == 0 {
		t.Error("no PUBLISH succeeded")
	}
	// Every GET failed with ErrNoSlotOwner is in Stats (it was in none).
	if got := eng.Stats().NoSlotOwner; got < uint64(getNoOwner) || got > uint64(getNoOwner+getLate) {
		t.Errorf("Stats().NoSlotOwner = %d, callers saw %d GETs fail with ErrNoSlotOwner (and %d time out)", got, getNoOwner, getLate)
	}
	t.Logf("GETs failed with ErrNoSlotOwner: %d", getNoOwner)
}
