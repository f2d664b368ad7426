package main

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

// Every engine text the CLI rewrites is still in the engine's source:
// reworded there, the CLI would print the library's field names again.
func TestCLIHintsMatchEngine(t *testing.T) {
	var src strings.Builder
	for _, f := range []string{"../../engine/connecterr.go", "../../engine/errors.go", "../../engine/cluster_load.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	for i := 0; i < len(cliHintPairs); i += 2 {
		if !strings.Contains(src.String(), cliHintPairs[i]) {
			t.Errorf("the engine no longer says %q", cliHintPairs[i])
		}
	}
	base := &engine.ConnectError{Addr: "127.0.0.1:1", Reason: "the server requires authentication (set Password, and Username for an ACL user, or CredentialsProvider)", Err: errors.New("NOAUTH")}
	err := forCLI(base)
	var ce *engine.ConnectError
	if !errors.As(err, &ce) || ce != base || !strings.Contains(err.Error(), "(give -password, and -user") || strings.Contains(err.Error(), "CredentialsProvider") {
		t.Errorf("forCLI = %v; want the engine's error with the CLI's hint", err)
	}
	if plain := errors.New("x"); forCLI(plain) != plain || forCLI(nil) != nil {
		t.Error("forCLI changed an error without a hint")
	}
}
