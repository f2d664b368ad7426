package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/valkeytest"
)

// The example's hook sees every command (counts per name, the INCR's
// error reply), the request id its PreExecution put in the context, the
// slow WAIT, and the engine's one dial.
func TestHooksExampleRuns(t *testing.T) {
	srv := valkeytest.Start(t)
	for _, v := range config.ServerEnvVars {
		t.Setenv(v, "") // a server named in the shell's environment is not the test's
	}
	t.Setenv("VALKEY_ADDR", srv.Addr())
	var out, logs bytes.Buffer
	if err := run(&out, &logs); err != nil {
		t.Fatalf("hooks example: %v\nlog:\n%s", err, logs.String())
	}
	for _, want := range []string{"SET     20 commands, 0 errors", "INCR     1 commands, 1 errors", "GET      1 commands, 0 errors", "WAIT     1 commands, 0 errors", "dials: 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, want := range []string{"slow: WAIT", "request req-42", "connected to " + srv.Addr()} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("hook log lacks %q:\n%s", want, logs.String())
		}
	}
}
