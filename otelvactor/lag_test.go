package otelvactor_test

// The consumer lag and pending gauges with consumers of the same names on
// several servers, and consumers that move to another node.

import (
	"context"
	"errors"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// lagPoints returns a gauge's points as "group@address:port=value",
// sorted.
func lagPoints(ms map[string]metricdata.Metrics, name string) []string {
	var out []string
	g, _ := ms[name].Data.(metricdata.Gauge[int64])
	for _, p := range g.DataPoints {
		node := ""
		if a := attr(p.Attributes, "server.address"); a != "" {
			node = "@" + net.JoinHostPort(a, attr(p.Attributes, "server.port"))
		}
		out = append(out, attr(p.Attributes, "vactor.stream.group")+node+"="+itoa(p.Value))
	}
	sort.Strings(out)
	return out
}

func itoa(v int64) string {
	if v < 0 {
		return "-" + itoa(-v)
	}
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + string(rune('0'+v%10))
}

// The lag of consumers with the same stream, group and consumer names on
// two servers: two series, told apart by server.address and server.port,
// each with its own server's values; one stopping ends its own series
// only. Before, both were one series (the last report won, the two
// servers' values taking turns), and the first Stopped ended it for both.
func TestConsumerLagPerServer(t *testing.T) {
	h, reader := metricsHook(t)
	ev := func(kind hooks.ConsumerKind, node string, inst uint64, lag, pending int64) {
		h.OnConsumerEvent(hooks.Consumer{Kind: kind, Stream: "orders", Group: "workers", Consumer: "c1",
			Node: node, Instance: inst, Lag: lag, Pending: pending})
	}
	ev(hooks.Lag, "10.0.0.1:6379", 1, 5, 2)
	ev(hooks.Lag, "10.0.0.2:6379", 2, 7, 3)
	ms := collect(t, reader)
	if got, want := strings.Join(lagPoints(ms, "vactor.stream.consumer.lag"), " "), "workers@10.0.0.1:6379=5 workers@10.0.0.2:6379=7"; got != want {
		t.Errorf("lag %q, want %q", got, want)
	}
	if got, want := strings.Join(lagPoints(ms, "vactor.stream.consumer.pending"), " "), "workers@10.0.0.1:6379=2 workers@10.0.0.2:6379=3"; got != want {
		t.Errorf("pending %q, want %q", got, want)
	}
	ev(hooks.Stopped, "10.0.0.1:6379", 1, 0, 0)
	ms = collect(t, reader)
	if got, want := strings.Join(lagPoints(ms, "vactor.stream.consumer.lag"), " "), "workers@10.0.0.2:6379=7"; got != want {
		t.Errorf("lag once the first consumer stopped %q, want %q", got, want)
	}
	// A consumer whose stream moved to another node (failover, slot
	// moved) reports from there: its old node's series ends, not
	// reported for ever.
	ev(hooks.Lag, "10.0.0.3:6379", 2, 1, 1)
	ms = collect(t, reader)
	if got, want := strings.Join(lagPoints(ms, "vactor.stream.consumer.lag"), " "), "workers@10.0.0.3:6379=1"; got != want {
		t.Errorf("lag once the consumer moved %q, want %q", got, want)
	}
	// Its Stopped, made before it had a node ("" when it never
	// connected again), ends it all the same.
	ev(hooks.Stopped, "", 2, 0, 0)
	ms = collect(t, reader)
	if got := lagPoints(ms, "vactor.stream.consumer.lag"); len(got) != 0 {
		t.Errorf("lag once every consumer stopped: %v, want none", got)
	}
}

// Two engines on two servers, each with a consumer of stream "orders",
// group "workers", named "c1", on one Hook: the pending gauge has one
// point per server, with that server's own count, and closing one engine
// ends its server's series only.
func TestConsumerLagTwoServersSameNames(t *testing.T) {
	h, reader := metricsHook(t)
	ctx := ctxT(t)
	type side struct {
		eng  *engine.Engine
		node string
	}
	var sides []side
	for _, fail := range []bool{false, true} {
		srv := valkeytest.Start(t)
		eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(h))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = eng.Close() })
		for range 3 {
			if err := eng.XAdd(ctx, "orders", "f", "v").Err(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// The second server's handler fails: its 3 entries stay pending.
		handler := func(context.Context, engine.XEntry) error {
			if fail {
				return errors.New("refused")
			}
			return nil
		}
		// A reclaim round (and a Lag event) every 50 ms; the failed
		// entries are not reclaimed (ClaimIdle 30 s).
		opts := engine.ConsumeOptions{StartID: "0", ClaimInterval: 50 * time.Millisecond, Block: 20 * time.Millisecond}
		if _, err := eng.Consume(ctx, "orders", "workers", "c1", handler, opts); err != nil {
			t.Fatal(err)
		}
		sides = append(sides, side{eng, srv.Addr()})
	}
	// Both consumers have read their 3 entries and reported.
	ms := waitFor(t, "both servers' pending reported", reader, func(ms map[string]metricdata.Metrics) bool {
		return strings.Join(lagPoints(ms, "vactor.stream.consumer.pending"), " ") ==
			strings.Join(sortedStrings("workers@"+sides[0].node+"=0", "workers@"+sides[1].node+"=3"), " ")
	})
	if got := lagPoints(ms, "vactor.stream.consumer.lag"); len(got) != 2 {
		t.Errorf("lag points %v, want one per server", got)
	}
	if err := sides[0].eng.Close(); err != nil { // delivers its consumer's Stopped
		t.Fatal(err)
	}
	ms = collect(t, reader)
	if got, want := strings.Join(lagPoints(ms, "vactor.stream.consumer.pending"), " "), "workers@"+sides[1].node+"=3"; got != want {
		t.Errorf("pending once the first engine closed %q, want %q (the other server's, still read)", got, want)
	}
}

func sortedStrings(s ...string) []string {
	sort.Strings(s)
	return s
}
