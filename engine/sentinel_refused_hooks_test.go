package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/valkeytest"
)

// Sentinels that refuse the engine after New (the engine's sentinel
// password rotated on them, not in its config): the engine can no longer
// follow a failover, and its refused dials reach the PostConnection hooks
// (Sentinel set, the refusal in Err) and so the log's "connect failed".
// Before, nothing said so but Stats().Sentinel (qa-AD 8).
func TestSentinelRefusedAfterNewReachesHooks(t *testing.T) {
	const adminPass, engPass, newPass = "sadmin-Pa55word-71c2", "seng-Pa55word-0b9e", "srotated-Pa55word-44d1"
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{SentinelUsername: "sadmin", SentinelPassword: adminPass})
	for _, sn := range s.Sentinels() {
		if err := sn.AddUser("engs", engPass, "~*", "&*", "+@all"); err != nil {
			t.Fatal(err)
		}
	}
	rec := &dialHook{}
	cfg := config.DefaultConfig().WithSentinel(s.MasterName(), s.Addrs()...).WithHooks(rec)
	cfg.SentinelUsername, cfg.SentinelPassword = "engs", engPass
	eng := engineOn(t, cfg)
	defer eng.Close()
	sentinels := map[string]bool{}
	for _, a := range s.Addrs() {
		sentinels[a] = true
	}
	for _, sn := range s.Sentinels() {
		if err := sn.SetUserPassword("engs", newPass); err != nil {
			t.Fatal(err)
		}
		if _, err := sn.Do("CLIENT", "KILL", "USER", "engs"); err != nil {
			t.Fatal(err)
		}
	}
	var refused hooks.Dialed
	waitCond(t, 15*time.Second, "a refused sentinel dial reported to the PostConnection hooks", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, ev := range rec.dialed {
			if ev.Sentinel && ev.Err != nil && strings.Contains(ev.Err.Error(), "WRONGPASS") {
				refused = ev
				return true
			}
		}
		return false
	})
	if !sentinels[refused.Node] || !refused.Dedicated {
		t.Errorf("refused sentinel dial %+v: want Node one of the sentinels %v, Dedicated", refused, s.Addrs())
	}
	var ce *engine.ConnectError
	if !errors.As(refused.Err, &ce) {
		t.Errorf("refused sentinel dial's Err %v: want a *ConnectError", refused.Err)
	}
}
