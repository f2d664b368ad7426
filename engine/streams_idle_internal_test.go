package engine

import (
	"math"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/valkey-io/valkey-go"
)

// A minimum idle time is sent in whole milliseconds rounded up: the
// server's filters are "idle for at least", so 1.5 ms is 2, and a
// positive time below 1 ms is 1 (0 would turn the filter off: every
// pending entry, however recently delivered). Before, both were
// truncated (1 and 0).
func TestStreamMinIdleRoundsUp(t *testing.T) {
	// A standalone builder (valkey-go's cmds.NoSlot, as drivers'
	// noSlotBuilder makes it): the zero Builder checks slots and panics.
	var b valkey.Builder
	*(*uint16)(unsafe.Pointer(&b)) = 1 << 15
	for _, tc := range []struct {
		idle time.Duration
		want string
	}{{0, "0"}, {500 * time.Microsecond, "1"}, {time.Millisecond, "1"}, {1500 * time.Microsecond, "2"}, {2 * time.Second, "2000"},
		{math.MaxInt64, "9223372036855"}} {
		claim, err := xclaimCmd(b, "s", "g", "c", tc.idle, []string{"1-1"})
		if err != nil {
			t.Fatal(err)
		}
		if got := claim.Commands(); !slices.Equal(got, []string{"XCLAIM", "s", "g", "c", tc.want, "1-1"}) {
			t.Errorf("XClaim minIdle %v: %q, want min-idle-time %s", tc.idle, got, tc.want)
		}
		auto, err := xautoclaimCmd(b, "s", "g", "c", tc.idle, "0-0", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := auto.Commands(); !slices.Equal(got, []string{"XAUTOCLAIM", "s", "g", "c", tc.want, "0-0"}) {
			t.Errorf("XAutoClaim minIdle %v: %q, want min-idle-time %s", tc.idle, got, tc.want)
		}
		pend, err := xpendingExtCmd(b, "s", "g", XPendingOptions{Count: 10, Idle: tc.idle})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"XPENDING", "s", "g", "IDLE", tc.want, "-", "+", "10"}
		if tc.idle == 0 {
			want = []string{"XPENDING", "s", "g", "-", "+", "10"}
		}
		if got := pend.Commands(); !slices.Equal(got, want) {
			t.Errorf("XPendingExt Idle %v: %q, want %q", tc.idle, got, want)
		}
	}
}
