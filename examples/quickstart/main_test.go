package main

import (
	"testing"

	"github.com/vactor-io/vactor/valkeytest"
)

func TestQuickstartRuns(t *testing.T) {
	srv := valkeytest.Start(t)
	t.Setenv("VALKEY_URL", "")
	t.Setenv("VALKEY_ADDR", srv.Addr())
	if err := run(); err != nil {
		t.Fatalf("quickstart: %v", err)
	}
}
