package main

import (
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/valkeytest"
)

func TestQuickstartRuns(t *testing.T) {
	srv := valkeytest.Start(t)
	for _, v := range config.ServerEnvVars {
		t.Setenv(v, "") // a server named in the shell's environment is not the test's
	}
	t.Setenv("VALKEY_ADDR", srv.Addr())
	if err := run(); err != nil {
		t.Fatalf("quickstart: %v", err)
	}
}
