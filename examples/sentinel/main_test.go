package main

import (
	"context"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/examples/internal/exampletest"
	"github.com/vactor-io/vactor/valkeytest"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

func TestSentinelExampleRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel example: skipped with -short")
	}
	for _, v := range config.ServerEnvVars {
		t.Setenv(v, "") // no server named: the throwaway setup
	}
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A Ctrl-C while the writers run stops the example, which stops its
// throwaway primary, replicas and sentinels (processes of their own
// groups, which the terminal's SIGINT does not reach), and exits non-zero.
func TestSentinelExampleInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel example: skipped with -short")
	}
	out, code := exampletest.Interrupt(t, "primary:")
	if code == 0 {
		t.Fatalf("exit status 0 after an interrupted run; output:\n%s", out)
	}
}

// Pointed at sentinels of one's own (VALKEY_SENTINEL_ADDRS), the example
// does not fail over, and leaves the primary's keys as they were: it
// writes and deletes keys of its run only.
func TestSentinelExampleKeepsTheServersKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel example: skipped with -short")
	}
	s := valkeytest.StartSentinelT(t)
	primary := s.Nodes()[0]
	mine := []string{"example:0:0", "example:7:1"}
	for _, k := range mine {
		if _, err := primary.Do("SET", k, "mine"); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("VALKEY_SENTINEL_ADDRS", strings.Join(s.Addrs(), ","))
	t.Setenv("VALKEY_SENTINEL_MASTER", s.MasterName())
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if addr, err := s.MasterAddr(); err != nil || addr != primary.Addr() {
		t.Fatalf("primary now %q (%v), want %s: the example failed over sentinels it did not start", addr, err, primary.Addr())
	}
	for _, k := range mine {
		if v, err := primary.Do("GET", k); err != nil || v != "mine" {
			t.Errorf("the primary's own key %q is now %v, %v; want \"mine\"", k, v, err)
		}
	}
	if n, err := primary.Do("DBSIZE"); err != nil || n != int64(len(mine)) {
		t.Errorf("DBSIZE = %v, %v after the example; want the %d keys of the primary's own", n, err, len(mine))
	}
}

// Pointed at password-protected sentinels and data nodes of one's own, the
// example takes the passwords from VALKEY_SENTINEL_PASSWORD and
// VALKEY_PASSWORD (it ignored every variable but the addresses and the
// master's name, so New failed with NOAUTH).
func TestSentinelExampleUsesTheEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel example: skipped with -short")
	}
	s := valkeytest.StartSentinelT(t, valkeytest.SentinelOptions{Password: "data-pass", SentinelPassword: "sentinel-pass"})
	t.Setenv("VALKEY_SENTINEL_ADDRS", strings.Join(s.Addrs(), ","))
	t.Setenv("VALKEY_SENTINEL_MASTER", s.MasterName())
	t.Setenv("VALKEY_SENTINEL_PASSWORD", "sentinel-pass")
	t.Setenv("VALKEY_PASSWORD", "data-pass")
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Sentinels named by a VALKEY_URL with master_set are used as those of
// VALKEY_SENTINEL_ADDRS are (before, the example ignored the URL, started
// a throwaway setup, failed it over and reported success), and a server
// named that is not in sentinel mode is refused.
func TestSentinelExampleURL(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel example: skipped with -short")
	}
	s := valkeytest.StartSentinelT(t)
	addrs := s.Addrs()
	url := "valkey://" + addrs[0] + "?master_set=" + s.MasterName()
	for _, a := range addrs[1:] {
		url += "&addr=" + a
	}
	t.Setenv("VALKEY_URL", url)
	primary, err := s.MasterAddr()
	if err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if addr, err := s.MasterAddr(); err != nil || addr != primary {
		t.Fatalf("primary now %q (%v), want %s: the example failed over sentinels it did not start, or used others", addr, err, primary)
	}
	t.Setenv("VALKEY_URL", "valkey://"+s.Nodes()[0].Addr())
	if err := run(context.Background()); err == nil || !strings.Contains(err.Error(), "not in sentinel mode") {
		t.Fatalf("run with a standalone server named: %v, want a refusal", err)
	}
}
