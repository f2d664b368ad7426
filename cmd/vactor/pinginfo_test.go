package main

import (
	"strings"
	"testing"

	"github.com/vactor-io/vactor/valkeytest"
)

func TestPingInfoStandalone(t *testing.T) {
	srv := valkeytest.Start(t)
	replica := valkeytest.Start(t, valkeytest.Options{Args: []string{"--replicaof", srv.Host(), itoa(srv.Port())}})
	eng := connect(t, false, srv.Addr())
	do(t, eng, "SET", "a", "1")
	do(t, eng, "SET", "b", "2")

	r := vactor(t, nil, "", "ping", "-addr", srv.Addr(), "-count", "5")
	if r.code != exitOK {
		t.Fatalf("ping: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "ping", r.stdout, "target "+srv.Addr()+" (standalone)", "connected in")
	mustHaveLine(t, "ping", r.stdout, srv.Addr()+" ", "PING x5: min ")

	r = vactor(t, nil, "", "info", "-addr", srv.Addr())
	if r.code != exitOK {
		t.Fatalf("info: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "info", r.stdout, "mode standalone", "role    primary", "keys    2 (db 0)")
	if !strings.Contains(r.stdout, "redis 7") && !strings.Contains(r.stdout, "valkey ") {
		t.Fatalf("info names no version:\n%s", r.stdout)
	}

	r = vactor(t, nil, "", "info", "-addr", replica.Addr())
	if r.code != exitOK {
		t.Fatalf("info replica: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "info replica", r.stdout, "role    replica of "+srv.Addr())

	// A server that does not answer: exit 1, with the reason.
	down := valkeytest.Start(t)
	addr := down.Addr()
	if err := down.Stop(); err != nil {
		t.Fatal(err)
	}
	r = vactor(t, []string{"VALKEY_DIAL_TIMEOUT=1s"}, "", "ping", "-addr", addr)
	if r.code != exitFailed || !strings.Contains(r.stderr, "vactor ping:") {
		t.Fatalf("ping of a stopped server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestPingInfoCluster(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	seeds := strings.Join(c.Addrs()[:2], ",")

	r := vactor(t, nil, "", "ping", "-cluster", "-addr", seeds, "-count", "3")
	if r.code != exitOK {
		t.Fatalf("ping: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "ping", r.stdout, "(cluster)", "cluster of 6 nodes")
	for _, n := range c.Nodes() {
		mustHaveLine(t, "ping", r.stdout, n.Addr()+" ", "PING x3: min ")
	}

	r = vactor(t, nil, "", "info", "-cluster", "-addr", seeds)
	if r.code != exitOK {
		t.Fatalf("info: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "info", r.stdout, "cluster 3 slot ranges, 16384 of 16384 slots served, 6 nodes")
	for _, p := range c.Primaries() {
		slots, err := c.SlotsOf(p)
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, "info", r.stdout, itoa(slots[0][0])+"-", "primary "+p.Addr())
	}
	for _, rep := range c.Replicas() {
		mustHaveLine(t, "info", r.stdout, "  "+rep.Addr()+"  ", " keys")
	}
	if got := strings.Count(r.stdout, "role    replica of "); got != 3 {
		t.Fatalf("info shows %d replicas, want 3:\n%s", got, r.stdout)
	}

	// Pointed at a cluster node without -cluster, info says what it is.
	r = vactor(t, nil, "", "info", "-addr", c.Addrs()[0])
	if r.code != exitOK {
		t.Fatalf("info: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "info", r.stdout, "run with -cluster")
}

func TestInfoSentinel(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	p, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	url := "valkey://" + s.Addrs()[0] + "?master_set=" + s.MasterName()
	for _, a := range s.Addrs()[1:] {
		url += "&addr=" + a
	}
	r := vactor(t, nil, "", "info", "-url", url)
	if r.code != exitOK {
		t.Fatalf("info: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "info", r.stdout, "(sentinel, master mymaster)", "master  mymaster: primary "+p.Addr()+" (3 sentinel(s) followed)", "role    primary, 2 replica(s)")

	r = vactor(t, nil, "", "ping", "-url", url, "-count", "3")
	if r.code != exitOK {
		t.Fatalf("ping: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "ping", r.stdout, "primary "+p.Addr()+" (named by the sentinels)")
	mustHaveLine(t, "ping", r.stdout, p.Addr()+" ", "PING x3: min ")

	// Pointed at a sentinel without its master name: a note and the
	// masters it monitors.
	r = vactor(t, nil, "", "info", "-addr", s.Addrs()[0])
	if r.code != exitOK {
		t.Fatalf("info of a sentinel: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "info of a sentinel", r.stdout, "this is a sentinel", "master  mymaster at "+p.Addr())
}

// -cluster pointed at a standalone server: the error names the flag, not
// the library's Config field (qa45c: "leave ClusterMode off
// (VALKEY_CLUSTER_MODE unset or false)" to an operator who gave
// -cluster).
func TestClusterFlagOnStandaloneNamesFlag(t *testing.T) {
	srv := valkeytest.Start(t)
	for _, sub := range []string{"ping", "info"} {
		r := vactor(t, nil, "", sub, "-cluster", "-addr", srv.Addr(), "-timeout", "5s")
		if r.code != exitFailed || !strings.Contains(r.stderr, "drop -cluster") || strings.Contains(r.stderr, "ClusterMode") {
			t.Errorf("%s: exit %d, want %d and the flag named\n%s", sub, r.code, exitFailed, r.stderr)
		}
	}
}

// A -count that -timeout cuts short says so, with the round trips timed
// until then (qa45c: "error: context deadline exceeded", nothing more).
func TestPingCountBeyondTimeout(t *testing.T) {
	srv := valkeytest.Start(t)
	r := vactor(t, nil, "", "ping", "-addr", srv.Addr(), "-count", "100000000", "-timeout", "1s")
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitFailed, r.stdout, r.stderr)
	}
	mustContain(t, "stdout", r.stdout, " of 100000000: min ", "-timeout 1s ended the command: raise -timeout or lower -count")
}
