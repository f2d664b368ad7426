package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A URL given where an address goes (WithAddrs(os.Getenv("REDIS_URL")),
// VALKEY_ADDR=redis://:pw@host:6379) is refused with a reason that names
// the fix, and its password appears nowhere: not in the error, String,
// any fmt verb or slog. It appeared in all of them (QA-AA 2).
func TestURLAsAddressRedacted(t *testing.T) {
	url := "redis://:" + testSecret + "@cache.internal:6379"
	userinfo := "app:" + testSecret + "@cache.internal:6379"
	check := func(what, text string) {
		t.Helper()
		if strings.Contains(text, testSecret) {
			t.Errorf("%s shows the password: %s", what, text)
		}
	}
	cfgs := map[string]Config{
		"Addrs":          DefaultConfig().WithAddrs(url),
		"Addrs userinfo": DefaultConfig().WithAddrs("a:1", userinfo),
		"Host":           func() Config { c := DefaultConfig(); c.Host = url; return c }(),
		"SentinelAddrs":  DefaultConfig().WithSentinel("mymaster", url),
	}
	for name, c := range cfgs {
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
		check(name+": Validate", err.Error())
		if !strings.Contains(err.Error(), "ParseURL") {
			t.Errorf("%s: %v, want the fix named (config.ParseURL)", name, err)
		}
		var fe *FieldError
		if errors.As(err, &fe) {
			check(name+": FieldError.Value", fe.Value)
		}
		check(name+": String", c.String())
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			check(name+": "+verb, fmt.Sprintf(verb, c))
		}
		var b strings.Builder
		slog.New(slog.NewTextHandler(&b, nil)).Info("cfg", "config", c)
		check(name+": slog", b.String())
	}
	for _, env := range []map[string]string{
		{"VALKEY_ADDR": url},
		{"VALKEY_ADDR": userinfo},
		{"VALKEY_ADDRS": "a:1," + url},
		{"VALKEY_HOST": url},
		{"VALKEY_SENTINEL_MASTER": "mymaster", "VALKEY_SENTINEL_ADDRS": url},
	} {
		for k, v := range env {
			t.Setenv(k, v)
		}
		_, err := LoadFromEnv()
		if err == nil {
			t.Fatalf("%v: no error", env)
		}
		check(fmt.Sprint(env), err.Error())
		if !strings.Contains(err.Error(), "ParseURL") {
			t.Errorf("%v: %v, want the fix named", env, err)
		}
		for k := range env {
			t.Setenv(k, "")
		}
	}
}
