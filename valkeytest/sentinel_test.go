package valkeytest_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/valkeytest"
)

func sentinelMustRole(t *testing.T, n *valkeytest.Server, want string) {
	t.Helper()
	role, err := n.Role()
	if err != nil {
		t.Fatal(err)
	}
	if role != want {
		t.Fatalf("%s: Role() = %q, want %q", n.Addr(), role, want)
	}
}

// eventIndex returns the index of the first event of type typ, or -1.
func eventIndex(events []valkeytest.SentinelEvent, typ string) int {
	return slices.IndexFunc(events, func(e valkeytest.SentinelEvent) bool { return e.Type == typ })
}

func TestSentinelStartsReady(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := valkeytest.StartSentinelT(t)
	t.Logf("started in %v", time.Since(start).Round(time.Millisecond))

	if got := len(s.Sentinels()); got != 3 {
		t.Fatalf("%d sentinels, want 3", got)
	}
	if got := len(s.Nodes()); got != 3 {
		t.Fatalf("%d data nodes, want 3", got)
	}
	if s.MasterName() != "mymaster" {
		t.Fatalf("MasterName() = %q", s.MasterName())
	}
	addr, err := s.MasterAddr()
	if err != nil {
		t.Fatal(err)
	}
	if addr != s.Nodes()[0].Addr() {
		t.Fatalf("MasterAddr() = %s, want the first node %s", addr, s.Nodes()[0].Addr())
	}
	p, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	sentinelMustRole(t, p, valkeytest.RolePrimary)
	reps, err := s.Replicas()
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 {
		t.Fatalf("Replicas() = %d nodes, want 2", len(reps))
	}
	for _, r := range reps {
		sentinelMustRole(t, r, valkeytest.RoleReplica)
	}

	// Every sentinel knows the two others and both replicas, and answers
	// on the address Addrs gives.
	for i, sn := range s.Sentinels() {
		if s.Addrs()[i] != sn.Addr() {
			t.Fatalf("Addrs()[%d] = %s, Sentinels()[%d].Addr() = %s", i, s.Addrs()[i], i, sn.Addr())
		}
		sentinelMustRole(t, sn, "sentinel")
		r, err := sn.Do("SENTINEL", "MASTER", "mymaster")
		if err != nil {
			t.Fatal(err)
		}
		f := r.([]any)
		m := map[any]any{}
		for j := 0; j+1 < len(f); j += 2 {
			m[f[j]] = f[j+1]
		}
		if m["num-other-sentinels"] != "2" || m["num-slaves"] != "2" || m["quorum"] != "2" || m["flags"] != "master" {
			t.Fatalf("%s: SENTINEL MASTER = %v", sn.Addr(), m)
		}
		if m["down-after-milliseconds"] != "1000" || m["failover-timeout"] != "5000" {
			t.Fatalf("%s: SENTINEL MASTER = %v", sn.Addr(), m)
		}
	}

	// Writes on the primary reach the replicas.
	c, err := dial(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.do(time.Second, "SET", "k", "v"); err != nil || got != "+OK" {
		t.Fatalf("SET = %q, %v", got, err)
	}
	if got, err := c.do(10*time.Second, "WAIT", "2", "5000"); err != nil || got != ":2" {
		t.Fatalf("WAIT 2 = %q, %v", got, err)
	}
	for _, r := range reps {
		if got, err := r.Do("GET", "k"); err != nil || got != "v" {
			t.Fatalf("%s: GET k = %v, %v", r.Addr(), got, err)
		}
		if _, err := r.Do("SET", "k", "w"); err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
			t.Fatalf("%s: SET on a replica = %v, want READONLY", r.Addr(), err)
		}
	}
}

func TestSentinelFailoverEvents(t *testing.T) {
	t.Parallel()
	s := valkeytest.StartSentinelT(t)
	tap, err := s.Tap()
	if err != nil {
		t.Fatal(err)
	}
	old, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p, err := s.Failover()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover in %v", time.Since(start).Round(time.Millisecond))
	if p == old {
		t.Fatalf("Failover() returned the old primary %s", p.Addr())
	}
	sentinelMustRole(t, p, valkeytest.RolePrimary)
	if addr, err := s.MasterAddr(); err != nil || addr != p.Addr() {
		t.Fatalf("MasterAddr() = %s, %v; want %s", addr, err, p.Addr())
	}

	// The leader published the failover's steps in order, and every
	// sentinel the switch.
	switches, err := tap.WaitAll(10*time.Second, valkeytest.EventSwitchMaster, start)
	if err != nil {
		t.Fatal(err)
	}
	if len(switches) != 3 {
		t.Fatalf("+switch-master from %d sentinels, want 3", len(switches))
	}
	for _, e := range switches {
		from, to, ok := e.SwitchAddrs()
		if !ok || from != old.Addr() || to != p.Addr() {
			t.Fatalf("%s: %s %q: want %s -> %s", e.Sentinel, e.Type, e.Payload, old.Addr(), p.Addr())
		}
	}
	// SENTINEL FAILOVER makes the sentinel asked the leader, without a
	// vote; it switches last, at the end of the failover, while the
	// others switch as soon as they hear of the promotion.
	try, err := tap.WaitType(time.Second, valkeytest.EventTryFailover, start)
	if err != nil {
		t.Fatal(err)
	}
	leader := try.Sentinel
	var steps []valkeytest.SentinelEvent
	for _, e := range tap.Events() {
		if e.Sentinel == leader {
			steps = append(steps, e)
		}
	}
	order := []string{
		valkeytest.EventTryFailover,
		valkeytest.EventSelectedReplica,
		valkeytest.EventSendReplicaOfNo,
		valkeytest.EventPromoted,
		valkeytest.EventSwitchMaster,
	}
	last := -1
	for _, typ := range order {
		i := eventIndex(steps, typ)
		if i <= last {
			t.Fatalf("leader %s: %s at %d, after %d; events:\n%v", leader, typ, i, last, steps)
		}
		last = i
	}
	if e := steps[eventIndex(steps, valkeytest.EventSelectedReplica)]; !strings.Contains(e.Payload, p.Addr()) {
		t.Fatalf("%s %q does not name the new primary %s", e.Type, e.Payload, p.Addr())
	}
	for _, e := range tap.Events() {
		if e.IsAbort() {
			t.Fatalf("failover aborted: %v", e)
		}
	}
	t.Logf("+switch-master: first %v, last %v after the start",
		switches[0].Time.Sub(start).Round(time.Millisecond), switches[len(switches)-1].Time.Sub(start).Round(time.Millisecond))

	// A second failover works at once (the old primary still says it is
	// one: the sentinels turn it into a replica only later).
	p2, err := s.Failover()
	if err != nil {
		t.Fatal(err)
	}
	if p2 == p {
		t.Fatalf("second Failover() kept %s", p.Addr())
	}
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tap.WaitType(time.Second, "+nothing", time.Time{}); err == nil {
		t.Fatal("WaitType on a closed tap: no error")
	}
}

func TestSentinelKillPrimary(t *testing.T) {
	t.Parallel()
	s := valkeytest.StartSentinelT(t)
	tap, err := s.Tap()
	if err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	old, err := s.KillPrimary()
	if err != nil {
		t.Fatal(err)
	}
	if old.Pid() != 0 {
		t.Fatal("KillPrimary: still running")
	}
	p, err := s.WaitSwitch(old.Addr(), 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p == old {
		t.Fatal("WaitSwitch returned the killed primary")
	}
	sentinelMustRole(t, p, valkeytest.RolePrimary)
	switches, err := tap.WaitAll(5*time.Second, valkeytest.EventSwitchMaster, killedAt)
	if err != nil {
		t.Fatal(err)
	}
	last := switches[len(switches)-1].Time.Sub(killedAt)
	t.Logf("+switch-master on all 3 sentinels %v after kill -9 (first %v)", last.Round(time.Millisecond),
		switches[0].Time.Sub(killedAt).Round(time.Millisecond))
	// down-after 1s, then the vote and the promotion: not instant, and
	// well within failover-timeout.
	if last < time.Second || last > 10*time.Second {
		t.Fatalf("switch %v after the kill, want 1s to 10s", last)
	}
	if _, err := tap.WaitType(0, valkeytest.EventODown, killedAt); err != nil {
		t.Fatal(err)
	}
}

func TestSentinelRestartedPrimaryRejoinsAsReplica(t *testing.T) {
	t.Parallel()
	// Short periods, so that the sentinels notice the restarted node
	// (INFO) and reconfigure it (after 4 publish periods) quickly.
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{
		InfoPeriod:    500 * time.Millisecond,
		PublishPeriod: 250 * time.Millisecond,
	})
	old, err := s.KillPrimary()
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.WaitSwitch(old.Addr(), 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Restart(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.WaitHealthy(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("healthy %v after the restart", time.Since(start).Round(time.Millisecond))
	// (Under heavy load a sentinel may see a slow primary as down and
	// fail over again, even to the restarted node, once it rejoined as a
	// replica: compare with the primary of now.)
	cur, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	if cur != p {
		t.Logf("the primary moved again, from %s to %s", p.Addr(), cur.Addr())
	}
	if cur == old {
		sentinelMustRole(t, old, valkeytest.RolePrimary)
	} else {
		sentinelMustRole(t, old, valkeytest.RoleReplica)
	}
	reps, err := s.Replicas()
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 || slices.Contains(reps, cur) {
		var addrs []string
		for _, r := range reps {
			addrs = append(addrs, r.Addr())
		}
		t.Fatalf("Replicas() = %v, want the two nodes other than %s", addrs, cur.Addr())
	}
}

func TestSentinelKilledSentinel(t *testing.T) {
	t.Parallel()
	s := valkeytest.StartSentinelT(t)
	dead, err := s.KillSentinel(0)
	if err != nil {
		t.Fatal(err)
	}
	if dead.Pid() != 0 {
		t.Fatal("KillSentinel: still running")
	}
	// The two others still fail over (quorum 2, and a forced failover
	// needs no vote), and agree.
	p, err := s.Failover()
	if err != nil {
		t.Fatal(err)
	}
	if addr, err := s.MasterAddr(); err != nil || addr != p.Addr() {
		t.Fatalf("MasterAddr() = %s, %v; want %s", addr, err, p.Addr())
	}
	// Back, it learns the new primary from the others.
	if err := s.RestartSentinel(0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitSwitch("none", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := dead.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"); err != nil || got.([]any)[1] != strconv.Itoa(p.Port()) {
		t.Fatalf("restarted sentinel names %v, %v; want %s", got, err, p.Addr())
	}
	if _, err := s.KillSentinel(3); err == nil {
		t.Fatal("KillSentinel(3) of 3: no error")
	}
}

func TestSentinelBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []valkeytest.SentinelOptions{
		{Sentinels: -1},
		{Quorum: 4},
		{MasterName: "a b"},
		{Username: "u"},
		{SentinelUsername: "u"},
		{DownAfter: time.Microsecond},
		{InfoPeriod: -time.Second},
	} {
		if s, err := valkeytest.StartSentinel(o); err == nil {
			s.Stop()
			t.Errorf("%+v: no error", o)
		}
	}
}
