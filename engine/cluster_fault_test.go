package engine_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// tcpConnsTo counts the established TCP connections on this machine whose
// remote end is 127.0.0.1:port (from /proc/net/tcp): connections that a
// client made to a server listening on port, accepted by the kernel even
// when the server process is frozen.
func tcpConnsTo(t *testing.T, port int) int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatalf("counting connections: %v", err)
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		// sl local_address rem_address st ...; st 01 is ESTABLISHED.
		if len(fs) > 3 && fs[2] == want && fs[3] == "01" {
			n++
		}
	}
	return n
}

// keyOn returns a key whose slot the node n serves.
func keyOn(t *testing.T, c *valkeytest.Cluster, n *valkeytest.ClusterNode) string {
	t.Helper()
	ranges, err := c.SlotsOf(n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		k := "k" + strconv.Itoa(i)
		slot, err := c.KeySlot(k)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges {
			if slot >= r[0] && slot <= r[1] {
				return k
			}
		}
	}
	t.Fatalf("no key found on %s", n.Addr())
	return ""
}

// undialled returns a primary the engine has no connection to.
func undialled(t *testing.T, c *valkeytest.Cluster, eng *engine.Engine) *valkeytest.ClusterNode {
	t.Helper()
	var known []string
	for _, n := range eng.Stats().Nodes {
		known = append(known, n.Addr)
	}
	for _, p := range c.Primaries() {
		if !slices.Contains(known, p.Addr()) {
			return p
		}
	}
	t.Fatalf("the engine has dialled every primary (%v)", known)
	return nil
}

// A connection dialled while Close runs is closed, not leaked (issue 9,
// finding 9). The engine dials a primary on first use; that primary is
// frozen, so the dial hangs in the handshake (the kernel accepts the TCP
// connection). Close, with a drain timeout shorter than the dial timeout
// (the configuration under test), returns with every future complete, and
// once the primary is thawed no connection of the engine to it remains:
// the dial was abandoned when Close began.
func TestClusterCloseDuringDial(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{NodeTimeout: 15 * time.Second})
	cfg := config.DefaultConfig().WithAddrs(c.Addrs()[0]).WithClusterMode(true)
	cfg.DrainTimeout = 200 * time.Millisecond
	eng, err := engine.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := undialled(t, c, eng)
	key := keyOn(t, c, p)
	base := tcpConnsTo(t, p.Port()) // its replica's link
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Resume() })

	f := eng.Get(context.Background(), key)
	for start := time.Now(); tcpConnsTo(t, p.Port()) <= base; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the engine never connected to the frozen primary")
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- eng.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close still running after 10s")
	}
	if !f.IsDone() {
		t.Fatal("GET to the frozen primary still pending after Close")
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	// The handshake can complete now: a leaked connection would stay.
	deadline := time.Now().Add(3 * time.Second)
	for tcpConnsTo(t, p.Port()) > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to %s remain 3s after Close returned and the node was thawed, %d before",
				tcpConnsTo(t, p.Port()), p.Addr(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
