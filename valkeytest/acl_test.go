package valkeytest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/valkeytest"
)

// authDo dials addr, authenticates as user with pass, and runs one
// command; it returns the AUTH reply when AUTH fails.
func authDo(addr, user, pass string, args ...string) (string, error) {
	c, err := dial(addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if got, err := c.do(2*time.Second, "AUTH", user, pass); err != nil || got != "+OK" {
		return got, err
	}
	return c.do(2*time.Second, args...)
}

func mustAuthDo(t *testing.T, addr, user, pass, want string, args ...string) {
	t.Helper()
	got, err := authDo(addr, user, pass, args...)
	if err != nil {
		t.Fatalf("%s: %v: %v", user, args, err)
	}
	if !strings.HasPrefix(got, want) {
		t.Fatalf("%s: %v = %q, want %q...", user, args, got, want)
	}
}

func TestACLUsersAndRotation(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t, valkeytest.Options{Password: "admin-pw"})
	if err := srv.AddUser("reader", "r1", "~*", "+get", "+ping"); err != nil {
		t.Fatal(err)
	}
	mustAuthDo(t, srv.Addr(), "reader", "r1", "(nil)", "GET", "k")
	mustAuthDo(t, srv.Addr(), "reader", "r1", "-NOPERM", "SET", "k", "v")
	mustAuthDo(t, srv.Addr(), "reader", "nope", "-WRONGPASS", "PING")

	// Rotation without a gap: both work, then only the new one.
	if err := srv.AddUserPassword("reader", "r2"); err != nil {
		t.Fatal(err)
	}
	mustAuthDo(t, srv.Addr(), "reader", "r1", "+PONG", "PING")
	mustAuthDo(t, srv.Addr(), "reader", "r2", "+PONG", "PING")
	if err := srv.SetUserPassword("reader", "r3"); err != nil {
		t.Fatal(err)
	}
	mustAuthDo(t, srv.Addr(), "reader", "r2", "-WRONGPASS", "PING")
	mustAuthDo(t, srv.Addr(), "reader", "r3", "+PONG", "PING")

	// The admin password: valkeytest follows it.
	if err := srv.SetUserPassword("default", "admin-pw2"); err != nil {
		t.Fatal(err)
	}
	if srv.Password() != "admin-pw2" {
		t.Fatalf("Password() = %q", srv.Password())
	}
	mustAuthDo(t, srv.Addr(), "default", "admin-pw", "-WRONGPASS", "PING")
	if r, err := srv.Do("PING"); err != nil || r != "PONG" {
		t.Fatalf("Do PING after rotation = %v, %v", r, err)
	}

	// All of it survives a restart.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	mustAuthDo(t, srv.Addr(), "default", "admin-pw2", "+PONG", "PING")
	mustAuthDo(t, srv.Addr(), "reader", "r3", "(nil)", "GET", "k")
	mustAuthDo(t, srv.Addr(), "reader", "r3", "-NOPERM", "SET", "k", "v")
	mustAuthDo(t, srv.Addr(), "reader", "r2", "-WRONGPASS", "PING")

	// Misuse.
	if err := srv.AddUser("default", "x"); err == nil {
		t.Error("AddUser default: no error")
	}
	if err := srv.AddUserPassword("nobody", "x"); err == nil {
		t.Error("AddUserPassword of an unknown user: no error")
	}
	if err := srv.SetUserPassword("nobody", "x"); err == nil {
		t.Error("SetUserPassword of an unknown user: no error")
	}
}

func TestUsernameTurnsDefaultUserOff(t *testing.T) {
	t.Parallel()
	srv := valkeytest.Start(t, valkeytest.Options{Username: "admin", Password: "pw"})
	mustAuthDo(t, srv.Addr(), "admin", "pw", "+PONG", "PING")
	if got, err := do(srv.Addr(), "PING"); err != nil || !strings.HasPrefix(got, "-NOAUTH") {
		t.Fatalf("PING as the default user = %q, %v; want -NOAUTH", got, err)
	}
	if err := srv.SetUserPassword("admin", "pw2"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	mustAuthDo(t, srv.Addr(), "admin", "pw2", "+PONG", "PING")
	mustAuthDo(t, srv.Addr(), "admin", "pw", "-WRONGPASS", "PING")

	if _, err := valkeytest.StartServer(valkeytest.Options{Username: "u"}); err == nil {
		t.Error("Username without Password: no error")
	}
}

func TestSentinelPasswords(t *testing.T) {
	t.Parallel()
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{
		Username: "app", Password: "data-pw",
		SentinelUsername: "watcher", SentinelPassword: "sentinel-pw",
	})
	for _, sn := range s.Sentinels() {
		if got, err := do(sn.Addr(), "PING"); err != nil || !strings.HasPrefix(got, "-NOAUTH") {
			t.Fatalf("%s: PING without AUTH = %q, %v", sn.Addr(), got, err)
		}
		mustAuthDo(t, sn.Addr(), "watcher", "sentinel-pw", "*2", "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
		mustAuthDo(t, sn.Addr(), "app", "data-pw", "-WRONGPASS", "PING")
	}
	for _, n := range s.Nodes() {
		mustAuthDo(t, n.Addr(), "app", "data-pw", "+PONG", "PING")
		mustAuthDo(t, n.Addr(), "watcher", "sentinel-pw", "-WRONGPASS", "PING")
	}
	// Replication and the sentinels work with the credentials.
	old, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Failover()
	if err != nil {
		t.Fatal(err)
	}
	if p == old {
		t.Fatal("no new primary")
	}
}

func TestClusterPassword(t *testing.T) {
	t.Parallel()
	c := valkeytest.StartClusterT(t, valkeytest.ClusterOptions{Primaries: 2, ReplicasPerPrimary: -1, Password: "cpw"})
	for _, n := range c.Nodes() {
		if got, err := do(n.Addr(), "PING"); err != nil || !strings.HasPrefix(got, "-NOAUTH") {
			t.Fatalf("%s: PING without AUTH = %q, %v", n.Addr(), got, err)
		}
	}
	prims := c.Primaries()
	ranges, err := c.SlotsOf(prims[0])
	if err != nil {
		t.Fatal(err)
	}
	slot := ranges[0][0]
	keys := clusterKeysIn(t, []int{slot}, 2)[slot]
	for _, k := range keys {
		clusterMustDo(t, prims[0], "OK", "SET", k, "v")
	}
	// MIGRATE authenticates with the target.
	if err := c.MigrateSlots(prims[0], prims[1], []int{slot}); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		clusterMustDo(t, prims[1], "v", "GET", k)
	}
}
