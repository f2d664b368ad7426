package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
)

func TestRunStartsServerAndStopsIt(t *testing.T) {
	for _, v := range config.ServerEnvVars {
		t.Setenv(v, "")
	}
	out := filepath.Join(t.TempDir(), "addr")
	// The child checks the server answers, and records its address.
	script := `printf '%s' "$VALKEY_ADDR" > "$1" && exec 3<>/dev/tcp/${VALKEY_ADDR%:*}/${VALKEY_ADDR#*:} && ` +
		`printf '*1\r\n$4\r\nPING\r\n' >&3 && read -r -t 2 reply <&3 && test "$reply" = $'+PONG\r'`
	if code := run([]string{"--", "bash", "-c", script, "bash", out}); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	addr := string(b)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("VALKEY_ADDR = %q", addr)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("server at %s still answers after run returned", addr)
	}
}

func TestRunKeepsGivenAddrAndExitCode(t *testing.T) {
	t.Setenv("VALKEY_ADDR", "example.invalid:1")
	t.Setenv("VALKEY_URL", "")
	if code := run([]string{"--", "sh", "-c", `test "$VALKEY_ADDR" = example.invalid:1 && exit 3`}); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
}

// Any variable that names the server leaves the environment unchanged:
// adding VALKEY_ADDR beside VALKEY_ADDRS or a sentinel variable makes
// config.LoadFromEnv refuse both, and beside VALKEY_HOST or VALKEY_PORT it
// would silently win over them.
func TestRunKeepsEveryAddressVariable(t *testing.T) {
	for _, name := range []string{"VALKEY_ADDRS", "VALKEY_HOST", "VALKEY_PORT", "VALKEY_SENTINEL_ADDRS", "VALKEY_SENTINEL_MASTER"} {
		t.Run(name, func(t *testing.T) {
			for _, v := range config.ServerEnvVars {
				t.Setenv(v, "")
			}
			t.Setenv(name, "example.invalid:1")
			if code := run([]string{"--", "sh", "-c", `test -z "$VALKEY_ADDR" && exit 3`}); code != 3 {
				t.Fatalf("exit code %d, want 3 (VALKEY_ADDR must stay unset when %s is set)", code, name)
			}
		})
	}
}

func TestRunSignalExitCode(t *testing.T) {
	t.Setenv("VALKEY_URL", "valkey://example.invalid:1")
	if code := run([]string{"sh", "-c", `kill -TERM $$`}); code != 128+15 {
		t.Fatalf("exit code %d, want 143", code)
	}
}

func TestRunMissingCommand(t *testing.T) {
	t.Setenv("VALKEY_URL", "valkey://example.invalid:1")
	if code := run([]string{"--", "/no/such/command"}); code != 127 {
		t.Fatalf("exit code %d, want 127", code)
	}
	if code := run(nil); code != 2 {
		t.Fatalf("no command: exit code %d, want 2", code)
	}
}
