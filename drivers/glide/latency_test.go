package glide_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/drivers/valkeygo"
	"github.com/vactor-io/vactor/valkeytest"
)

// latencyShape describes a LATENCY HISTOGRAM reply apart from its
// timings (they differ between two servers): each command's calls and
// whether its histogram is a map of integer buckets to cumulative
// integer counts ending at calls; sorted by command (the server's order
// is its dict's).
func latencyShape(v drivers.Value) string {
	if v.Kind != drivers.KindMap {
		return fmt.Sprintf("not a map: %v", v)
	}
	var out []string
	for i := 0; i+1 < len(v.Elems); i += 2 {
		name, stats := v.Elems[i], v.Elems[i+1]
		var b strings.Builder
		fmt.Fprintf(&b, "%s:", name.Str)
		if stats.Kind != drivers.KindMap {
			fmt.Fprintf(&b, " stats %v", stats)
			out = append(out, b.String())
			continue
		}
		calls := int64(-1)
		for j := 0; j+1 < len(stats.Elems); j += 2 {
			k, f := stats.Elems[j], stats.Elems[j+1]
			switch {
			case k.Str == "calls" && f.Kind == drivers.KindInt:
				calls = f.Int
				fmt.Fprintf(&b, " calls=%d", f.Int)
			case k.Str == "histogram_usec" && f.Kind == drivers.KindMap:
				ok, last := len(f.Elems) > 0, int64(0)
				for h := 0; h+1 < len(f.Elems); h += 2 {
					bucket, count := f.Elems[h], f.Elems[h+1]
					ok = ok && bucket.Kind == drivers.KindInt && count.Kind == drivers.KindInt && count.Int >= last
					last = count.Int
				}
				fmt.Fprintf(&b, " histogram ok=%v", ok && last == calls)
			default:
				fmt.Fprintf(&b, " %v=%v", k, f)
			}
		}
		out = append(out, b.String())
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// LATENCY HISTOGRAM's RESP3 reply has maps with integer keys, which
// glide 2.5.3's Go binding cannot convert (it panicked; the driver
// recovered, and the whole pipeline failed: through the engine every
// command batched with it failed with ErrOutcomeUnknown and the
// connection was opened again). The driver sends it between HELLO 2 and
// HELLO 3 and rebuilds the RESP3 reply: valkey-go's, the commands batched
// with it unaffected, the connection on RESP3 afterwards.
func TestLatencyHistogram(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe := [][]string{
		{"SET", "k", "v"}, {"HSET", "h", "f", "1"},
		{"LATENCY", "HISTOGRAM", "set", "hset"},
		{"HGETALL", "h"}, {"GET", "k"},
		{"LATENCY", "HISTOGRAM"},
		{"latency", "histogram", "nosuchcommand"},
		{"CONFIG", "GET", "maxmemory"}, {"HELLO"},
	}
	latency := func(args []string) bool { return strings.EqualFold(args[0], "LATENCY") }
	var got [2][]drivers.Value
	for d, drv := range []drivers.Driver{valkeygo.Driver{}, glide.Driver{}} {
		c := dialFast(t, drv, valkeytest.Start(t).Addr())
		for round := range 2 { // the second round runs on what the first left
			cmds := make([]valkey.Completed, len(pipe))
			for i, args := range pipe {
				cmds[i] = c.B().Arbitrary(args...).Build()
			}
			got[d] = got[d][:0]
			for i, r := range c.DoMulti(ctx, cmds...) {
				res := drivers.FromValkey(r)
				if res.Err != nil {
					t.Fatalf("%T round %d: %q: %v", drv, round, pipe[i], res.Err)
				}
				got[d] = append(got[d], res.Value)
			}
		}
	}
	for i, args := range pipe {
		want, have := got[0][i], got[1][i]
		switch {
		case latency(args) && len(args) == 2: // every command: the two servers ran others
			if hs := latencyShape(have); strings.Contains(hs, "ok=false") || strings.Contains(hs, "not a map") || strings.Contains(hs, "stats") {
				t.Errorf("%q from glide: %s", args, hs)
			}
		case latency(args):
			if ws, hs := latencyShape(want), latencyShape(have); ws != hs {
				t.Errorf("%q:\n  valkey-go %s\n  glide     %s", args, ws, hs)
			}
		case strings.EqualFold(args[0], "HELLO"):
			if want.Kind != drivers.KindMap || have.Kind != drivers.KindMap {
				t.Errorf("HELLO after LATENCY HISTOGRAM: valkey-go %v, glide %v", want.Kind, have.Kind)
			}
		case !alike(want, have):
			t.Errorf("%q:\n  valkey-go %v\n  glide     %v", args, want, have)
		}
	}
}

// Through the engine: LATENCY HISTOGRAM reads as with valkey-go, and
// costs no reconnect and no outcome-unknown failure.
func TestParityLatencyHistogram(t *testing.T) {
	got := map[string]string{}
	for _, drv := range parityDrivers {
		eng, _ := parityEngine(t, drv)
		ctx := ctxT(t)
		for _, c := range [][]string{{"SET", "k", "v"}, {"GET", "k"}, {"GET", "k"}} {
			if _, err := eng.Do(ctx, c[0], c[1:]...).Await(ctx); err != nil {
				t.Fatalf("%s: %q: %v", drv, c, err)
			}
		}
		r, err := eng.Do(ctx, "LATENCY", "HISTOGRAM", "get", "set").Await(ctx)
		if err != nil {
			t.Fatalf("%s: LATENCY HISTOGRAM: %v", drv, err)
		}
		m := r.Message()
		got[drv] = latencyShape(drivers.ValueOf(&m))
		if st := eng.Stats(); st.Reconnects != 0 || st.OutcomeUnknown != 0 {
			t.Errorf("%s: %d reconnects, %d outcome-unknown failures", drv, st.Reconnects, st.OutcomeUnknown)
		}
	}
	if got["glide"] != got["valkey-go"] {
		t.Errorf("LATENCY HISTOGRAM get set:\n  valkey-go %s\n  glide     %s", got["valkey-go"], got["glide"])
	}
}
