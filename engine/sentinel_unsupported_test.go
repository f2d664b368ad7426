package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// Until the engine has a sentinel mode, New refuses a sentinel Config
// instead of ignoring the sentinels and dialling the default address (a
// server listening there would have been used as the primary). Remove
// this test when sentinel mode lands.
func TestNewRefusesSentinelMode(t *testing.T) {
	srv := valkeytest.Start(t)
	cfg := config.DefaultConfig().WithHost(srv.Host()).WithPort(srv.Port()).WithSentinel("mymaster", "127.0.0.1:1")
	eng, err := engine.New(context.Background(), cfg)
	if err == nil {
		eng.Close()
		t.Fatal("engine.New in sentinel mode succeeded on the Host/Port server, want an error")
	}
	if !strings.Contains(err.Error(), "sentinel mode") {
		t.Fatalf("engine.New in sentinel mode = %v, want an error saying sentinel mode is not supported", err)
	}
}
